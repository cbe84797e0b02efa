"""Residual networks: scores against an independent computation, the neuron-layer view, and
ReDo / ReGraMa recycling inside residual blocks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.recycling import recycle_neurons
from plasticity_bench.methods.redo import ReDo
from plasticity_bench.methods.regrama import ReGraMa
from plasticity_bench.metrics import dormant_scores, grama_scores
from plasticity_bench.networks import NetworkConfig, ResidualNet, build_body, neuron_layers
from plasticity_bench.spec import InvalidCombinationError, SpecError, build_spec
from plasticity_bench.training.run import Trainer

BRO = NetworkConfig(arch="residual", hidden_sizes=(3,), blocks=1)

X = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0], [2.0, 2.0], [0.5, -1.5]])
T = torch.tensor([[1.0], [6.0], [0.0], [0.5], [-2.0]])


def hand_bro_net() -> ResidualNet:
    """2 → [3] → 1 BRO net with one block. Input neuron 2 is dead: its pre-activation is -5,
    the smallest of its layer for every |x| < 5, so it is negative after the LayerNorm.
    Block neuron 1 is dead the same way (pre-activation -10)."""
    net = ResidualNet(2, 1, BRO)
    with torch.no_grad():
        net.input_dense.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 0.0]]))
        net.input_dense.bias.copy_(torch.tensor([0.0, 0.5, -5.0]))
        net.input_norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        net.input_norm.bias.copy_(torch.tensor([0.1, 0.0, 0.0]))
        block = net.blocks[0]
        block.dense1.weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0], [0.5, 2.0, -1.0]]))
        block.dense1.bias.copy_(torch.tensor([0.0, -10.0, 0.2]))
        block.norm1.weight.copy_(torch.tensor([1.5, 1.0, 0.5]))
        block.norm1.bias.copy_(torch.tensor([0.0, 0.0, 0.3]))
        block.dense2.weight.copy_(torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0], [-1.0, 1.0, 0.5]]))
        block.dense2.bias.copy_(torch.tensor([0.1, -0.2, 0.0]))
        block.norm2.weight.copy_(torch.tensor([1.0, 0.5, 2.0]))
        block.norm2.bias.copy_(torch.tensor([0.0, 0.1, -0.1]))
        net.output.weight.copy_(torch.tensor([[2.0, -1.0, 0.5]]))
        net.output.bias.copy_(torch.tensor([0.3]))
    return net


def layer_norm(z, gamma, beta, eps=1e-5):
    mean = z.mean(dim=-1, keepdim=True)
    variance = ((z - mean) ** 2).mean(dim=-1, keepdim=True)
    return (z - mean) / torch.sqrt(variance + eps) * gamma + beta


def linear(x, layer):
    return x @ layer.weight.detach().T + layer.bias.detach()


def norm(z, layer):
    return layer_norm(z, layer.weight.detach(), layer.bias.detach())


def reference_activations(net: ResidualNet, x: torch.Tensor):
    """The network written out by formula; returns (output, pre, hidden): per neuron layer its
    pre-activation z (the ReLU's input, after the LayerNorm where there is one) and h = ReLU(z)."""
    pre, hidden = {}, {}
    if net.config.pre_norm:
        stream = linear(x, net.input_dense)
    else:
        pre["input_activation"] = norm(linear(x, net.input_dense), net.input_norm)
        stream = hidden["input_activation"] = torch.relu(pre["input_activation"])
    for index, block in enumerate(net.blocks):
        name = f"blocks.{index}.activation"
        if net.config.pre_norm:
            pre[name] = linear(norm(stream, block.norm), block.dense1)
            hidden[name] = torch.relu(pre[name])
            stream = stream + linear(hidden[name], block.dense2)
        else:
            pre[name] = norm(linear(stream, block.dense1), block.norm1)
            hidden[name] = torch.relu(pre[name])
            stream = stream + norm(linear(hidden[name], block.dense2), block.norm2)
    if net.config.pre_norm:
        stream = norm(stream, net.output_norm)
    return linear(stream, net.output), pre, hidden


def reference_scores(net: ResidualNet, x: torch.Tensor, t: torch.Tensor, at: str = "pre_activation"):
    """ReDo and GraMa scores from the formulas; GraMa's gradient is taken at the pre-activation
    z (the default) or at the ReLU's output h (``at="output"``). Each sample's output depends
    only on its own input, so the gradient of the batch loss holds the per-sample gradients."""
    x = x.clone().requires_grad_(True)  # so that every activation is a differentiable node
    output, pre, hidden = reference_activations(net, x)
    loss = ((output - t) ** 2).mean()
    points = pre if at == "pre_activation" else hidden
    grads = torch.autograd.grad(loss, list(points.values()))
    dormant, grama = {}, {}
    for (name, h), grad in zip(hidden.items(), grads):
        magnitude = h.detach().abs().mean(dim=0)
        dormant[name] = magnitude / (magnitude.mean() + 1e-9)
        gradient_magnitude = grad.abs().mean(dim=0)
        grama[name] = gradient_magnitude / (gradient_magnitude.mean() + 1e-9)
    return output.detach(), dormant, grama


def mse(net: nn.Module, batch) -> torch.Tensor:
    inputs, targets = batch
    return ((net(inputs) - targets) ** 2).mean()


def test_bro_scores_match_the_formulas():
    net = hand_bro_net()
    output, dormant, grama = reference_scores(net, X, T)
    with torch.no_grad():
        torch.testing.assert_close(net(X), output)
    measured_dormant = dormant_scores(net, X)
    measured_grama = grama_scores(net, mse, (X, T))
    assert list(measured_dormant) == list(measured_grama) == ["input_activation", "blocks.0.activation"]
    for name in dormant:
        torch.testing.assert_close(measured_dormant[name], dormant[name])
        torch.testing.assert_close(measured_grama[name], grama[name])
    # The hand-dead neurons are ReDo-dormant, and GraMa at the pre-activation scores them
    # exactly 0: the ReLU passes no gradient below zero.
    assert measured_dormant["input_activation"][2] == 0 and measured_dormant["blocks.0.activation"][1] == 0
    assert measured_grama["input_activation"][2] == 0 and measured_grama["blocks.0.activation"][1] == 0
    assert (measured_grama["input_activation"][:2] > 0.1).all()
    # The output variant (the literal notation, an ablation) misses both: the dead input
    # neuron's output feeds the skip connection and the block's Dense, the dead block neuron's
    # outgoing weights are non-zero, so dL/dh does not vanish. A zero activation is not a zero
    # gradient at h, only at z.
    _, _, grama_at_output = reference_scores(net, X, T, at="output")
    measured_output = grama_scores(net, mse, (X, T), variant="output")
    for name in grama_at_output:
        torch.testing.assert_close(measured_output[name], grama_at_output[name])
    assert measured_output["input_activation"][2] > 0.1 and measured_output["blocks.0.activation"][1] > 0.1


@pytest.mark.parametrize("config", [
    NetworkConfig(arch="residual", hidden_sizes=(4,), blocks=2),
    NetworkConfig(arch="residual", hidden_sizes=(4, 4), blocks=2, pre_norm=True, activation="ReLU"),
], ids=["bro", "simba"])
def test_scores_of_random_residual_nets_match_the_formulas(config):
    torch.manual_seed(0)
    net = ResidualNet(2, 1, config)
    with torch.no_grad():  # non-default LayerNorm parameters, so that they matter
        for module in net.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    x = torch.randn(32, 2)
    t = torch.randn(32, 1)
    _, dormant, grama = reference_scores(net, x, t)
    measured_dormant, measured_grama = dormant_scores(net, x), grama_scores(net, mse, (x, t))
    assert list(measured_dormant) == list(measured_grama) == list(dormant)
    for name in dormant:
        torch.testing.assert_close(measured_dormant[name], dormant[name])
        torch.testing.assert_close(measured_grama[name], grama[name])


def test_neuron_layers_cover_block_internals_and_match_metric_keys():
    bro = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(5,), blocks=2))
    layers = neuron_layers(bro)
    assert [layer.name for layer in layers] == ["input_activation", "blocks.0.activation", "blocks.1.activation"]
    assert list(dormant_scores(bro, torch.randn(4, 3))) == [layer.name for layer in layers]
    # The input layer's neurons are read directly only by the first block's first Dense.
    assert layers[0].incoming is bro.input_dense and layers[0].norm is bro.input_norm
    assert layers[0].outgoing == [bro.blocks[0].dense1]
    for layer, block in zip(layers[1:], bro.blocks):
        assert layer.incoming is block.dense1 and layer.norm is block.norm1 and layer.outgoing == [block.dense2]
        assert layer.width == 5

    simba = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(4,), blocks=2, pre_norm=True))
    layers = neuron_layers(simba)
    assert [layer.name for layer in layers] == ["blocks.0.activation", "blocks.1.activation"]
    assert list(dormant_scores(simba, torch.randn(4, 3))) == [layer.name for layer in layers]
    for layer, block in zip(layers, simba.blocks):
        assert layer.incoming is block.dense1 and layer.norm is None and layer.outgoing == [block.dense2]
        assert layer.width == 16  # SimBa's inner layer is 4 × the stream width

    no_blocks = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(5,), blocks=0))
    assert neuron_layers(no_blocks)[0].outgoing == [no_blocks.output]


def test_build_body_and_the_trainer_make_residual_networks(tmp_path):
    config = NetworkConfig(arch="residual", hidden_sizes=(8, 8), blocks=3)
    body = build_body(config, 4, 2)
    assert isinstance(body, ResidualNet) and len(body.blocks) == 3 and body(torch.zeros(5, 4)).shape == (5, 2)
    with pytest.raises(ValueError, match="one width"):
        ResidualNet(4, 2, NetworkConfig(arch="residual", hidden_sizes=(8, 16)))

    spec = build_spec("td3", "residual", "none", "gym:Pendulum-v1", seed=0, steps=100,
                      overrides=["hidden_sizes=[8]", "residual_blocks=2", "residual_actor_blocks=1",
                                 "residual_pre_norm=true"])
    agent = Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False).agent
    for net in (agent.critic.q1, agent.critic.q2):
        assert isinstance(net, ResidualNet) and len(net.blocks) == 2 and net.config.pre_norm
    assert isinstance(agent.actor.trunk, ResidualNet) and len(agent.actor.trunk.blocks) == 1  # BRO: 1 actor, 2 critic
    assert agent.actor.trunk.config.pre_norm
    assert [layer.name for layer in neuron_layers(agent.critic)] == [
        "q1.blocks.0.activation", "q1.blocks.1.activation", "q2.blocks.0.activation", "q2.blocks.1.activation"]
    with pytest.raises(SpecError, match="one width"):
        build_spec("sac", "residual", "none", "gym:Pendulum-v1", seed=0, steps=100, overrides=["hidden_sizes=[8, 16]"])
    with pytest.raises(SpecError, match="residual_blocks"):
        build_spec("sac", "residual", "none", "gym:Pendulum-v1", seed=0, steps=100, overrides=["residual_blocks=-1"])
    with pytest.raises(SpecError, match=r"residual_actor_blocks=-1 is out of range; valid: \[0, inf\)"):
        build_spec("sac", "residual", "none", "gym:Pendulum-v1", seed=0, steps=100, overrides=["residual_actor_blocks=-1"])
    # DQN has no actor, so its Q-network's depth is residual_blocks alone.
    with pytest.raises(SpecError, match="unknown hyperparameter 'residual_actor_blocks'"):
        build_spec("dqn", "residual", "none", "gym:CartPole-v1", seed=0, steps=100, overrides=["residual_actor_blocks=2"])


def test_layer_norm_is_rejected_on_residual_networks_with_the_reason():
    with pytest.raises(InvalidCombinationError, match="'layer_norm' does not apply to architecture 'residual'.*"
                                                      "already apply LayerNorm.*valid architectures: mlp, diffusion"):
        build_spec("sac", "residual", "layer_norm+regrama", "gym:Pendulum-v1", seed=0, steps=100)


# ---- recycling ------------------------------------------------------------------------------


def make_batch(n: int = 64, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 3, generator=g)
    return Batch(obs=obs, actions=torch.zeros(n, 1), rewards=torch.randn(n, 2, generator=g), next_obs=obs,
                 terminations=torch.zeros(n))


def regression_loss(net: nn.Module, batch: Batch) -> torch.Tensor:
    return ((net(batch.obs) - batch.rewards) ** 2).mean()


def make_role(net: nn.Module) -> Role:
    return Role(net, torch.optim.Adam(net.parameters(), lr=1e-3), regression_loss, lambda b: (b.obs,))


def train_steps(role: Role, batch: Batch, steps: int = 3) -> torch.Tensor:
    for _ in range(steps):
        role.optimizer.zero_grad()
        loss = role.loss_fn(role.network, batch)
        loss.backward()
        role.optimizer.step()
    return loss.detach()


def fill_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    g = torch.Generator().manual_seed(3)
    for state in optimizer.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            state[key].copy_(torch.rand(state[key].shape, generator=g) + 0.5)


def touched_mask(shape: torch.Size, rows=(), columns=()) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[list(rows)] = True
    if columns:
        mask[:, list(columns)] = True
    return mask


def check_recycled(role: Role, before: dict, state_before: dict, expected_rows: dict, expected_columns: dict) -> None:
    """Every parameter entry is re-drawn/reset exactly where expected, unchanged elsewhere,
    and its Adam moments are zero exactly there."""
    net = role.network
    for name, param in net.named_parameters():
        rows, columns = expected_rows.get(name, ()), expected_columns.get(name, ())
        touched = touched_mask(param.shape, rows, columns)
        assert torch.equal(param[~touched], before[name][~touched]), name
        if rows and name.endswith("weight") and param.dim() == 2:  # re-drawn incoming rows
            bound = 1 / math.sqrt(param.shape[1])
            assert (param[list(rows)].abs() <= bound).all(), name
            live = [c for c in range(param.shape[1]) if c not in columns]
            assert (param[list(rows)][:, live] != before[name][list(rows)][:, live]).all(), name
        elif rows and name.endswith("bias"):
            assert (param[list(rows)] == 0).all(), name
        elif rows:  # LayerNorm gamma
            assert (param[list(rows)] == 1).all(), name
        if columns:
            assert (param[:, list(columns)] == 0).all(), name
        state = role.optimizer.state[param]
        for key in ("exp_avg", "exp_avg_sq"):
            assert (state[key][touched] == 0).all(), (name, key)
            assert torch.equal(state[key][~touched], state_before[name][key][~touched]), (name, key)


def snapshot(role: Role):
    params = {n: p.detach().clone() for n, p in role.network.named_parameters()}
    state = {n: {k: v.clone() for k, v in role.optimizer.state[p].items()} for n, p in role.network.named_parameters()}
    return params, state


def test_redo_recycles_dead_neurons_inside_residual_blocks():
    torch.manual_seed(0)
    net = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(6,), blocks=2))
    dead = {"input_activation": [1], "blocks.0.activation": [2, 4], "blocks.1.activation": [0]}
    incoming = {"input_activation": net.input_dense, "blocks.0.activation": net.blocks[0].dense1,
                "blocks.1.activation": net.blocks[1].dense1}
    with torch.no_grad():  # the lowest pre-activation of a LayerNorm group is negative after it
        for layer, neurons in dead.items():
            incoming[layer].weight[neurons] = 0.0
            incoming[layer].bias[neurons] = -20.0
    role = make_role(net)
    batch = make_batch()
    train_steps(role, batch)
    scores = dormant_scores(net, batch.obs)
    assert {name: (score == 0).nonzero().flatten().tolist() for name, score in scores.items()} == dead
    fill_optimizer_state(role.optimizer)
    before, state_before = snapshot(role)

    stats = ReDo(tau=0.0, period=1).after_update({"critic": role}, 1, lambda: batch)
    assert stats == {"reset_fraction/critic": pytest.approx(4 / 18), "reset_neurons/critic/input_activation": 1,
                     "reset_neurons/critic/blocks.0.activation": 2, "reset_neurons/critic/blocks.1.activation": 1}
    rows = {
        "input_dense.weight": [1], "input_dense.bias": [1], "input_norm.weight": [1], "input_norm.bias": [1],
        "blocks.0.dense1.weight": [2, 4], "blocks.0.dense1.bias": [2, 4],
        "blocks.0.norm1.weight": [2, 4], "blocks.0.norm1.bias": [2, 4],
        "blocks.1.dense1.weight": [0], "blocks.1.dense1.bias": [0],
        "blocks.1.norm1.weight": [0], "blocks.1.norm1.bias": [0],
    }
    # Outgoing: the input neuron's direct reader (block 0's first Dense), each block
    # neuron's second Dense; never the skip path, the output layer or any bias.
    columns = {"blocks.0.dense1.weight": [1], "blocks.0.dense2.weight": [2, 4], "blocks.1.dense2.weight": [0]}
    check_recycled(role, before, state_before, rows, columns)
    assert torch.isfinite(train_steps(role, batch, steps=5))
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_recycled_neurons_leave_the_function_unchanged_only_off_the_residual_stream():
    torch.manual_seed(1)
    simba = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(4,), blocks=1, pre_norm=True))
    with torch.no_grad():  # dead inner neurons: ReLU of a constant -1
        simba.blocks[0].dense1.weight[[3, 7]] = 0.0
        simba.blocks[0].dense1.bias[[3, 7]] = -1.0
    x = make_batch().obs
    with torch.no_grad():
        output = simba(x)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[[3, 7]] = True
    recycle_neurons(make_role(simba), {"blocks.0.activation": mask})
    with torch.no_grad():
        torch.testing.assert_close(simba(x), output, rtol=0, atol=0)
    assert (simba.blocks[0].dense1.weight[[3, 7]] != 0).all()

    # A BRO input neuron is part of the residual stream: zeroing its direct reader's
    # columns does not silence it, so recycling even a dead one changes the output.
    torch.manual_seed(2)
    bro = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(4,), blocks=1))
    with torch.no_grad():
        bro.input_dense.weight[0] = 0.0
        bro.input_dense.bias[0] = -20.0
        output = bro(x)
        assert dormant_scores(bro, x)["input_activation"][0] == 0
    recycle_neurons(make_role(bro), {"input_activation": torch.tensor([True, False, False, False])})
    with torch.no_grad():
        assert not torch.allclose(bro(x), output)


def test_regrama_recycles_neurons_without_gradient_inside_residual_blocks():
    torch.manual_seed(4)
    net = ResidualNet(3, 2, NetworkConfig(arch="residual", hidden_sizes=(5,), blocks=1))
    with torch.no_grad():
        # Input neuron 0 reaches the loss through block 0's first Dense and, via the skip,
        # through the output layer: cut both and dL/dh = 0. Block neuron 3: cut its dense2 column.
        net.blocks[0].dense1.weight[:, 0] = 0.0
        net.output.weight[:, 0] = 0.0
        net.blocks[0].dense2.weight[:, 3] = 0.0
    role = make_role(net)
    batch = make_batch(seed=1)
    train_steps(role, batch)
    with torch.no_grad():  # Adam moved the cut weights away from zero: cut them again
        net.blocks[0].dense1.weight[:, 0] = 0.0
        net.output.weight[:, 0] = 0.0
        net.blocks[0].dense2.weight[:, 3] = 0.0
    scores = grama_scores(net, regression_loss, batch)
    expected = {"input_activation": [0], "blocks.0.activation": [3]}
    assert {name: (score <= 0.01).nonzero().flatten().tolist() for name, score in scores.items()} == expected
    fill_optimizer_state(role.optimizer)
    before, state_before = snapshot(role)

    stats = ReGraMa(tau=0.01, period=1, variant="pre_activation").after_update({"critic": role}, 1, lambda: batch)
    assert stats == {"reset_fraction/critic": pytest.approx(2 / 10), "reset_neurons/critic/input_activation": 1,
                     "reset_neurons/critic/blocks.0.activation": 1}
    rows = {"input_dense.weight": [0], "input_dense.bias": [0], "input_norm.weight": [0], "input_norm.bias": [0],
            "blocks.0.dense1.weight": [3], "blocks.0.dense1.bias": [3],
            "blocks.0.norm1.weight": [3], "blocks.0.norm1.bias": [3]}
    columns = {"blocks.0.dense1.weight": [0], "blocks.0.dense2.weight": [3]}
    check_recycled(role, before, state_before, rows, columns)
    assert torch.isfinite(train_steps(role, batch, steps=5))


def test_every_algorithm_builds_a_residual_spec_with_defaults():
    # DQN's CleanRL MLP widths (120, 84) differ; the residual arch has one width (BRO's 256).
    for algo, task in [("sac", "gym:Pendulum-v1"), ("td3", "gym:Pendulum-v1"), ("dqn", "gym:CartPole-v1")]:
        spec = build_spec(algo, "residual", "none", task, seed=0, steps=100)
        assert spec.network_config().hidden_sizes == (256, 256)
