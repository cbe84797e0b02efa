"""The standard plasticity baselines: each method's effect on parameters, optimizer state
and loss, checked by hand on tiny networks; composition rules; resuming an injected net."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.agents.base import TrainingHooks
from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods import make_method
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.c_chain import CChain
from plasticity_bench.methods.cbp import ContinualBackprop
from plasticity_bench.methods.crelu import CReLUMethod
from plasticity_bench.methods.l2_init import L2Init
from plasticity_bench.methods.nap import NormalizeAndProject
from plasticity_bench.methods.plasticity_injection import InjectedLinear, PlasticityInjection
from plasticity_bench.methods.recycling import recycle_neurons
from plasticity_bench.methods.regrama import ReGraMa
from plasticity_bench.metrics import grama_scores
from plasticity_bench.methods.reset import Reset
from plasticity_bench.methods.shrink_perturb import ShrinkPerturb
from plasticity_bench.methods.weight_decay import WeightDecay
from plasticity_bench.metrics.activity import dormant_scores
from plasticity_bench.networks import MLP, NetworkConfig, neuron_layers
from plasticity_bench.networks.layers import CReLU
from plasticity_bench.spec import InvalidCombinationError, build_spec, validate_method_combination


def make_batch(n: int = 16, obs_dim: int = 3, out_dim: int = 2, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, obs_dim, generator=g)
    return Batch(obs=obs, actions=torch.zeros(n, 1), rewards=torch.randn(n, out_dim, generator=g),
                 next_obs=obs, terminations=torch.zeros(n))


def regression_loss(net: nn.Module, batch: Batch) -> torch.Tensor:
    return ((net(batch.obs) - batch.rewards) ** 2).mean()


def make_role(net: nn.Module, targets: tuple[nn.Module, ...] = (), optimizer=None) -> Role:
    return Role(network=net, optimizer=optimizer or torch.optim.Adam(net.parameters(), lr=1e-2),
                loss_fn=regression_loss, forward_inputs=lambda b: (b.obs,), targets=targets)


def train_steps(role: Role, batch: Batch, steps: int = 2, method: Method | None = None, role_name: str = "q") -> None:
    for _ in range(steps):
        loss = role.loss_fn(role.network, batch)
        if method is not None and (extra := method.loss_terms(role_name, role.network, batch)) is not None:
            loss = loss + extra
        role.optimizer.zero_grad()
        loss.backward()
        role.optimizer.step()


def mlp(hidden=(4, 4), seed: int = 0, obs_dim: int = 3, out_dim: int = 2, **config) -> MLP:
    torch.manual_seed(seed)
    return MLP(obs_dim, out_dim, NetworkConfig(hidden_sizes=hidden, **config))


def params_of(net: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in net.named_parameters()}


# --- Shrink & Perturb -------------------------------------------------------------------


@pytest.mark.parametrize("form, expected", [("noise", lambda fresh: 0.5 * 2.0 + 0.1 * fresh),
                                            ("fresh", lambda fresh: 0.5 * 2.0 + 0.5 * fresh)])
def test_shrink_perturb_exact_values(form, expected):
    net = mlp(hidden=(4,))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(2.0)
    role = make_role(net)
    method = ShrinkPerturb(shrink=0.5, perturb=0.1, form=form, period=3)
    assert method.after_update({"q": role}, 2, make_batch) == {}
    assert all((p == 2.0).all() for p in net.parameters())
    torch.manual_seed(11)
    assert method.after_update({"q": role}, 3, make_batch) == {"shrink_perturb/q": 1.0}
    torch.manual_seed(11)  # the same draws as building the network afresh
    fresh = MLP(3, 2, NetworkConfig(hidden_sizes=(4,)))
    for (name, p), q in zip(net.named_parameters(), fresh.parameters()):
        torch.testing.assert_close(p, expected(q.detach()), rtol=0, atol=1e-7, msg=name)


def test_shrink_perturb_leaves_frozen_parameters():
    net = mlp(hidden=(4,))
    net.layers[0].weight.requires_grad_(False)
    before = params_of(net)
    ShrinkPerturb(shrink=0.5, period=1).after_update({"q": make_role(net)}, 1, make_batch)
    assert torch.equal(net.layers[0].weight, before["layers.0.weight"])
    assert not torch.equal(net.layers[2].weight, before["layers.2.weight"])


# --- Reset --------------------------------------------------------------------------------


def test_reset_redraws_exactly_the_last_layers_clears_their_state_and_syncs_targets():
    net = mlp()
    target = copy.deepcopy(net)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(1.0)
    role = make_role(net, targets=(target,))
    train_steps(role, make_batch())
    online_before, target_before = params_of(net), params_of(target)
    method = Reset(period=5, layers=1)
    assert method.after_update({"q": role}, 4, make_batch) == {}
    torch.manual_seed(5)
    stats = method.after_update({"q": role}, 5, make_batch)
    assert stats == {"reset_fraction/q": pytest.approx(10 / (16 + 20 + 10))}
    torch.manual_seed(5)
    fresh = nn.Linear(4, 2)  # nn.Linear's initialiser: weight then bias, as reset_parameters
    assert torch.equal(net.layers[4].weight, fresh.weight) and torch.equal(net.layers[4].bias, fresh.bias)
    for name in ("layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"):
        assert torch.equal(dict(net.named_parameters())[name], online_before[name]), name
        assert torch.equal(dict(target.named_parameters())[name], target_before[name]), name
        assert dict(net.named_parameters())[name] in role.optimizer.state, name
    for p in net.layers[4].parameters():
        assert p not in role.optimizer.state
    assert torch.equal(target.layers[4].weight, net.layers[4].weight)
    assert torch.equal(target.layers[4].bias, net.layers[4].bias)
    train_steps(role, make_batch(), steps=1)  # fresh Adam state: step 1 again
    assert role.optimizer.state[net.layers[4].weight]["step"] == 1
    assert role.optimizer.state[net.layers[0].weight]["step"] == 3


def test_reset_all_and_two_layers_per_body():
    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.q1, self.q2 = mlp(seed=1), mlp(seed=2)

    twin = Twin()
    role = make_role(twin)
    before = params_of(twin)
    Reset(period=1, layers=2).after_update({"critic": role}, 1, make_batch)
    changed = {n for n, p in twin.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {f"{q}.layers.{i}.{k}" for q in ("q1", "q2") for i in (2, 4) for k in ("weight", "bias")}
    Reset(period=1, layers="all").after_update({"critic": role}, 1, make_batch)
    assert all(not torch.equal(p, before[n]) for n, p in twin.named_parameters())
    with pytest.raises(ValueError, match="layers"):
        Reset(layers=0)


# --- Plasticity injection ---------------------------------------------------------------


def test_injection_keeps_outputs_and_then_trains_only_h1():
    net = mlp(hidden=(4,))
    target = copy.deepcopy(net)
    role = make_role(net, targets=(target,))
    batch = make_batch()
    train_steps(role, batch)
    trainable_before = sum(p.numel() for p in net.parameters() if p.requires_grad)
    with torch.no_grad():
        outputs = net(batch.obs)
    method = PlasticityInjection(at_update=3)
    method.setup({"q": role})
    assert method.after_update({"q": role}, 2, make_batch) == {}
    assert method.after_update({"q": role}, 3, make_batch) == {"injected_heads/q": 1.0}
    head = net.layers[2]
    assert isinstance(head, InjectedLinear) and isinstance(target.layers[2], InjectedLinear)
    with torch.no_grad():
        assert torch.equal(net(batch.obs), outputs)  # h1 - h2 is exactly 0 at injection
    for name, value in head.state_dict().items():  # the target's head mirrors the online head
        assert torch.equal(target.layers[2].state_dict()[name], value), name
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == trainable_before
    assert len(role.optimizer.param_groups) == 2
    assert set(map(id, role.optimizer.param_groups[1]["params"])) == {id(head.injected_weight), id(head.injected_bias)}
    frozen = {n: b.clone() for n, b in head.named_buffers()}
    h1 = head.injected_weight.detach().clone()
    trunk = net.layers[0].weight.detach().clone()
    net.requires_grad_(False)
    net.requires_grad_(True)  # what SAC's actor step does: the frozen heads are buffers, unaffected
    train_steps(role, batch, steps=3)
    assert all(torch.equal(b, frozen[n]) for n, b in head.named_buffers())
    assert not torch.equal(head.injected_weight, h1) and not torch.equal(net.layers[0].weight, trunk)
    assert method.after_update({"q": role}, 4, make_batch) == {}  # once only


def test_injection_resumes_from_saved_state():
    def build():
        net = mlp(hidden=(4,), seed=3)
        target = copy.deepcopy(net)
        role = make_role(net, targets=(target,))
        method = PlasticityInjection(at_update=1)
        method.setup({"q": role})
        return role, method

    batch = make_batch()
    role, method = build()
    train_steps(role, batch)
    method.after_update({"q": role}, 1, make_batch)
    train_steps(role, batch)
    saved = {"net": copy.deepcopy(role.network.state_dict()), "target": copy.deepcopy(role.targets[0].state_dict()),
             "optimizer": copy.deepcopy(role.optimizer.state_dict()), "method": method.state_dict()}

    resumed, resumed_method = build()
    resumed_method.load_state_dict(saved["method"])  # re-applies the structure first
    resumed.network.load_state_dict(saved["net"])
    resumed.targets[0].load_state_dict(saved["target"])
    resumed.optimizer.load_state_dict(saved["optimizer"])
    with torch.no_grad():
        assert torch.equal(resumed.network(batch.obs), role.network(batch.obs))
        assert torch.equal(resumed.targets[0](batch.obs), role.targets[0](batch.obs))
    train_steps(role, batch, steps=1)
    train_steps(resumed, batch, steps=1)
    for (name, p), q in zip(role.network.named_parameters(), resumed.network.parameters()):
        assert torch.equal(p, q), name
    assert resumed_method.after_update({"q": resumed}, 5, make_batch) == {}


# --- CReLU --------------------------------------------------------------------------------


def test_crelu_values_widths_and_parameter_count():
    assert CReLU.is_activation
    x = torch.tensor([[1.0, -2.0, 0.0]])
    assert CReLU()(x).tolist() == [[1.0, 0.0, 0.0, 0.0, 2.0, 0.0]]
    config = CReLUMethod().network_config(NetworkConfig(hidden_sizes=(4, 4)))
    assert config.activation == "CReLU" and config.hidden_sizes == (2, 2)
    net = MLP(3, 1, config)
    # Linear(3, 2) + Linear(2*2, 2) + Linear(2*2, 1) = 8 + 10 + 5 (ReLU (4, 4): 16 + 20 + 5)
    assert sum(p.numel() for p in net.parameters()) == 23
    assert net(torch.randn(5, 3)).shape == (5, 1)
    layers = neuron_layers(net)
    assert [(layer.name, layer.width, layer.copies) for layer in layers] == [("layers.1", 2, 2), ("layers.3", 2, 2)]
    assert dormant_scores(net, torch.randn(7, 3))["layers.1"].shape == (4,)  # metrics see 2 outputs per unit


def test_crelu_recycling_maps_a_unit_to_its_row_and_both_columns():
    torch.manual_seed(0)
    net = MLP(3, 1, CReLUMethod().network_config(NetworkConfig(hidden_sizes=(6, 6))))
    role = make_role(net)
    train_steps(role, make_batch(out_dim=1), steps=1)
    before = params_of(net)
    assert recycle_neurons(role, {"layers.1": torch.tensor([False, True, False])}) == {"layers.1": 1}
    assert not torch.equal(net.layers[0].weight[1], before["layers.0.weight"][1])
    assert torch.equal(net.layers[0].weight[[0, 2]], before["layers.0.weight"][[0, 2]])
    outgoing = net.layers[2].weight
    assert (outgoing[:, [1, 4]] == 0).all()  # unit 1 feeds outputs 1 and 1 + 3
    assert torch.equal(outgoing[:, [0, 2, 3, 5]], before["layers.2.weight"][:, [0, 2, 3, 5]])
    # a unit whose input is always negative: relu(x) is dead, relu(-x) alive -> not dormant
    with torch.no_grad():
        net.layers[0].weight[0] = 0.0
        net.layers[0].bias[0] = -1.0
    stats = make_method("redo", tau=0.0, period=1).after_update({"q": role}, 1, lambda: make_batch(out_dim=1))
    assert stats == {"reset_fraction/q": 0.0, "reset_neurons/q/layers.1": 0.0, "reset_neurons/q/layers.3": 0.0}


# --- L2 Init -------------------------------------------------------------------------------


def test_l2_init_term_by_hand():
    net = mlp(hidden=(2,), obs_dim=2, out_dim=1)  # 2*2 + 2 + 2 + 1 = 9 parameters
    method = L2Init(coefficient=0.1)
    method.setup({"q": make_role(net)})
    assert method.loss_terms("q", net, make_batch()).item() == 0.0
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    term = method.loss_terms("q", net, make_batch())
    torch.testing.assert_close(term, torch.tensor(0.1 * 9 * 0.25))
    term.backward()
    for p in net.parameters():  # d/dtheta = 2 * lambda * (theta - theta0)
        torch.testing.assert_close(p.grad, torch.full_like(p, 2 * 0.1 * 0.5))
    assert method.loss_terms("actor", net, make_batch()) is None
    restored = L2Init(coefficient=0.1)
    restored.setup({"q": make_role(mlp(hidden=(2,), obs_dim=2, out_dim=1, seed=9))})
    restored.load_state_dict(method.state_dict())
    torch.testing.assert_close(restored.loss_terms("q", net, make_batch()), torch.tensor(0.225))


# --- weight decay -----------------------------------------------------------------------


def test_weight_decay_builds_adamw_and_one_step_is_the_adamw_formula():
    param = nn.Parameter(torch.tensor([2.0, -1.0]))
    optimizer = WeightDecay(weight_decay=0.1).optimizer("critic", [param], lr=0.01)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["weight_decay"] == 0.1
    param.grad = torch.tensor([0.5, 0.25])
    optimizer.step()
    # step 1: m_hat = g, v_hat = g^2; theta <- theta * (1 - lr * wd) - lr * g / (|g| + eps)
    expected = torch.tensor([2.0 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-8),
                             -1.0 * (1 - 0.001) - 0.01 * 0.25 / (0.25 + 1e-8)])
    torch.testing.assert_close(param.detach(), expected)
    assert WeightDecay(roles=["critic"]).optimizer("actor", [param], lr=0.01) is None
    hooks = TrainingHooks([WeightDecay()])
    assert isinstance(hooks.optimizer("q", [param], 1e-3), torch.optim.AdamW)
    default = TrainingHooks([]).optimizer("q", [param], 1e-3)
    assert type(default) is torch.optim.Adam and default.param_groups[0]["lr"] == 1e-3


# --- Normalize-and-Project ----------------------------------------------------------------


def test_nap_adds_layer_norm_and_projects_to_initial_norms():
    method = NormalizeAndProject(period=2)
    config = method.network_config(NetworkConfig(hidden_sizes=(4, 4)))
    assert config.layer_norm
    torch.manual_seed(0)
    net = MLP(3, 2, config)
    role = make_role(net)
    method.setup({"q": role})
    norms = {n: m.weight.norm().item() for n, m in net.named_modules() if isinstance(m, nn.Linear)}
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0).add_(0.1)
    grown = params_of(net)
    method.after_update({"q": role}, 1, make_batch)
    assert all(torch.equal(p, grown[n]) for n, p in net.named_parameters())  # not a projection step
    method.after_update({"q": role}, 2, make_batch)
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear):
            assert module.weight.norm().item() == pytest.approx(norms[name], rel=1e-6)
            direction = grown[f"{name}.weight"] / grown[f"{name}.weight"].norm()
            torch.testing.assert_close(module.weight / module.weight.norm(), direction)
            assert torch.equal(module.bias, grown[f"{name}.bias"])
    assert torch.equal(net.layers[1].weight, grown["layers.1.weight"])  # LayerNorm gain not projected


# --- continual backprop ------------------------------------------------------------------


def cbp_net() -> MLP:
    net = MLP(2, 2, NetworkConfig(hidden_sizes=(3,)))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        net.layers[0].bias.zero_()
        net.layers[2].weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [2.0, 0.0, -0.5]]))
    return net


def test_cbp_utility_is_the_formula_and_the_lowest_mature_units_are_replaced():
    net = cbp_net()
    role = make_role(net)
    method = ContinualBackprop(replacement_rate=0.5, decay=0.9, maturity_threshold=0)
    method.setup({"q": role})
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    with torch.no_grad():
        net(x)  # no gradient: acting/evaluation, not counted
    net(x)  # a training forward: h = [[1, 2, 3], [3, 4, 7]], mean |h| = [2, 3, 5]
    before = params_of(net)
    # utility = 0.1 * mean|h| * sum_k |w_ki| = 0.1 * [2*3, 3*1, 5*1]; 0.5 * 3 mature -> 1 replaced
    stats = method.after_update({"q": role}, 1, make_batch)
    utility = method.utility["q"]["layers.1"]
    torch.testing.assert_close(utility, torch.tensor([0.6, 0.0, 0.5]))
    assert stats == {"replaced_units/q": 1.0}
    assert method.age["q"]["layers.1"].tolist() == [1, 0, 1]
    weight = net.layers[0].weight
    assert not torch.equal(weight[1], before["layers.0.weight"][1])
    assert torch.equal(weight[[0, 2]], before["layers.0.weight"][[0, 2]])
    assert net.layers[2].weight[:, 1].tolist() == [0.0, 0.0]
    assert torch.equal(net.layers[2].weight[:, [0, 2]], before["layers.2.weight"][:, [0, 2]])
    # next update: no training forward, so utilities stay; ages [2, 1, 2] are all mature,
    # 0.5 left over + 0.5 * 3 = 2 units owed: the two lowest, units 1 and 2
    method.after_update({"q": role}, 2, make_batch)
    assert method.age["q"]["layers.1"].tolist() == [2, 0, 0]
    assert utility.tolist() == [pytest.approx(0.6), 0.0, 0.0]
    restored = ContinualBackprop(replacement_rate=0.5, decay=0.9, maturity_threshold=0)
    restored.setup({"q": make_role(cbp_net())})
    restored.load_state_dict(method.state_dict())
    assert restored.age["q"]["layers.1"].tolist() == [2, 0, 0] and restored.pending == method.pending


# --- C-CHAIN -------------------------------------------------------------------------------


def test_c_chain_term_is_the_mse_to_the_network_two_updates_earlier():
    net = mlp(hidden=(4,))
    role = make_role(net)
    method = CChain(coefficient=0.5)
    method.setup({"q": role})
    batch, reference = make_batch(seed=1), make_batch(seed=2)
    snapshots = []
    for step in (1, 2, 3):
        assert (method.loss_terms("q", net, batch) is None) == (step < 3)
        train_steps(role, batch, steps=1, method=method)
        snapshots.append(copy.deepcopy(net))
        method.after_update({"q": role}, step, lambda: reference)
    # the net now holds theta_3; two updates earlier is theta_1 (snapshots[0])
    term = method.loss_terms("q", net, batch)
    with torch.no_grad():
        expected = 0.5 * F.mse_loss(net(reference.obs), snapshots[0](reference.obs))
    torch.testing.assert_close(term, expected)
    assert term > 0 and term.requires_grad
    assert method.loss_terms("actor", net, batch) is None


# --- ReGraMa, released variant ------------------------------------------------------------


def fill_state(optimizer: torch.optim.Optimizer) -> None:
    for state in optimizer.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            state[key].uniform_(0.5, 1.5)


def released_scores(role, batch):
    return grama_scores(role.network, role.loss_fn, batch, variant="released")


def test_regrama_released_scores_are_weight_gradient_row_means():
    net = mlp(hidden=(4,), activation="Tanh")
    role = make_role(net)
    batch = make_batch()
    gradient = torch.autograd.grad(regression_loss(net, batch), net.layers[0].weight)[0]
    by_hand = gradient.abs().mean(dim=1)
    scores = released_scores(role, batch)
    torch.testing.assert_close(scores["layers.1"], by_hand / by_hand.mean())
    assert all(p.grad is None for p in net.parameters())

    ln_net = mlp(hidden=(4,), activation="Tanh", layer_norm=True)
    gamma_gradient = torch.autograd.grad(regression_loss(ln_net, batch), ln_net.layers[1].weight)[0].abs()
    torch.testing.assert_close(released_scores(make_role(ln_net), batch)["layers.2"],
                               gamma_gradient / gamma_gradient.mean())


def test_regrama_released_reset_keeps_outgoing_weights_and_adam_state():
    net = mlp(hidden=(4,), activation="Tanh")
    role = make_role(net)
    batch = make_batch()
    train_steps(role, batch)
    fill_state(role.optimizer)
    scores = released_scores(role, batch)["layers.1"]
    lowest = int(scores.argmin())
    before = params_of(net)
    state_before = {n: {k: v.clone() for k, v in role.optimizer.state[p].items()} for n, p in net.named_parameters()}
    method = ReGraMa(mode="lowest_k_percent", percent=25.0, period=1, variant="released")
    assert method.after_update({"q": role}, 1, lambda: batch) == {"reset_fraction/q": 0.25,
                                                                    "reset_neurons/q/layers.1": 1.0}
    changed_rows = (net.layers[0].weight != before["layers.0.weight"]).any(dim=1).nonzero().flatten().tolist()
    assert changed_rows == [lowest]
    assert torch.equal(net.layers[2].weight, before["layers.2.weight"])  # outgoing kept
    for name, p in net.named_parameters():
        for key, value in role.optimizer.state[p].items():
            assert torch.equal(value, state_before[name][key]), (name, key)
    default = ReGraMa(mode="lowest_k_percent", percent=25.0, period=1)
    assert default.variant == "released"  # the released code's score and reset, its paper's Table 8 setting
    with pytest.raises(ValueError, match="variant"):
        ReGraMa(variant="code")


# --- hooks and composition ---------------------------------------------------------------


def test_training_hooks_sum_loss_terms_of_every_method():
    net = mlp(hidden=(2,), obs_dim=2, out_dim=1)
    l2a, l2b = L2Init(coefficient=0.1), L2Init(coefficient=0.2)
    for method in (l2a, l2b):
        method.setup({"q": make_role(net)})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    hooks = TrainingHooks([Method(), l2a, l2b])
    torch.testing.assert_close(hooks.loss_terms("q", net, make_batch()), torch.tensor(0.3 * 9 * 0.25))
    assert TrainingHooks([Method()]).loss_terms("q", net, make_batch()) is None


class OtherOptimizer(Method):
    name = "other_optimizer"
    provides_optimizer = True


def test_composition_rules():
    with pytest.raises(InvalidCombinationError, match="reset and cbp both own the reset schedule"):
        build_spec("sac", "mlp", "reset+cbp", "gym:Pendulum-v1", 0, 100)
    with pytest.raises(InvalidCombinationError, match="shrink_perturb and regrama both own the reset schedule"):
        build_spec("sac", "mlp", "shrink_perturb+regrama", "gym:Pendulum-v1", 0, 100)
    with pytest.raises(InvalidCombinationError, match="weight_decay and other both provide the optimizer"):
        validate_method_combination({"weight_decay": WeightDecay, "other": OtherOptimizer}, "mlp")
    with pytest.raises(InvalidCombinationError, match="'crelu'.*residual"):
        build_spec("sac", "residual", "crelu", "gym:Pendulum-v1", 0, 100)
    with pytest.raises(InvalidCombinationError, match="'CReLU'.*residual"):
        build_spec("sac", "residual", "none", "gym:Pendulum-v1", 0, 100, ["activation=CReLU"])
    spec = build_spec("sac", "mlp", "layer_norm+regrama+l2_init+c_chain+weight_decay", "gym:Pendulum-v1", 0, 100,
                      ["regrama.variant=released"])
    assert spec.method_options["regrama"]["variant"] == "released"
    assert build_spec("dqn", "mlp", "plasticity_injection+crelu+nap", "gym:CartPole-v1", 0, 100).methods == (
        "plasticity_injection", "crelu", "nap")


def test_every_baseline_is_registered_with_its_defaults():
    expected = {
        "shrink_perturb": {"shrink": 0.4, "perturb": 0.1, "form": "noise", "period": 200_000, "roles": None},
        "reset": {"period": 200_000, "layers": "all", "roles": None},
        "plasticity_injection": {"at_fraction": 0.25, "at_update": None, "roles": None},
        "crelu": {},
        "l2_init": {"coefficient": 1e-2, "roles": None},
        "weight_decay": {"weight_decay": 0.01, "roles": None},
        "nap": {"period": 1, "roles": None},
        "cbp": {"replacement_rate": 1e-4, "decay": 0.99, "maturity_threshold": 1000, "roles": None},
        "c_chain": {"coefficient": None, "target_relative_scale": 0.01, "initial_coefficient": 50.0,
                    "adapt_after": 10_000, "window": 50_000, "roles": None},
        "l2": {"coefficient": 5e-4, "roles": None},
        "parseval": {"coefficient": 1e-3, "scale": 2.0, "reference_width": 64, "roles": None},
        "dff": {},
        "trac": {"roles": None},
    }
    for name, options in expected.items():
        method = make_method(name)
        assert method.name == name and type(method).options() == options
    owners = {name for name in expected if make_method(name).owns_reset_schedule}
    assert owners == {"shrink_perturb", "reset", "cbp"}
    assert math.isclose(make_method("cbp").replacement_rate, 1e-4)


# --- resuming a run whose methods hold state or changed the networks ----------------------


@pytest.mark.parametrize("method, options", [
    ("plasticity_injection", ["plasticity_injection.at_update=20"]),  # structure changed before the checkpoint
    ("cbp", ["cbp.maturity_threshold=5", "cbp.replacement_rate=0.05"]),
    ("c_chain+l2_init", []),
    ("c_chain", ["c_chain.adapt_after=30", "c_chain.window=40"]),  # adaptive coefficient and its windows
    ("trac", []),
    ("parseval+l2+dff", []),
])
def test_trainer_resume_with_stateful_methods_equals_uninterrupted(tmp_path, method, options):
    from plasticity_bench.training.entry import run_to_end
    from plasticity_bench.training.run import Trainer

    overrides = ["eval_episodes=1", "eval_every_steps=1000", "hidden_sizes=[16, 16]", "learning_starts=100",
                 "checkpoint_every_steps=150", "replay_ratio=1.0", "monitor_every_updates=50", *options]
    spec = build_spec("dqn", "mlp", method, "gym:CartPole-v1", 0, 300, overrides)
    reference = Trainer(spec, tmp_path / "reference", 1, torch.device("cpu"), False)
    run_to_end(reference)

    interrupted = Trainer(spec, tmp_path / "resumed", 1, torch.device("cpu"), False)
    save = interrupted.save_checkpoint

    def save_then_stop():
        save()
        raise KeyboardInterrupt  # as if killed right after the first checkpoint

    interrupted.save_checkpoint = save_then_stop
    with pytest.raises(KeyboardInterrupt):
        run_to_end(interrupted)
    assert interrupted.env_steps < 300 and interrupted.updates >= 20
    resumed = Trainer(spec, tmp_path / "resumed", 1, torch.device("cpu"), False)
    assert run_to_end(resumed)["resumes"] == 1
    for name, role in reference.agent.roles.items():
        ours = resumed.agent.roles[name]
        assert list(role.network.state_dict()) == list(ours.network.state_dict())
        for key, value in role.network.state_dict().items():
            assert torch.equal(value, ours.network.state_dict()[key]), (name, key)
    assert reference.records.metric_rows == resumed.records.metric_rows


# --- the agents go through the hooks ---------------------------------------------------


def test_agents_build_optimizers_and_losses_through_the_hooks():
    from plasticity_bench.agents.dqn import DQN
    from plasticity_bench.agents.sac import SAC
    from plasticity_bench.agents.td3 import TD3
    from plasticity_bench.spec import agent_hyperparams, default_hyperparams

    network = NetworkConfig(hidden_sizes=(8, 8))
    hooks = TrainingHooks([WeightDecay(weight_decay=0.05)])
    for cls, algo in ((SAC, "sac"), (TD3, "td3")):
        agent = cls(3, 1, default_hyperparams(algo), network, 1000, torch.device("cpu"),
                    hooks=hooks)
        assert {name: type(role.optimizer) for name, role in agent.roles.items()} == {
            "actor": torch.optim.AdamW, "critic": torch.optim.AdamW}
        assert agent.roles["critic"].targets == (agent.critic_target,)
    assert agent.roles["actor"].targets == (agent.actor_target,)  # TD3's target actor

    torch.manual_seed(0)
    l2 = L2Init(coefficient=0.5)
    dqn = DQN(4, 2, agent_hyperparams("dqn", default_hyperparams("dqn")), network, 1000, torch.device("cpu"),
              hooks=TrainingHooks([l2]))
    assert type(dqn.optimizer) is torch.optim.Adam and dqn.roles["q"].targets == (dqn.target_network,)
    l2.setup(dqn.roles)
    with torch.no_grad():
        for p in dqn.q_network.parameters():
            p.add_(0.1)
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g), torch.randn(8, generator=g),
                  torch.randn(8, 4, generator=g), torch.zeros(8))
    count = sum(p.numel() for p in dqn.q_network.parameters())
    expected = dqn.q_loss(dqn.q_network, batch) + 0.5 * count * 0.01
    torch.testing.assert_close(dqn.update(batch)["q_loss"], expected.detach())
