"""The rest of Plasticine's methods (plain L2, Parseval, deep Fourier features, TRAC) and
the automatic parts of C-CHAIN and plasticity injection, each checked by hand on tiny
networks."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from scipy.special import erfi
from test_methods_baselines import make_batch, make_role, mlp, params_of, regression_loss, train_steps

from plasticity_bench.methods import make_method
from plasticity_bench.methods.c_chain import CChain
from plasticity_bench.methods.dff import DeepFourierFeatures
from plasticity_bench.methods.l2 import L2
from plasticity_bench.methods.parseval import Parseval
from plasticity_bench.methods.plasticity_injection import PlasticityInjection
from plasticity_bench.methods.recycling import recycle_neurons
from plasticity_bench.metrics.activity import dormant_scores
from plasticity_bench.networks import MLP, NetworkConfig, ResidualNet, neuron_layers
from plasticity_bench.networks.layers import Fourier
from plasticity_bench.optim import TRACAdam
from plasticity_bench.spec import InvalidCombinationError, build_spec
from plasticity_bench.training.run import Trainer

# --- plain L2 --------------------------------------------------------------------------------


def test_l2_term_and_its_gradient_by_hand():
    net = mlp(hidden=(4,))
    method = L2(coefficient=0.3)
    method.setup({"q": make_role(net)})
    batch = make_batch()
    term = method.loss_terms("q", net, batch)
    expected = 0.3 * sum(float((p.detach() ** 2).sum()) for p in net.parameters())
    assert term.item() == pytest.approx(expected, rel=1e-6)
    # Coupled: its gradient 2 * c * theta joins the loss gradient before Adam normalises it.
    gradient = torch.autograd.grad(term, net.layers[0].weight)[0]
    torch.testing.assert_close(gradient, 0.6 * net.layers[0].weight.detach())
    assert method.loss_terms("actor", net, batch) is None
    assert L2(roles=["actor"]).setup({"actor": make_role(net), "q": make_role(net)}) is None


# --- Parseval ----------------------------------------------------------------------------------


def test_parseval_penalises_hidden_layers_only_by_hand():
    net = mlp(hidden=(2, 2))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))  # W W^T = [[1, 1], [1, 2]]
        net.layers[2].weight.copy_(math.sqrt(2) * torch.eye(2))  # W W^T = 2 I: no penalty
        net.layers[4].weight.fill_(5.0)  # the output layer is free
    method = Parseval(coefficient=0.1, scale=2.0, reference_width=2)
    method.setup({"q": make_role(net)})
    # ||[[1, 1], [1, 2]] - 2 I||_F^2 = 1 + 1 + 1 + 0 = 3, times 0.1 * (2 / 2)^2
    assert method.loss_terms("q", net, make_batch()).item() == pytest.approx(0.3)
    wide = Parseval(coefficient=0.1, scale=2.0, reference_width=4)
    wide.setup({"q": make_role(net)})
    assert wide.loss_terms("q", net, make_batch()).item() == pytest.approx(0.3 * (4 / 2) ** 2)
    # Descending the term makes the rows orthogonal with squared norm 2.
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(500):
        optimizer.zero_grad()
        method.loss_terms("q", net, make_batch()).backward()
        optimizer.step()
    weight = net.layers[0].weight.detach()
    torch.testing.assert_close(weight @ weight.T, 2 * torch.eye(2), atol=1e-3, rtol=0)


def test_parseval_on_a_residual_net_covers_the_layers_feeding_neurons():
    torch.manual_seed(0)
    net = ResidualNet(3, 1, NetworkConfig(arch="residual", hidden_sizes=(4,), blocks=2))
    method = Parseval(coefficient=1.0, scale=2.0, reference_width=4)
    method.setup({"q": make_role(net)})
    fed = [net.input_dense, net.blocks[0].dense1, net.blocks[1].dense1]
    assert [layer.incoming for layer in neuron_layers(net)] == fed
    expected = sum(float(((w @ w.T - 2 * torch.eye(4)) ** 2).sum()) for w in (m.weight.detach() for m in fed))
    assert method.loss_terms("q", net, make_batch()).item() == pytest.approx(expected, rel=1e-6)


# --- deep Fourier features --------------------------------------------------------------------


def test_dff_values_widths_and_recycling():
    assert Fourier.is_activation and Fourier.copies == 2
    x = torch.tensor([[0.0, math.pi / 2]])
    torch.testing.assert_close(Fourier()(x), torch.tensor([[0.0, 1.0, 1.0, 0.0]]), atol=1e-7, rtol=0)
    config = DeepFourierFeatures().network_config(NetworkConfig(hidden_sizes=(6, 6), denoiser_hidden_sizes=(8,)))
    assert (config.activation, config.hidden_sizes, config.denoiser_hidden_sizes) == ("Fourier", (3, 3), (4,))
    torch.manual_seed(0)
    net = MLP(3, 1, config)
    assert [(layer.name, layer.width, layer.copies) for layer in neuron_layers(net)] == [("layers.1", 3, 2), ("layers.3", 3, 2)]
    assert dormant_scores(net, torch.randn(7, 3))["layers.1"].shape == (6,)
    role = make_role(net)
    before = params_of(net)
    assert recycle_neurons(role, {"layers.1": torch.tensor([False, True, False])}) == {"layers.1": 1}
    assert (net.layers[2].weight[:, [1, 4]] == 0).all()  # unit 1 feeds sin and cos outputs 1 and 1 + 3
    assert torch.equal(net.layers[2].weight[:, [0, 2, 3, 5]], before["layers.2.weight"][:, [0, 2, 3, 5]])
    with pytest.raises(InvalidCombinationError, match="'dff' does not apply to architecture 'residual'"):
        build_spec("sac", "residual", "dff", "gym:Pendulum-v1", 0, 100)
    with pytest.raises(InvalidCombinationError, match="'Fourier' doubles each layer's width"):
        build_spec("sac", "residual", "none", "gym:Pendulum-v1", 0, 100, ["activation=Fourier"])


# --- TRAC -------------------------------------------------------------------------------------


def test_trac_two_steps_by_hand():
    """theta = 1, loss theta^2; the expected values follow the TRAC recursion written out
    here with scipy's erfi and a separate Adam for the base updates."""
    lr, betas, eps, s_prev = 0.1, (0.9, 0.99, 0.999999), 1e-8, 1e-8
    # float64: at first S ~ 1e-8, so theta moves by ~1e-9, below float32's resolution at 1
    theta = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    trac = TRACAdam([theta], lr=lr, trac_betas=betas)
    base = torch.nn.Parameter(torch.tensor([0.0], dtype=torch.float64))  # only to replay Adam's updates for the gradients seen
    adam = torch.optim.Adam([base], lr=lr)

    def adam_update(gradient: float) -> float:
        start = base.detach().clone()
        base.grad = torch.tensor([gradient], dtype=torch.float64)
        adam.step()
        return float(base.detach() - start)

    unit = s_prev / erfi(1 / math.sqrt(2))
    v, sigma = [0.0] * 3, [1e-8] * 3
    expected_theta, offset = 1.0, 0.0
    for _ in range(2):
        trac.zero_grad()
        (theta ** 2).sum().backward()
        gradient = float(theta.grad)
        assert gradient == pytest.approx(2 * expected_theta, rel=1e-12)
        trac.step()
        h = offset * gradient  # offset: Delta before the step
        delta = offset + adam_update(gradient)
        for i, beta in enumerate(betas):
            v[i] = beta ** 2 * v[i] + h * h
            sigma[i] = beta * sigma[i] - h
        scale = max(sum(unit * erfi(sg / (math.sqrt(2) * math.sqrt(vi) + eps)) for sg, vi in zip(sigma, v)), 0.0)
        expected_theta = 1.0 + delta * scale
        offset = (expected_theta - 1.0) / (scale + eps)
        assert float(theta.detach()) == pytest.approx(expected_theta, rel=1e-12, abs=1e-15)
        assert trac.scale() == pytest.approx(scale, rel=1e-9)
    assert trac.state[theta]["exp_avg"].shape == (1,)  # Adam's moments stay where recyclers look


def test_trac_learns_scales_up_and_resumes_from_its_state_dict():
    net = mlp(hidden=(8,))
    batch = make_batch()
    role = make_role(net, optimizer=TRACAdam(net.parameters(), lr=1e-2))
    initial = regression_loss(net, batch).item()
    train_steps(role, batch, steps=300)
    # S grows from ~1e-8 while the loss keeps falling along Delta (measured: S 0.75, loss
    # 1.46 -> 0.32 in 300 steps; Adam alone reaches 0.18: TRAC stays nearer theta0).
    assert role.optimizer.scale() > 0.3 and regression_loss(net, batch).item() < 0.4 * initial

    clone = copy.deepcopy(net)
    resumed = TRACAdam(clone.parameters(), lr=1e-2)
    resumed.load_state_dict(copy.deepcopy(role.optimizer.state_dict()))
    assert resumed.scale() == role.optimizer.scale()
    train_steps(role, batch, steps=3)
    train_steps(make_role(clone, optimizer=resumed), batch, steps=3)
    for p, q in zip(net.parameters(), clone.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_trac_rescales_parameters_without_a_gradient_with_the_rest():
    torch.manual_seed(0)
    first, second = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    trac = TRACAdam([first, second], lr=0.1)
    for step in range(6):
        trac.zero_grad()
        loss = (first ** 2).sum() + ((second ** 2).sum() if step < 3 else 0.0)  # second frozen from step 3
        loss.backward()
        trac.step()
        if step == 2:
            frozen_offset = (second.detach() - trac._reference(second)) / (trac.scale() + 1e-8)
    offset_now = (second.detach() - trac._reference(second)) / (trac.scale() + 1e-8)
    torch.testing.assert_close(offset_now, frozen_offset)  # its Delta is kept while S moves


# --- C-CHAIN's automatic coefficient -----------------------------------------------------------


def test_c_chain_adapts_its_coefficient_to_the_rl_loss():
    net = mlp(hidden=(4,))
    role = make_role(net)
    method = CChain(target_relative_scale=0.5, initial_coefficient=7.0, adapt_after=4, window=2)
    method.setup({"q": role})
    batch, reference = make_batch(seed=1), make_batch(seed=2)
    losses, churns = [], []
    for step in range(1, 6):
        loss = regression_loss(net, batch)
        method.observe_loss("q", loss)
        losses.append(loss.item())
        coefficient = method.coefficients["q"]
        term = method.loss_terms("q", net, batch)
        if term is not None:
            churns.append(term.item() / coefficient)
        role.optimizer.zero_grad()
        (loss + (term if term is not None else 0.0)).backward()
        role.optimizer.step()
        stats = method.after_update({"q": role}, step, lambda: reference)
        if step < 4:
            assert stats == {"c_chain_coefficient/q": 7.0}
    # churn exists from the third update on; the window holds the last two of each
    assert len(churns) == 3
    expected = 0.5 * (sum(losses[-2:]) / 2) / (sum(churns[-2:]) / 2 + 1e-8)
    assert method.coefficients["q"] == pytest.approx(expected, rel=1e-5)
    fixed = CChain(coefficient=0.5)
    fixed.setup({"q": make_role(mlp(hidden=(4,)))})
    fixed.observe_loss("q", torch.tensor(3.0))
    assert fixed.coefficients == {"q": 0.5} and not fixed.rl_losses.get("q")


# --- plasticity injection at a fraction of training -------------------------------------------


def test_plasticity_injection_plans_its_update_from_the_budget(tmp_path):
    method = PlasticityInjection()
    method.plan(400)
    assert method.at_update == 100
    explicit = PlasticityInjection(at_update=7)
    explicit.plan(400)
    assert explicit.at_update == 7
    with pytest.raises(ValueError, match="at_fraction must lie in"):
        PlasticityInjection(at_fraction=0.0)
    # The trainer tells it the run's updates: (300 - 100) env steps at replay ratio 0.5.
    spec = build_spec("dqn", "mlp", "plasticity_injection+parseval", "gym:CartPole-v1", 0, 300,
                      ["learning_starts=100", "replay_ratio=0.5", "hidden_sizes=[8]"])
    trainer = Trainer(spec, tmp_path, 1, torch.device("cpu"), False)
    assert trainer.methods[0].at_update == 25
    assert make_method("plasticity_injection", at_fraction=0.5).at_fraction == 0.5

