"""Activity metrics against hand computations."""

from __future__ import annotations

import pytest
import torch

from plasticity_bench.metric_names import TASK_METRICS
from plasticity_bench.metrics.plasticity_probe import PROBE_METRICS
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.metrics import (
    METRICS,
    active_fraction,
    active_fraction_per_layer,
    dormant_scores,
    grama_scores,
    inactive_ratio,
    inactive_ratio_per_layer,
    monitor_roles,
)
from plasticity_bench.networks import MLP, NetworkConfig

# Inputs and targets of the hand-computed ReLU example.
X = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0], [2.0, 2.0]])
T = torch.tensor([[1.0], [6.0], [0.0], [0.5]])


def hand_relu_net() -> MLP:
    """2 → 3 → 2 → 1 ReLU MLP. Layer-1 neuron 3 is dead (bias -1, no weights); layer-2
    neuron 2 is dead (bias -10, its inputs never exceed 3)."""
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


# Worked by hand for X, T:
#   h1 = relu([x1, x2, -1]) = [[1,2,0],[3,0,0],[0,1,0],[2,2,0]]; E|h1| = [1.5, 1.25, 0]
#   z2 = [h11 - h12 + 5 h13, 0.5 h11 + 0.5 h12 - 10]; h2 = [[0,0],[3,0],[0,0],[0,0]]; E|h2| = [0.75, 0]
#   y = 2 h21 + 0.5 = [0.5, 6.5, 0.5, 0.5]; dL/dy = 2 (y - t) / 4 = [-0.25, 0.25, 0.25, 0]
#   dL/dh2 = dL/dy * [2, 3]; E|dL/dh2| = [0.375, 0.5625]
#   dL/dz2 is non-zero only for sample 2 (z21 = 3 > 0): [0.5, 0]; E|dL/dz2| = [0.125, 0]
#   dL/dh1 = dL/dz2 @ W2 = [0.5, -0.5, 2.5] for sample 2, else 0; E|dL/dh1| = [0.125, 0.125, 0.625]
#   dL/dz1 = dL/dh1 * 1[z1 > 0], z1 = [3, -1, -1] for sample 2: [0.5, 0, 0]; E|dL/dz1| = [0.125, 0, 0]
#   released: dL/dW1 = dL/dz1^T x = [[1.5, -0.5], 0, 0], row means of |.| [1, 0, 0];
#             dL/dW2 = dL/dz2^T h1 = [[1.5, 0, 0], 0], row means [0.5, 0]
HAND_DORMANT = {"layers.1": [18 / 11, 15 / 11, 0.0], "layers.3": [2.0, 0.0]}
HAND_GRAMA = {"layers.1": [3.0, 0.0, 0.0], "layers.3": [2.0, 0.0]}  # pre-activation (default)
HAND_GRAMA_OUTPUT = {"layers.1": [3 / 7, 3 / 7, 15 / 7], "layers.3": [0.8, 1.2]}
HAND_GRAMA_RELEASED = {"layers.1": [3.0, 0.0, 0.0], "layers.3": [2.0, 0.0]}


def test_relu_scores_match_hand_computation():
    net = hand_relu_net()
    dormant = dormant_scores(net, X)
    grama = grama_scores(net, mse, (X, T))
    assert list(dormant) == list(grama) == ["layers.1", "layers.3"]
    for name in HAND_DORMANT:
        torch.testing.assert_close(dormant[name], torch.tensor(HAND_DORMANT[name]))
        torch.testing.assert_close(grama[name], torch.tensor(HAND_GRAMA[name]))
    # a tuple of inputs is unpacked into net(*inputs)
    torch.testing.assert_close(dormant_scores(net, (X,))["layers.1"], dormant["layers.1"])


@pytest.mark.parametrize("variant, expected", [("output", HAND_GRAMA_OUTPUT), ("released", HAND_GRAMA_RELEASED)])
def test_grama_variants_match_hand_computation(variant, expected):
    grama = grama_scores(hand_relu_net(), mse, (X, T), variant=variant)
    assert list(grama) == list(expected)
    for name in expected:
        torch.testing.assert_close(grama[name], torch.tensor(expected[name]))


def test_dead_relu_units_score_zero_only_under_the_pre_activation_gradient():
    """The dead units (layer 1 unit 3, layer 2 unit 2) score exactly 0 by default; the
    literal output-gradient reading gives the dead layer-1 unit the layer's HIGHEST score."""
    net = hand_relu_net()
    pre = grama_scores(net, mse, (X, T))
    output = grama_scores(net, mse, (X, T), variant="output")
    assert pre["layers.1"][2] == 0.0 and pre["layers.3"][1] == 0.0
    assert output["layers.1"][2] == output["layers.1"].max() > 1.0


def test_unknown_grama_variant_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown GraMa variant 'gradient'; valid: pre_activation, output, released"):
        grama_scores(hand_relu_net(), mse, (X, T), variant="gradient")


def test_derived_ratios():
    scores = {"a": torch.tensor([0.0, 0.05, 1.0, 2.0]), "b": torch.tensor([0.1, 3.0])}
    assert inactive_ratio(scores, 0.0) == pytest.approx(1 / 6)
    assert inactive_ratio(scores, 0.1) == pytest.approx(3 / 6)
    assert inactive_ratio_per_layer(scores, 0.1) == pytest.approx({"a": 0.5, "b": 0.5})
    net = hand_relu_net()
    # h1 > 0: neurons 1, 2 in 3 of 4 samples, neuron 3 never; h2 > 0: neuron 1 in 1 sample
    assert active_fraction_per_layer(net, X) == pytest.approx({"layers.1": 6 / 12, "layers.3": 1 / 8})
    assert active_fraction(net, X) == pytest.approx(7 / 20)


def chain_rule_layernorm_silu(net: MLP, x: torch.Tensor, t: torch.Tensor):
    """Forward and backward written out: z = W h + b, y = gamma (z - mu) / sigma + beta,
    h' = silu(y); output linear; L = mean over batch and outputs of (out - t)^2."""
    lin1, ln1, lin2, ln2, lin3 = net.layers[0], net.layers[1], net.layers[3], net.layers[4], net.layers[6]
    with torch.no_grad():

        def layer_norm(z, ln):
            mu = z.mean(dim=1, keepdim=True)
            sigma = torch.sqrt(((z - mu) ** 2).mean(dim=1, keepdim=True) + ln.eps)
            zhat = (z - mu) / sigma
            return ln.weight * zhat + ln.bias, zhat, sigma

        def silu_derivative(y):
            s = torch.sigmoid(y)
            return s * (1 + y * (1 - s))

        z1 = x @ lin1.weight.T + lin1.bias
        y1, _, _ = layer_norm(z1, ln1)
        h1 = y1 * torch.sigmoid(y1)
        z2 = h1 @ lin2.weight.T + lin2.bias
        y2, zhat2, sigma2 = layer_norm(z2, ln2)
        h2 = y2 * torch.sigmoid(y2)
        out = h2 @ lin3.weight.T + lin3.bias
        d_out = 2 * (out - t) / out.numel()
        d_h2 = d_out @ lin3.weight
        d_y2 = d_h2 * silu_derivative(y2)
        d_zhat2 = d_y2 * ln2.weight
        d_z2 = (d_zhat2 - d_zhat2.mean(dim=1, keepdim=True) - zhat2 * (d_zhat2 * zhat2).mean(dim=1, keepdim=True)) / sigma2
        d_h1 = d_z2 @ lin2.weight
        d_y1 = d_h1 * silu_derivative(y1)

    def normalised(m):
        return m / (m.mean() + 1e-9)

    dormant = {"layers.2": normalised(h1.abs().mean(0)), "layers.5": normalised(h2.abs().mean(0))}
    # GraMa's z is the activation's input, here the LayerNorm's output y.
    grama = {"layers.2": normalised(d_y1.abs().mean(0)), "layers.5": normalised(d_y2.abs().mean(0))}
    grama_output = {"layers.2": normalised(d_h1.abs().mean(0)), "layers.5": normalised(d_h2.abs().mean(0))}
    return dormant, grama, grama_output


def test_layernorm_silu_scores_match_chain_rule():
    torch.manual_seed(0)
    net = MLP(3, 2, NetworkConfig(hidden_sizes=(4, 5), activation="SiLU", layer_norm=True))
    with torch.no_grad():  # non-trivial affine LayerNorm parameters
        for module in net.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    x, t = torch.randn(6, 3), torch.randn(6, 2)
    expected_dormant, expected_grama, expected_output = chain_rule_layernorm_silu(net, x, t)
    dormant = dormant_scores(net, x)
    grama = grama_scores(net, mse, (x, t))
    output = grama_scores(net, mse, (x, t), variant="output")
    assert list(dormant) == list(grama) == ["layers.2", "layers.5"]
    for name in expected_dormant:
        torch.testing.assert_close(dormant[name], expected_dormant[name])
        torch.testing.assert_close(grama[name], expected_grama[name])
        torch.testing.assert_close(output[name], expected_output[name])


def test_probe_leaves_parameters_gradients_and_modes_as_found():
    net = hand_relu_net()
    critic = nn.Linear(1, 1)  # another network used inside the loss, like a critic in an actor loss
    net.train()
    net.layers[1].eval()  # a mixed mode must survive too
    params_before = {name: p.detach().clone() for name, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.full_like(p, 7.0)
    critic.weight.grad = torch.full_like(critic.weight, 3.0)

    def actor_loss(actor, batch):
        return critic(actor(batch)).pow(2).mean()

    modes_before = [m.training for m in net.modules()]
    grama_scores(net, actor_loss, X)
    dormant_scores(net, X)
    assert [m.training for m in net.modules()] == modes_before
    for name, p in net.named_parameters():
        assert torch.equal(p, params_before[name])
        assert torch.equal(p.grad, torch.full_like(p, 7.0))
    assert torch.equal(critic.weight.grad, torch.full_like(critic.weight, 3.0))
    assert critic.bias.grad is None
    # no hooks are left behind
    assert all(not m._forward_hooks for m in net.modules())


class Reordered(nn.Module):
    """Defines ``late`` before ``early`` but calls ``early`` first."""

    def __init__(self):
        super().__init__()
        self.late = nn.Tanh()
        self.early = nn.ReLU()
        self.first = nn.Linear(2, 3)
        self.second = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(self.late(self.second(self.early(self.first(x)))))


def test_keys_follow_forward_execution_order():
    net = Reordered()
    assert list(dormant_scores(net, X)) == ["early", "late"]
    assert list(grama_scores(net, mse, (X, T))) == ["early", "late"]
    assert list(dormant_scores(net, X)["late"].shape) == [4]


class Shared(nn.Module):
    """One ReLU module applied after two Linear layers."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(2, 3)
        self.second = nn.Linear(3, 3)
        self.act = nn.ReLU()
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        return self.out(self.act(self.second(self.act(self.first(x)))))


def test_shared_activation_pools_its_calls_along_the_batch():
    torch.manual_seed(1)
    net = Shared()
    with torch.no_grad():
        z_a = net.first(X)
        h_a = torch.relu(z_a)
        z_b = net.second(h_a)
        h_b = torch.relu(z_b)
        pooled = torch.cat([h_a, h_b]).abs().mean(0)
        d_z_b = (2 * (net.out(h_b) - T) / T.numel()) @ net.out.weight * (z_b > 0)
        d_z_a = (d_z_b @ net.second.weight) * (z_a > 0)
        pooled_grad = torch.cat([d_z_a, d_z_b]).abs().mean(0)
    torch.testing.assert_close(dormant_scores(net, X)["act"], pooled / (pooled.mean() + 1e-9))
    torch.testing.assert_close(grama_scores(net, mse, (X, T))["act"], pooled_grad / (pooled_grad.mean() + 1e-9))


def test_no_grad_calls_inside_the_loss_do_not_change_grama():
    net = hand_relu_net()

    def with_target(net, batch):
        with torch.no_grad():
            target = net(batch[0] * 2)  # e.g. a bootstrap target from the online network
        return mse(net, batch) + 0.0 * target.sum()

    plain = grama_scores(net, mse, (X, T))
    mixed = grama_scores(net, with_target, (X, T))
    for name in plain:
        torch.testing.assert_close(mixed[name], plain[name])


def test_frozen_parameters_still_give_grama():
    net = hand_relu_net()
    for p in net.parameters():
        p.requires_grad_(False)
    grama = grama_scores(net, mse, (X, T))
    for name in HAND_GRAMA:
        torch.testing.assert_close(grama[name], torch.tensor(HAND_GRAMA[name]))


def test_conv_outputs_use_dim_1_as_the_neuron_axis():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    x = torch.randn(5, 2, 6, 6)
    with torch.no_grad():
        h = torch.relu(net[0](x))  # (5, 3, 4, 4)
        per_channel = h.abs().mean(dim=(0, 2, 3))
    scores = dormant_scores(net, x)
    assert list(scores) == ["1"]
    torch.testing.assert_close(scores["1"], per_channel / (per_channel.mean() + 1e-9))


def test_monitor_rows_from_one_probe_pass():
    net = hand_relu_net()
    zeros = torch.zeros(4, 1)
    batch = Batch(obs=X, actions=zeros, rewards=T, next_obs=X, terminations=zeros)
    role = Role(
        network=net,
        optimizer=torch.optim.Adam(net.parameters()),
        loss_fn=lambda n, b: ((n(b.obs) - b.rewards) ** 2).mean(),
        forward_inputs=lambda b: (b.obs,),
    )
    forwards = []
    handle = net.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        rows = monitor_roles({"critic": role}, batch)
    finally:
        handle.remove()
    assert len(forwards) == 2  # the inner set's probe pass, and one for the released code's set (no residual blocks)
    table = {(r["network"], r["layer"], r["metric"]): r["value"] for r in rows}
    # Activity metrics for each hidden layer and "all"; the parameter and feature metrics
    # are checked in test_metrics_extra.py (drift needs theta0, the Hessian is opt-in).
    activity_metrics = {m for m in METRICS if ("@" in m and ":" not in m) or m == "active_fraction"}  # inner set
    assert len(table) == len(rows)
    assert len([r for r in rows if r["metric"] in activity_metrics]) == 3 * len(activity_metrics)
    # the released code's set: the three Linear layers (output included), per layer and "all"
    released = {m for m in METRICS if ":released_all@" in m}
    assert len([r for r in rows if r["metric"] in released]) == 4 * len(released)
    # drift needs theta0, the Hessian is opt-in, the probe has its own cadence (test_probe.py)
    # (and an MLP has no residual block outputs)
    assert {r["metric"] for r in rows} == {m for m in set(METRICS) - {"weight_drift", "hessian_top_eigenvalue"}
                                           - set(PROBE_METRICS) - set(TASK_METRICS) if ":block_out" not in m}
    assert {r["layer"] for r in rows if r["metric"] not in released} == {"layers.1", "layers.3", "all"}
    assert {r["layer"] for r in rows if r["metric"] in released} == {"layers.0", "layers.2", "layers.4", "all"}
    assert all(isinstance(r["value"], float) for r in rows)
    expected = {
        ("layers.1", "dormant_ratio@0"): 1 / 3,
        ("layers.3", "dormant_ratio@0"): 1 / 2,
        ("all", "dormant_ratio@0"): 2 / 5,
        ("all", "dormant_ratio@0.1"): 2 / 5,
        ("all", "grama_inactive_ratio@0.1"): 3 / 5,  # hand GraMa: [3, 0, 0] and [2, 0]
        ("layers.1", "grama_inactive_ratio@0.025"): 2 / 3,
        ("layers.3", "grama_inactive_ratio@0.01"): 1 / 2,
        ("all", "grama_output_inactive_ratio@0.1"): 0.0,  # smallest output-gradient score is 3/7
        ("all", "grama_released_inactive_ratio@0"): 3 / 5,
        ("all", "dormant_not_grama_ratio@0"): 0.0,  # both dead ReLUs have dL/dz = 0
        ("layers.1", "active_fraction"): 0.5,
        ("layers.3", "active_fraction"): 1 / 8,
        ("all", "active_fraction"): 7 / 20,
    }
    for (layer, metric), value in expected.items():
        assert table[("critic", layer, metric)] == pytest.approx(value), (layer, metric)


def test_containment_metric_counts_a_dormant_unit_that_grama_does_not_flag():
    """A tanh unit whose pre-activation is 0 on every sample outputs 0 (dormant at tau 0),
    yet tanh'(0) = 1 passes dL/dh through: GraMa scores it above 0. ReLU nets cannot do this
    (test above); the metric is the fraction of such units, here 1 of layer 1's 3."""
    net = MLP(2, 1, NetworkConfig(hidden_sizes=(3,), activation="Tanh"))
    torch.manual_seed(0)
    with torch.no_grad():
        first, last = net.layers[0], net.layers[-1]
        first.weight.normal_()
        first.bias.zero_()
        first.weight[2].zero_()  # unit 3: z = 0 on every sample
        last.weight.fill_(1.0)
    zeros = torch.zeros(4, 1)
    batch = Batch(obs=X, actions=zeros, rewards=T, next_obs=X, terminations=zeros)
    role = Role(network=net, optimizer=torch.optim.Adam(net.parameters()),
                loss_fn=lambda n, b: ((n(b.obs) - b.rewards) ** 2).mean(), forward_inputs=lambda b: (b.obs,))
    table = {(r["layer"], r["metric"]): r["value"] for r in monitor_roles({"critic": role}, batch)}
    assert table[("layers.1", "dormant_ratio@0")] == pytest.approx(1 / 3)
    assert table[("layers.1", "grama_inactive_ratio@0")] == 0.0
    assert table[("layers.1", "dormant_not_grama_ratio@0")] == pytest.approx(1 / 3)
    assert table[("all", "dormant_not_grama_ratio@0")] == pytest.approx(1 / 3)
