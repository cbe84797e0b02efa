"""Methods: the ReDo/ReGraMa recycling pipeline against hand-chosen neurons."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from plasticity_bench import registry
from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods import Method, make_method, method_class
from plasticity_bench.methods.layer_norm import LayerNormMethod
from plasticity_bench.methods.recycling import concatenate_batches, recycle_neurons
from plasticity_bench.methods.redo import ReDo
from plasticity_bench.methods.regrama import ReGraMa
from plasticity_bench.networks import MLP, NetworkConfig


def make_batch(n: int = 64, obs_dim: int = 3, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, obs_dim, generator=g)
    return Batch(
        obs=obs,
        actions=torch.zeros(n, 1),
        rewards=torch.randn(n, 2, generator=g),
        next_obs=obs,
        terminations=torch.zeros(n, 1),
    )


def regression_loss(net: nn.Module, batch: Batch) -> torch.Tensor:
    return ((net(batch.obs) - batch.rewards) ** 2).mean()


def make_role(net: nn.Module) -> Role:
    return Role(
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=1e-3),
        loss_fn=regression_loss,
        forward_inputs=lambda b: (b.obs,),
    )


def train_steps(role: Role, batch: Batch, steps: int = 3) -> torch.Tensor:
    for _ in range(steps):
        role.optimizer.zero_grad()
        loss = role.loss_fn(role.network, batch)
        loss.backward()
        role.optimizer.step()
    return loss.detach()


def fill_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Dead neurons get zero gradients, hence zero moments; make every entry non-zero so a
    reset is visible wherever it happens."""
    g = torch.Generator().manual_seed(3)
    for state in optimizer.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            state[key].copy_(torch.rand(state[key].shape, generator=g) + 0.5)


def snapshot(role: Role):
    params = {n: p.detach().clone() for n, p in role.network.named_parameters()}
    state = {
        n: {k: v.clone() for k, v in role.optimizer.state[p].items()}
        for n, p in role.network.named_parameters()
        if p in role.optimizer.state
    }
    return params, state


# Dead by hand: zero incoming weights, negative bias → ReLU output exactly 0. Every other
# neuron gets bias +2 so that it is active on (almost) every sample.
DEAD = {"layers.1": [1, 4], "layers.3": [2]}
INCOMING = {"layers.1": "layers.0", "layers.3": "layers.2"}
OUTGOING = {"layers.1": "layers.2", "layers.3": "layers.4"}


def net_with_dead_neurons() -> MLP:
    torch.manual_seed(0)
    net = MLP(3, 2, NetworkConfig(hidden_sizes=(6, 5), activation="ReLU"))
    with torch.no_grad():
        for layer, neurons in DEAD.items():
            linear = net.layers[int(INCOMING[layer].split(".")[1])]
            linear.bias.fill_(2.0)
            linear.weight[neurons] = 0.0
            linear.bias[neurons] = -1.0
    return net


def expected_touched(name: str, shape: torch.Size) -> torch.Tensor:
    """Boolean mask of the entries of parameter ``name`` that recycling DEAD must touch."""
    touched = torch.zeros(shape, dtype=torch.bool)
    for layer, neurons in DEAD.items():
        if name.startswith(INCOMING[layer] + "."):
            touched[neurons] = True
        if name == OUTGOING[layer] + ".weight":
            touched[:, neurons] = True
    return touched


def live_inputs(incoming: str) -> list[int]:
    """Input columns of a Linear that are not outgoing columns of a recycled neuron: where a
    recycled neuron feeds a recycled neuron, the zeroed outgoing weight wins."""
    fan_in = {"layers.0": 3, "layers.2": 6}[incoming]
    dead_inputs = next((DEAD[layer] for layer, out in OUTGOING.items() if out == incoming), [])
    return [column for column in range(fan_in) if column not in dead_inputs]


def test_redo_tau_0_recycles_exactly_the_dead_neurons():
    net = net_with_dead_neurons()
    role = make_role(net)
    batch = make_batch()
    train_steps(role, batch)
    fill_optimizer_state(role.optimizer)
    params_before, state_before = snapshot(role)
    with torch.no_grad():
        outputs_before = net(batch.obs)

    redo = ReDo(tau=0.0, period=5)
    assert redo.after_update({"critic": role}, 4, lambda: batch) == {}  # not a reset step
    assert all(torch.equal(p, params_before[n]) for n, p in net.named_parameters())
    stats = redo.after_update({"critic": role}, 10, lambda: batch)
    assert stats == {"reset_fraction/critic": pytest.approx(3 / 11),
                     "reset_neurons/critic/layers.1": 2.0, "reset_neurons/critic/layers.3": 1.0}

    with torch.no_grad():
        torch.testing.assert_close(net(batch.obs), outputs_before, rtol=0, atol=0)
    params = dict(net.named_parameters())
    for layer, neurons in DEAD.items():
        weight = params[INCOMING[layer] + ".weight"]
        bias = params[INCOMING[layer] + ".bias"]
        bound = 1 / math.sqrt(weight.shape[1])  # nn.Linear's initialiser: U(±1/sqrt(fan_in))
        redrawn = weight[neurons][:, live_inputs(INCOMING[layer])]
        assert (redrawn != 0).all() and (weight[neurons].abs() <= bound).all()
        assert (bias[neurons] == 0).all()
        assert (params[OUTGOING[layer] + ".weight"][:, neurons] == 0).all()
    for name, p in net.named_parameters():
        touched = expected_touched(name, p.shape)
        assert torch.equal(p[~touched], params_before[name][~touched]), name  # incl. next-layer biases
        state = role.optimizer.state[p]
        for key in ("exp_avg", "exp_avg_sq"):
            assert (state[key][touched] == 0).all(), (name, key)
            assert torch.equal(state[key][~touched], state_before[name][key][~touched]), (name, key)
        assert torch.equal(state["step"], state_before[name]["step"])

    loss = train_steps(role, batch, steps=5)  # the network still trains
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_recycling_before_the_first_step_and_layer_norm_entries():
    torch.manual_seed(1)
    net = MLP(3, 2, NetworkConfig(hidden_sizes=(4, 4), activation="SiLU", layer_norm=True))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(2.0, 3.0)
                module.bias.uniform_(1.0, 2.0)
    role = make_role(net)
    # no optimizer state yet: tolerated, and no state is created
    assert recycle_neurons(role, {"layers.2": torch.tensor([True, False, False, True])}) == {"layers.2": 2}
    assert len(role.optimizer.state) == 0
    norm = net.layers[1]
    assert norm.weight[[0, 3]].tolist() == [1.0, 1.0] and norm.bias[[0, 3]].tolist() == [0.0, 0.0]
    assert (norm.weight[[1, 2]] >= 2.0).all() and (norm.bias[[1, 2]] >= 1.0).all()

    train_steps(role, make_batch())
    fill_optimizer_state(role.optimizer)
    second_norm = net.layers[4]
    gamma_before = second_norm.weight.detach().clone()
    assert recycle_neurons(role, {"layers.5": torch.tensor([False, True, False, False])}) == {"layers.5": 1}
    assert second_norm.weight[1] == 1.0 and second_norm.bias[1] == 0.0
    assert torch.equal(second_norm.weight[[0, 2, 3]], gamma_before[[0, 2, 3]])
    for p in (second_norm.weight, second_norm.bias):
        state = role.optimizer.state[p]
        assert state["exp_avg"][1] == 0 and state["exp_avg_sq"][1] == 0
        assert (state["exp_avg"][[0, 2, 3]] > 0).all() and (state["exp_avg_sq"][[0, 2, 3]] > 0).all()

    with pytest.raises(ValueError, match="layers.7"):
        recycle_neurons(role, {"layers.7": torch.ones(4, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        recycle_neurons(role, {"layers.2": torch.ones(3, dtype=torch.bool)})


def net_with_unused_neurons() -> tuple[MLP, dict[str, list[int]]]:
    """Neurons whose outgoing weights are zero have dL/dh = 0 for every sample: GraMa 0."""
    torch.manual_seed(2)
    net = MLP(3, 2, NetworkConfig(hidden_sizes=(6, 5), activation="Tanh"))
    unused = {"layers.1": [0, 3], "layers.3": [4]}
    with torch.no_grad():
        net.layers[2].weight[:, unused["layers.1"]] = 0.0
        net.layers[4].weight[:, unused["layers.3"]] = 0.0
    return net, unused


def test_regrama_recycles_exactly_the_neurons_without_gradient():
    net, unused = net_with_unused_neurons()
    role = make_role(net)
    batch = make_batch()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    stats = ReGraMa(tau=0.01, period=1, variant="pre_activation").after_update({"critic": role}, 1, lambda: batch)
    assert stats == {"reset_fraction/critic": pytest.approx(3 / 11),
                     "reset_neurons/critic/layers.1": 2.0, "reset_neurons/critic/layers.3": 1.0}
    for layer, incoming in (("layers.1", "layers.0"), ("layers.3", "layers.2")):
        weight = dict(net.named_parameters())[incoming + ".weight"]
        changed = (weight != before[incoming + ".weight"]).any(dim=1)
        assert changed.nonzero().flatten().tolist() == unused[layer]
    assert torch.isfinite(train_steps(role, batch))


def test_regrama_modes_select_the_right_neurons():
    score = torch.tensor([0.5, 0.0, 0.02, 0.005, 3.0, 0.001, 1.0, 0.9, 0.8, 0.7] + [1.0] * 10)
    threshold = ReGraMa(tau=0.01, variant="pre_activation")
    lowest = ReGraMa(mode="lowest_k_percent", percent=10.0, variant="pre_activation")  # floor(20 * 10%) = 2 neurons
    capped = ReGraMa(tau=0.01, mode="capped", percent=10.0, variant="pre_activation")
    capped_strict = ReGraMa(tau=0.0, mode="capped", percent=10.0, variant="pre_activation")
    assert threshold.select(score).nonzero().flatten().tolist() == [1, 3, 5]
    assert lowest.select(score).nonzero().flatten().tolist() == [1, 5]
    assert capped.select(score).nonzero().flatten().tolist() == [1, 5]
    assert capped_strict.select(score).nonzero().flatten().tolist() == [1]
    # lowest_k_percent ignores tau: 2 neurons even when all scores are high
    assert lowest.select(torch.arange(20.0) + 5).nonzero().flatten().tolist() == [0, 1]


def test_regrama_lowest_k_percent_through_the_schedule():
    torch.manual_seed(3)
    net = MLP(3, 2, NetworkConfig(hidden_sizes=(10, 20), activation="ReLU"))
    role = make_role(net)
    batch = make_batch()
    method = make_method("regrama", mode="lowest_k_percent", percent=10.0, period=2)
    stats = method.after_update({"critic": role}, 2, lambda: batch)
    assert stats == {"reset_fraction/critic": pytest.approx((1 + 2) / 30),
                 "reset_neurons/critic/layers.1": 1.0, "reset_neurons/critic/layers.3": 2.0}


def test_roles_option_limits_the_reset_to_named_roles():
    actor_net, critic_net = net_with_dead_neurons(), net_with_dead_neurons()
    roles = {"actor": make_role(actor_net), "critic": make_role(critic_net)}
    actor_before = [p.detach().clone() for p in actor_net.parameters()]
    batch = make_batch()
    stats = ReDo(tau=0.0, period=1, roles=["critic"]).after_update(roles, 1, lambda: batch)
    assert list(stats) == ["reset_fraction/critic", "reset_neurons/critic/layers.1",
                       "reset_neurons/critic/layers.3"]
    assert all(torch.equal(p, q) for p, q in zip(actor_net.parameters(), actor_before))
    assert (critic_net.layers[2].weight[:, DEAD["layers.1"]] == 0).all()
    with pytest.raises(ValueError, match="target"):
        ReDo(roles="target", period=1).after_update(roles, 1, lambda: batch)


def test_score_batch_has_batch_size_samples_from_repeated_draws():
    draws = []

    def sample_batch() -> Batch:
        draws.append(1)
        return make_batch(n=8, seed=len(draws))

    batch = concatenate_batches(sample_batch, 20)
    assert len(draws) == 3
    assert all(field.shape[0] == 20 for field in batch)
    torch.testing.assert_close(batch.obs[8:16], make_batch(n=8, seed=2).obs)


def test_option_validation():
    with pytest.raises(ValueError, match=r"'bogus'.*threshold, lowest_k_percent, capped"):
        ReGraMa(mode="bogus")
    with pytest.raises(ValueError, match="percent"):
        ReGraMa(percent=0)
    with pytest.raises(ValueError, match="tau"):
        ReDo(tau=-0.1)
    with pytest.raises(ValueError, match="period"):
        ReDo(period=0)
    with pytest.raises(ValueError, match="batch_size"):
        ReDo(batch_size=2.5)
    with pytest.raises(ValueError, match=r"'taus'.*tau, period, batch_size, roles, reset_optimizer"):
        make_method("redo", taus=0.1)
    with pytest.raises(ValueError, match="valid options: \\(none\\)"):
        make_method("layer_norm", tau=1)
    with pytest.raises(ValueError, match="unknown method"):
        make_method("redoo")
    assert ReGraMa.options() == {
        "tau": 0.01, "period": 1000, "batch_size": 256, "roles": "critics", "mode": "threshold", "percent": 5.0,
        "variant": "released",
    }
    assert ReDo.options() == {"tau": 0.1, "period": 1000, "batch_size": 256, "roles": None, "reset_optimizer": True}
    defaults = make_method("regrama")
    assert (defaults.tau, defaults.period, defaults.mode) == (0.01, 1000, "threshold")
    assert ReDo.owns_reset_schedule and ReGraMa.owns_reset_schedule


def test_options_are_the_constructor_defaults():
    # Each registered method declares its options once, as __init__'s keyword defaults;
    # options() reads them from there (same names, values and order), and no method
    # keeps a hand-written copy that could drift.
    for name in registry.METHODS:
        cls = method_class(name)
        declared = {p.name: p.default for p in inspect.signature(cls).parameters.values()
                    if p.default is not inspect.Parameter.empty}
        assert list(cls.options().items()) == list(declared.items()), name
        assert all("options" not in vars(klass) for klass in cls.__mro__ if klass is not Method), name
        # A built-in method's description lives in the registry only (listed without an import).
        assert registry.METHODS[name][1] and all("description" not in vars(klass) for klass in cls.__mro__), name


def test_options_of_classes_without_or_with_unusual_parameters():
    class Plain(Method):
        name = "plain"

    class Mixed(Method):
        name = "mixed"

        def __init__(self, required, sigma=0.01, *args, period=100, **rest):
            pass

    assert Method.options() == {} and Plain.options() == {}
    assert Mixed.options() == {"sigma": 0.01, "period": 100}
    assert LayerNormMethod.options() == {}


def test_layer_norm_method_adds_layer_norm():
    method = make_method("layer_norm")
    assert isinstance(method, LayerNormMethod)
    config = NetworkConfig(hidden_sizes=(8, 4), activation="Tanh")
    changed = method.network_config(config)
    assert changed == NetworkConfig(hidden_sizes=(8, 4), activation="Tanh", layer_norm=True)
    assert config.layer_norm is False
    net = MLP(3, 1, changed)
    assert sum(isinstance(m, nn.LayerNorm) for m in net.modules()) == 2
