"""Tensor sets of the activity metrics (metrics/tensor_sets.py), each pinned on a hand computation:
the block outputs of a BRO block, the released code's set on a two-layer net, and the monitor's
rows that carry the set in their metric key."""

import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.metrics.monitor import monitor_roles
from plasticity_bench.metrics.tensor_sets import released_modules, residual_blocks, tensor_set_scores
from plasticity_bench.networks import NetworkConfig
from plasticity_bench.networks.residual import ResidualNet


def mse_to_zero(net, batch):
    return net(batch).square().mean()


def normalised(magnitude):
    return magnitude / (magnitude.mean() + 1e-9)


def test_block_out_scores_the_residual_stream_after_each_bro_block_by_hand():
    torch.manual_seed(0)
    net = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(6,), blocks=2))
    x = torch.randn(20, 3)
    assert [name for name, _ in residual_blocks(net)] == ["blocks.0", "blocks.1"]
    scores = tensor_set_scores(net, mse_to_zero, x, "block_out")

    # By hand: run the layers, keep each block's output y = h + LN(Dense(relu(LN(Dense(h))))).
    h = torch.relu(net.input_norm(net.input_dense(x)))
    outputs = []
    for block in net.blocks:
        h = h + block.norm2(block.dense2(torch.relu(block.norm1(block.dense1(h)))))
        outputs.append(h)
    loss = net.output(h).square().mean()
    grads = torch.autograd.grad(loss, outputs)
    for index, (y, g) in enumerate(zip(outputs, grads)):
        entry = scores[f"blocks.{index}"]
        torch.testing.assert_close(entry["dormant"], normalised(y.detach().abs().mean(0)))
        torch.testing.assert_close(entry["grama"], normalised(g.abs().mean(0)))
    assert all(p.grad is None for p in net.parameters())  # no .grad written


def test_released_all_scores_every_linear_and_layernorm_output_by_hand():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(16, 4)
    assert [name for name, _ in released_modules(net)] == ["0", "1", "3"]  # output layer included
    scores = tensor_set_scores(net, mse_to_zero, x, "released_all")

    z = net[0](x)
    n = net[1](z)
    y = net[3](torch.relu(n))
    grad_w0, grad_gamma, grad_w3 = torch.autograd.grad(y.square().mean(), [net[0].weight, net[1].weight, net[3].weight])
    expected = {"0": (z, grad_w0.abs().mean(1)), "1": (n, grad_gamma.abs()), "3": (y, grad_w3.abs().mean(1))}
    for name, (output, released) in expected.items():
        torch.testing.assert_close(scores[name]["dormant"], normalised(torch.relu(output.detach()).mean(0)))
        torch.testing.assert_close(scores[name]["grama_released"], normalised(released))


def test_an_mlp_has_no_block_outputs():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert tensor_set_scores(net, mse_to_zero, torch.randn(8, 3), "block_out") == {}


def test_monitor_rows_name_their_tensor_set():
    torch.manual_seed(2)
    net = ResidualNet(3, 1, NetworkConfig(arch="residual", hidden_sizes=(8,), blocks=1))
    optimizer = torch.optim.Adam(net.parameters())
    role = Role(network=net, optimizer=optimizer, loss_fn=lambda n, b: F.mse_loss(n(b.obs), b.rewards.unsqueeze(1)),
                forward_inputs=lambda b: (b.obs,))
    batch = Batch(torch.randn(32, 3), torch.zeros(32, 1), torch.randn(32), torch.randn(32, 3), torch.zeros(32))
    rows = monitor_roles({"critic": role}, batch)
    metrics = {(r["layer"], r["metric"]) for r in rows}
    for metric in ("dormant_ratio:block_out@0.1", "grama_inactive_ratio:block_out@0.01",
                   "dormant_ratio:released_all@0.1", "grama_released_inactive_ratio:released_all@0.01",
                   "dormant_ratio@0.1"):
        assert ("all", metric) in metrics, metric
    assert ("blocks.0", "dormant_ratio:block_out@0") in metrics
    assert ("output", "dormant_ratio:released_all@0") in metrics
