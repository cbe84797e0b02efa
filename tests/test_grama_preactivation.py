"""GraMa at the pre-activation (docs/science.md): what it must flag and what it must not,
checked on tiny networks whose dead and saturated units are placed by hand; and the reset
diagnostics of the recyclers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.redo import ReDo
from plasticity_bench.methods.regrama import ReGraMa
from plasticity_bench.metrics import dormant_scores, grama_scores
from plasticity_bench.networks import MLP, NetworkConfig
from plasticity_bench.networks.residual import ResidualNet


def regression(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    inputs, targets = batch
    return ((net(inputs) - targets) ** 2).mean()


def data(n: int = 128, in_dim: int = 4, out_dim: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, in_dim, generator=g), torch.randn(n, out_dim, generator=g)


@pytest.mark.parametrize("seed", range(5))
def test_every_unit_redo_flags_at_tau_0_grama_flags_too(seed):
    """The GraMa paper's proposition for ReLU nets, on random MLPs with a few units killed
    by a large negative bias, plus whatever the random weights kill on their own."""
    torch.manual_seed(seed)
    net = MLP(4, 2, NetworkConfig(hidden_sizes=(16, 12, 8), activation="ReLU"))
    with torch.no_grad():
        for layer in (net.layers[0], net.layers[2], net.layers[4]):
            layer.bias[torch.randperm(layer.out_features)[:3]] = -100.0
    inputs, targets = data(seed=seed)
    dormant = dormant_scores(net, inputs)
    grama = grama_scores(net, regression, (inputs, targets))
    flagged = 0
    for name in dormant:
        dead = dormant[name] <= 0.0
        flagged += int(dead.sum())
        assert torch.all(grama[name][dead] == 0.0), name  # exactly 0, not merely small
    assert flagged >= 9
    # The literal output-gradient reading misses them (the reason it is not the default).
    output = grama_scores(net, regression, (inputs, targets), variant="output")
    assert any(bool((output[name][dormant[name] <= 0.0] > 0.01).any()) for name in dormant)


@pytest.mark.parametrize("activation", ["Tanh", "Sigmoid"])
def test_saturated_units_score_about_zero_while_their_activation_is_large(activation):
    torch.manual_seed(0)
    net = MLP(4, 2, NetworkConfig(hidden_sizes=(8,), activation=activation))
    with torch.no_grad():
        net.layers[0].bias[[0, 5]] = 30.0  # saturated: sigma'(z) ~ e^-30 or less
    inputs, targets = data()
    grama = grama_scores(net, regression, (inputs, targets))["layers.1"]
    dormant = dormant_scores(net, inputs)["layers.1"]
    saturated = torch.tensor([True, False, False, False, False, True, False, False])
    assert torch.all(grama[saturated] < 1e-6)
    assert torch.all(grama[~saturated] > 0.05)  # live units are not flagged
    assert torch.all(dormant[saturated] > 1.0)  # |h| ~ 1: ReDo sees a very active unit


def test_unit_killed_by_a_layernorm_shift_inside_a_bro_block_scores_zero():
    torch.manual_seed(0)
    net = ResidualNet(4, 2, NetworkConfig(arch="residual", hidden_sizes=(16,), activation="ReLU", blocks=1))
    killed = [3, 11]
    with torch.no_grad():
        net.blocks[0].norm1.bias[killed] = -50.0  # LayerNorm output ~ N(0,1) - 50: ReLU input < 0 always
    inputs, targets = data()
    grama = grama_scores(net, regression, (inputs, targets))
    block = grama["blocks.0.activation"]
    assert torch.all(block[killed] == 0.0)
    # Live units (a non-zero output on some sample) keep a non-zero score.
    for name, dormant in dormant_scores(net, inputs).items():
        assert torch.all(grama[name][dormant > 0] > 0.0), name
    # The literal reading scores the killed units by their outgoing weights instead.
    output = grama_scores(net, regression, (inputs, targets), variant="output")["blocks.0.activation"]
    assert torch.all(output[killed] > 0.0)


# --- roles and reset diagnostics ---------------------------------------------------------


def role_of(net: nn.Module) -> Role:
    return Role(network=net, optimizer=torch.optim.Adam(net.parameters(), lr=1e-3),
                loss_fn=lambda n, b: ((n(b.obs) - b.rewards) ** 2).mean(), forward_inputs=lambda b: (b.obs,))


def batch_of(seed: int = 0) -> Batch:
    inputs, targets = data(seed=seed)
    zeros = torch.zeros(inputs.shape[0], 1)
    return Batch(obs=inputs, actions=zeros, rewards=targets, next_obs=inputs, terminations=zeros)


def net_with_dead_units() -> MLP:
    torch.manual_seed(1)
    net = MLP(4, 2, NetworkConfig(hidden_sizes=(8, 8), activation="ReLU"))
    with torch.no_grad():
        net.layers[0].bias[[1, 2, 6]] = -100.0  # unit 2 is dead from its random weights alone
        net.layers[2].bias[[0]] = -100.0
    return net


@pytest.mark.parametrize("roles, expected", [
    ({"actor", "critic"}, {"critic"}),  # SAC, TD3: the critic only
    ({"q"}, {"q"}),  # DQN
    ({"classifier"}, {"classifier"}),  # a learner without a value network: its network
])
def test_regrama_resets_the_value_networks_by_default(roles, expected):
    nets = {name: net_with_dead_units() for name in roles}
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}
    ReGraMa(period=1, variant="pre_activation").after_update({name: role_of(net) for name, net in nets.items()}, 1, batch_of)
    changed = {name for name, net in nets.items()
               if any(not torch.equal(p, q) for p, q in zip(net.parameters(), before[name]))}
    assert changed == expected
    assert ReDo().roles is None  # ReDo: every role


def test_diagnostics_count_resets_and_units_flagged_again_at_the_next_event():
    """ReGraMa zeroes a recycled unit's outgoing weights, so until training grows them its
    pre-activation gradient is exactly 0: a second event with no update in between flags
    every recycled unit again. The diagnostics must show exactly that."""
    net = net_with_dead_units()
    role = role_of(net)
    method = ReGraMa(period=1, tau=0.0, variant="pre_activation")
    first = method.after_update({"q": role}, 1, batch_of)
    assert first == {"reset_fraction/q": 4 / 16, "reset_neurons/q/layers.1": 3.0, "reset_neurons/q/layers.3": 1.0}
    restored = ReGraMa(period=1, tau=0.0, variant="pre_activation")
    restored.load_state_dict(method.state_dict())  # the previous event's units survive a resume
    second = restored.after_update({"q": role}, 2, batch_of)
    assert second["reset_again_neurons/q/layers.1"] == 3.0
    assert second["reset_again_neurons/q/layers.3"] == 1.0
    assert second["reset_neurons/q/layers.1"] >= 3.0


@pytest.mark.parametrize("variant", ["pre_activation", "output"])
def test_a_layer_no_differentiable_call_reaches_scores_zeros(variant):
    """E.g. a network used only for a bootstrap target inside the loss: every unit scores 0
    (nothing of the loss flows through it), with the layer's own width."""
    net = MLP(4, 2, NetworkConfig(hidden_sizes=(6,), activation="CReLU"))
    inputs, targets = data()

    def target_only(module, batch):
        with torch.no_grad():
            frozen = module(batch[0])
        return ((frozen - batch[1]) ** 2).mean()

    grama = grama_scores(net, target_only, (inputs, targets), variant=variant)
    width = 6 if variant == "pre_activation" else 12  # CReLU: one pre-activation per unit, two outputs
    assert torch.equal(grama["layers.1"], torch.zeros(width))


def test_redo_can_keep_the_adam_state_of_recycled_entries():
    """The ablation of methods/redo.py's diagnosis: moments survive with reset_optimizer=False."""
    for reset_optimizer, survives in ((True, False), (False, True)):
        net = net_with_dead_units()
        role = role_of(net)
        for _ in range(3):
            role.optimizer.zero_grad()
            role.loss_fn(net, batch_of()).backward()
            role.optimizer.step()
        for state in role.optimizer.state.values():
            state["exp_avg"].fill_(1.0)
        ReDo(tau=0.0, period=1, reset_optimizer=reset_optimizer).after_update({"q": role}, 1, batch_of)
        moments = role.optimizer.state[net.layers[0].weight]["exp_avg"]
        assert bool((moments[1] == 1.0).all()) is survives  # unit 1 of layer 1 was dead, hence recycled
    with pytest.raises(ValueError, match="reset_optimizer must be true or false"):
        ReDo(reset_optimizer="yes")
