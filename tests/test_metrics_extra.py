"""Rank, norm and curvature metrics against hand computations on tiny networks."""

from __future__ import annotations

import math

import pytest
import torch

from plasticity_bench.metric_names import TASK_METRICS
from plasticity_bench.metrics.plasticity_probe import PROBE_METRICS
from torch import nn
from torch.func import functional_call

from plasticity_bench import results
from plasticity_bench.roles import Batch, Role
from plasticity_bench.agents.common import TwinQ
from plasticity_bench.metrics import (
    METRICS,
    effective_rank,
    feature_norm,
    feature_ranks,
    grad_norm,
    hessian_top_eigenvalue,
    hidden_features,
    monitor_roles,
    penultimate_features,
    snapshot_parameters,
    srank,
    weight_drift,
    weight_magnitude,
)
from plasticity_bench.networks import MLP, NetworkConfig, ResidualNet
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer

X = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0], [2.0, 2.0]])
T = torch.tensor([[1.0], [6.0], [0.0], [0.5]])


def hand_relu_net() -> MLP:
    """2 → 3 → 2 → 1 ReLU MLP (the example of test_metrics.py)."""
    net = MLP(2, 1, NetworkConfig(hidden_sizes=(3, 2), activation="ReLU"))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        net.layers[0].bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
        net.layers[2].weight.copy_(torch.tensor([[1.0, -1.0, 5.0], [0.5, 0.5, 0.0]]))
        net.layers[2].bias.copy_(torch.tensor([0.0, -10.0]))
        net.layers[4].weight.copy_(torch.tensor([[2.0, 3.0]]))
        net.layers[4].bias.copy_(torch.tensor([0.5]))
    return net


def mse(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    inputs, targets = batch
    return ((net(inputs) - targets) ** 2).mean()


# By hand for X: h1 = [[1,2,0],[3,0,0],[0,1,0],[2,2,0]], h2 = [[0,0],[3,0],[0,0],[0,0]].
H1 = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 2.0, 0.0]])
H2 = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
# h1's non-zero columns give h1^T h1 = [[14, 6], [6, 9]]: trace 23, det 90, eigenvalues 18
# and 5, so sigma(h1) = (sqrt 18, sqrt 5). h2 has rank 1: sigma = (3, 0).
SIGMA_H1 = (math.sqrt(18.0), math.sqrt(5.0))
P_H1 = tuple(s / sum(SIGMA_H1) for s in SIGMA_H1)  # (0.6549, 0.3451)
ERANK_H1 = math.exp(-sum(p * math.log(p) for p in P_H1))  # 1.9049
# Feature norms: rows of h1 have norms sqrt5, 3, 1, sqrt8; of h2: 0, 3, 0, 0.
FEATURE_NORM_H1 = (math.sqrt(5) + 3 + 1 + math.sqrt(8)) / 4
FEATURE_NORM_H2 = 3 / 4
# 20 parameters; sum of squares 2 + 1 + 27.5 + 100 + 13 + 0.25 = 143.75.
WEIGHT_MAGNITUDE = math.sqrt(143.75 / 20)
# dL/dy = [-0.25, 0.25, 0.25, 0]; only sample 2 reaches layer 2 (z21 = 3) and layer 1 (z11 = 3):
# dW3 = [0.75, 0], db3 = 0.25; dW2 = [[1.5, 0, 0], [0, 0, 0]], db2 = [0.5, 0];
# dW1 = [[1.5, -0.5], 0, 0], db1 = [0.5, 0, 0]. Squares: .5625+.0625+2.25+.25+2.25+.25+.25.
GRAD_NORM = math.sqrt(5.875)


def orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=generator, dtype=torch.float64))
    return q


def with_singular_values(sigma: list[float], rows: int = 8, cols: int = 6) -> torch.Tensor:
    """U diag(sigma) V^T with random orthonormal U, V: a dense matrix of known spectrum."""
    k = len(sigma)
    return (orthonormal(rows, k, 0) @ torch.diag(torch.tensor(sigma, dtype=torch.float64))
            @ orthonormal(cols, k, 1).T).float()


def test_srank_counts_singular_values_up_to_one_minus_delta():
    # sigma sums to 100; cumulative 60, 85, 95, 99.5, 100.
    features = with_singular_values([60.0, 25.0, 10.0, 4.5, 0.5])
    assert float(srank(features)) == 4  # needs >= 99
    assert float(srank(features, delta=0.1)) == 3  # >= 90
    assert float(srank(features, delta=0.3)) == 2  # >= 70
    assert float(srank(features, delta=0.0)) == 5
    assert float(srank(torch.zeros(5, 3))) == 0


def test_effective_rank_is_exp_entropy_of_normalised_singular_values():
    # p = (0.75, 0.25): entropy = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335, exp = 1.754765
    assert float(effective_rank(with_singular_values([3.0, 1.0]))) == pytest.approx(1.754765, rel=1e-5)
    assert float(effective_rank(with_singular_values([2.0, 2.0, 2.0]))) == pytest.approx(3.0, rel=1e-5)
    assert float(effective_rank(with_singular_values([5.0]))) == pytest.approx(1.0, rel=1e-5)
    assert float(effective_rank(torch.zeros(4, 2))) == 0.0


def test_features_and_ranks_of_the_hand_network():
    net = hand_relu_net()
    features = hidden_features(net, X)
    assert list(features) == ["layers.1", "layers.3"]
    torch.testing.assert_close(features["layers.1"], H1)
    torch.testing.assert_close(features["layers.3"], H2)
    # the output layer reads the last activation's output: the penultimate layer is layers.3
    penultimate = penultimate_features(net, X)
    assert list(penultimate) == ["layers.3"]
    torch.testing.assert_close(penultimate["layers.3"], H2)
    ranks = feature_ranks(net, X)
    assert ranks["layers.1"]["srank"] == 2
    assert ranks["layers.1"]["effective_rank"] == pytest.approx(ERANK_H1, rel=1e-5)
    assert ranks["layers.3"] == pytest.approx({"srank": 1.0, "effective_rank": 1.0})
    assert feature_ranks(net, X, delta=0.4)["layers.1"]["srank"] == 1  # 0.6549 >= 0.6
    assert float(feature_norm(H1)) == pytest.approx(FEATURE_NORM_H1)
    assert float(feature_norm(H2)) == pytest.approx(FEATURE_NORM_H2)


def test_twin_networks_have_one_penultimate_layer_each():
    torch.manual_seed(0)
    critic = TwinQ(3, 1, NetworkConfig(hidden_sizes=(5, 4), activation="ReLU"))
    obs, action = torch.randn(7, 3), torch.randn(7, 1)
    penultimate = penultimate_features(critic, (obs, action))
    assert list(penultimate) == ["q1.layers.3", "q2.layers.3"]
    with torch.no_grad():
        x = torch.cat([obs, action], dim=1)
        torch.testing.assert_close(penultimate["q2.layers.3"], critic.q2.layers[:4](x))


def test_residual_penultimate_features_are_the_output_layers_input():
    torch.manual_seed(0)
    for pre_norm in (False, True):
        net = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(6,), blocks=1, pre_norm=pre_norm))
        x = torch.randn(5, 3)
        penultimate = penultimate_features(net, x)
        assert list(penultimate) == ["output:input"]
        with torch.no_grad():
            stream = net.input_activation(net.input_norm(net.input_dense(x)))
            torch.testing.assert_close(penultimate["output:input"], net.output_norm(net.blocks(stream)))


def test_weight_magnitude_and_drift_by_hand():
    net = hand_relu_net()
    assert float(weight_magnitude(net)) == pytest.approx(WEIGHT_MAGNITUDE)
    initial = snapshot_parameters(net)
    assert float(weight_drift(net, initial)) == 0.0
    with torch.no_grad():
        net.layers[0].weight[0, 1] += 2.0  # one element moved by 2: mean square 4 / 20
    assert float(weight_drift(net, initial)) == pytest.approx(math.sqrt(0.2))
    assert float(weight_drift(net, [p - 1.0 for p in net.parameters()])) == pytest.approx(1.0)
    # the snapshot is a copy: training the net does not move theta0
    assert float(initial[0][0, 1]) == 0.0
    # parameters whose shapes changed have no drift (the monitor writes no row)
    assert weight_drift(net, initial[:-1]) is None
    assert weight_drift(net, [torch.zeros(2, 2)] + initial[1:]) is None


def test_grad_norm_by_hand_and_without_side_effects():
    net = hand_relu_net()
    net.train()
    for p in net.parameters():
        p.grad = torch.full_like(p, 7.0)
    assert float(grad_norm(net, mse, (X, T))) == pytest.approx(GRAD_NORM)
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in net.parameters())
    assert all(m.training for m in net.modules())
    # frozen parameters do not count
    net.layers[0].requires_grad_(False)
    assert float(grad_norm(net, mse, (X, T))) == pytest.approx(math.sqrt(5.875 - 1.5**2 - 0.5**2 - 0.5**2))


def test_hessian_eigenvalue_of_least_squares_by_hand():
    # L = mean (x w - t)^2 over X: H = (2/4) X^T X = [[9, 0.5], [0.5, 5]];
    # eigenvalues (14 ± sqrt 17) / 2, the top one 9.0616.
    net = nn.Linear(2, 1, bias=False)
    top = hessian_top_eigenvalue(net, mse, (X, T), iterations=200, tolerance=1e-7)
    assert float(top) == pytest.approx((14 + math.sqrt(17)) / 2, rel=1e-4)
    # the dominant eigenvalue keeps its sign: -L has Hessian -H
    bottom = hessian_top_eigenvalue(net, lambda n, b: -mse(n, b), (X, T), iterations=200, tolerance=1e-7)
    assert float(bottom) == pytest.approx(-(14 + math.sqrt(17)) / 2, rel=1e-4)


def exact_hessian(net: nn.Module, loss_fn, batch) -> torch.Tensor:
    names = [name for name, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])

    def loss_of(theta: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        return functional_call(net, params, (batch[0],)).sub(batch[1]).pow(2).mean()

    return torch.autograd.functional.hessian(loss_of, flat)


def test_hessian_eigenvalue_of_an_mlp_matches_the_exact_hessian():
    torch.manual_seed(3)
    net = MLP(2, 1, NetworkConfig(hidden_sizes=(4,), activation="Tanh")).double()
    x, t = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 1, dtype=torch.float64)
    eigenvalues = torch.linalg.eigvalsh(exact_hessian(net, mse, (x, t)))
    dominant = eigenvalues[eigenvalues.abs().argmax()]
    net.train()
    for p in net.parameters():
        p.grad = torch.full_like(p, 7.0)
    before = snapshot_parameters(net)
    estimate = hessian_top_eigenvalue(net, mse, (x, t), iterations=500, tolerance=1e-10)
    assert float(estimate) == pytest.approx(float(dominant), rel=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in net.parameters())
    assert all(m.training for m in net.modules())


def test_monitor_rows_of_the_hand_network():
    net = hand_relu_net()
    initial = [p - 1.0 for p in snapshot_parameters(net)]  # drift exactly 1
    zeros = torch.zeros(4, 1)
    batch = Batch(obs=X, actions=zeros, rewards=T, next_obs=X, terminations=zeros)
    role = Role(network=net, optimizer=torch.optim.Adam(net.parameters()),
                loss_fn=lambda n, b: ((n(b.obs) - b.rewards) ** 2).mean(), forward_inputs=lambda b: (b.obs,))
    forwards = []
    handle = net.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        rows = monitor_roles({"critic": role}, batch, {"critic": initial})
    finally:
        handle.remove()
    # every metric but the Hessian comes from the one probe pass, plus one pass for the released set
    assert len(forwards) == 2
    table = {(r["layer"], r["metric"]): r["value"] for r in rows}
    # probe: training/run.py; block outputs: residual nets only
    assert {r["metric"] for r in rows} == {m for m in set(METRICS) - {"hessian_top_eigenvalue"} - set(PROBE_METRICS) - set(TASK_METRICS)
                                           if ":block_out" not in m}
    expected = {
        ("layers.1", "srank"): 2, ("layers.1", "effective_rank"): ERANK_H1,
        ("layers.3", "srank"): 1, ("layers.3", "effective_rank"): 1.0,
        ("all", "srank"): 1, ("all", "effective_rank"): 1.0,  # the penultimate layer is layers.3
        ("layers.1", "feature_norm"): FEATURE_NORM_H1, ("layers.3", "feature_norm"): FEATURE_NORM_H2,
        ("all", "feature_norm"): FEATURE_NORM_H2,
        ("all", "weight_magnitude"): WEIGHT_MAGNITUDE, ("all", "weight_drift"): 1.0,
        ("all", "grad_norm"): GRAD_NORM,
    }
    for key, value in expected.items():
        assert table[key] == pytest.approx(value, rel=1e-5), key
    assert ("layers.1", "grad_norm") not in table
    # theta0 of other shapes: no drift row, nothing else changes
    net.train()
    for p in net.parameters():
        p.grad = torch.full_like(p, 7.0)
    before = snapshot_parameters(net)
    rows = monitor_roles({"critic": role}, batch, {"critic": initial[:2]}, hessian=True, hessian_iterations=50)
    assert all(torch.equal(p, q) and torch.equal(p.grad, torch.full_like(p, 7.0))
               for p, q in zip(net.parameters(), before))
    assert all(m.training for m in net.modules()) and all(not m._forward_hooks for m in net.modules())
    assert all(not m._forward_pre_hooks for m in net.modules())
    table = {(r["layer"], r["metric"]): r["value"] for r in rows}
    assert ("all", "weight_drift") not in table
    reference = hessian_top_eigenvalue(net, role.loss_fn, batch, iterations=50)
    assert table[("all", "hessian_top_eigenvalue")] == pytest.approx(float(reference))


def test_network_value_is_the_mean_over_penultimate_layers():
    torch.manual_seed(0)
    critic = TwinQ(3, 1, NetworkConfig(hidden_sizes=(8, 8), activation="ReLU"))
    with torch.no_grad():  # make q2's last layer lower-rank than q1's
        critic.q2.layers[2].weight[4:].zero_()
        critic.q2.layers[2].bias[4:] = -1.0
    generator = torch.Generator().manual_seed(1)
    obs, actions = torch.randn(16, 3, generator=generator), torch.randn(16, 1, generator=generator)
    batch = Batch(obs=obs, actions=actions, rewards=torch.randn(16, generator=generator), next_obs=obs,
                  terminations=torch.zeros(16))

    def loss(net, b):
        q1, q2 = net(b.obs, b.actions)
        return ((q1.squeeze(-1) - b.rewards) ** 2).mean() + ((q2.squeeze(-1) - b.rewards) ** 2).mean()

    role = Role(critic, torch.optim.Adam(critic.parameters()), loss, lambda b: (b.obs, b.actions))
    table = {(r["layer"], r["metric"]): r["value"] for r in monitor_roles({"critic": role}, batch)}
    ranks = feature_ranks(critic, (obs, actions))
    assert ranks["q2.layers.3"]["srank"] <= 4 < ranks["q1.layers.3"]["srank"]
    for metric in ("srank", "effective_rank"):
        mean = (ranks["q1.layers.3"][metric] + ranks["q2.layers.3"][metric]) / 2
        assert table[("all", metric)] == pytest.approx(mean, rel=1e-5)
        assert table[("q1.layers.3", metric)] == pytest.approx(ranks["q1.layers.3"][metric], rel=1e-5)


def test_trainer_keeps_initial_parameters_in_its_checkpoint(tmp_path):
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed=0, steps=400,
                      overrides=["hidden_sizes=[8, 8]", "learning_starts=100", "monitor_every_updates=50"])
    trainer = Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False)
    net = trainer.agent.roles["q"].network
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), trainer.initial_params["q"]))
    trainer.start_episode()
    while trainer.updates < 100:
        over = trainer.collect_step()
        trainer.train_on_replay()
        if over:
            trainer.start_episode()
    drift = [r for r in trainer.records.metric_rows if r["metric"] == "weight_drift"]
    # a row at update 0 (drift 0), then every 50 updates
    assert len(drift) == 3 and drift[0]["value"] == 0 < drift[1]["value"] < drift[2]["value"]
    # The checkpoint carries theta0 itself (marked here so that a rebuilt init cannot pass).
    trainer.initial_params = {"q": [p + 0.5 for p in trainer.initial_params["q"]]}
    trainer.save_checkpoint()
    resumed = Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False)
    resumed.restore(results.load_checkpoint(tmp_path / results.CHECKPOINT))
    for p, q in zip(resumed.initial_params["q"], trainer.initial_params["q"]):
        assert torch.equal(p, q)


class Shared(nn.Module):
    """One ReLU module applied after two Linear layers; the output layer reads its 2nd call."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(2, 3)
        self.second = nn.Linear(3, 3)
        self.act = nn.ReLU()
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        return self.out(self.act(self.second(self.act(self.first(x)))))


def test_shared_activation_pools_features_but_penultimate_is_what_the_output_reads():
    torch.manual_seed(1)
    net = Shared()
    with torch.no_grad():
        h_a = torch.relu(net.first(X))
        h_b = torch.relu(net.second(h_a))
    torch.testing.assert_close(hidden_features(net, X)["act"], torch.cat([h_a, h_b]))
    penultimate = penultimate_features(net, X)
    assert list(penultimate) == ["act"]
    torch.testing.assert_close(penultimate["act"], h_b)
    zeros = torch.zeros(4, 1)
    batch = Batch(obs=X, actions=zeros, rewards=T, next_obs=X, terminations=zeros)
    role = Role(net, torch.optim.Adam(net.parameters()), lambda n, b: mse(n, (b.obs, b.rewards)), lambda b: (b.obs,))
    table = {(r["layer"], r["metric"]): r["value"] for r in monitor_roles({"net": role}, batch)}
    assert table[("act", "feature_norm")] == pytest.approx(float(feature_norm(torch.cat([h_a, h_b]))))
    assert table[("all", "feature_norm")] == pytest.approx(float(feature_norm(h_b)))


def test_conv_features_are_flattened_per_sample():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    x = torch.randn(5, 2, 6, 6)
    with torch.no_grad():
        h = torch.relu(net[0](x)).reshape(5, -1)
    torch.testing.assert_close(hidden_features(net, x)["1"], h)
    # the Flatten between them is no activation: the output layer's input is named as such
    torch.testing.assert_close(penultimate_features(net, x)["3:input"], h)
