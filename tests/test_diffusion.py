"""The diffusion policy actor: diffusers' schedule and reverse step, bounds, gradients through
the chain, reproducibility, plasticity metrics over the K denoiser calls, neuron recycling,
combination rules and (slow) learning."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods import make_method
from plasticity_bench.metrics import dormant_scores, grama_scores
from plasticity_bench.networks import NetworkConfig, neuron_layers
from plasticity_bench.networks.diffusion import PRE_TANH_RANGE, DiffusionActor
from plasticity_bench.spec import InvalidCombinationError, build_spec

OBS_DIM, ACTION_DIM = 4, 2


def make_actor(steps: int = 3, widths: tuple[int, ...] = (16, 16), seed: int = 0, **config) -> DiffusionActor:
    torch.manual_seed(seed)
    network = NetworkConfig(arch="diffusion", diffusion_steps=steps, denoiser_hidden_sizes=widths, **config)
    return DiffusionActor(OBS_DIM, ACTION_DIM, network)


def observations(n: int = 32, seed: int = 1, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return scale * torch.randn(n, OBS_DIM, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class FixedCritic(nn.Module):
    """A fixed smooth Q(s, a) whose gradient in a varies with the action."""

    def __init__(self, seed: int = 5):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.target = nn.Parameter(torch.rand(ACTION_DIM, generator=g) * 1.6 - 0.8, requires_grad=False)
        self.weight = nn.Parameter(torch.randn(OBS_DIM, ACTION_DIM, generator=g), requires_grad=False)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return -((action - self.target) ** 2).sum(-1, keepdim=True) + (obs @ self.weight * action).sum(-1, keepdim=True)


def test_schedule_and_step_are_diffusers_ddpm():
    from diffusers import DDPMScheduler

    for schedule in ("squaredcos_cap_v2", "linear"):
        actor = make_actor(steps=5, beta_schedule=schedule)
        reference = DDPMScheduler(num_train_timesteps=5, beta_schedule=schedule)
        assert isinstance(actor.scheduler, DDPMScheduler)
        torch.testing.assert_close(actor.scheduler.betas, reference.betas, rtol=0, atol=0)
        torch.testing.assert_close(actor.scheduler.alphas_cumprod, reference.alphas_cumprod, rtol=0, atol=0)
        assert actor.timesteps == [4, 3, 2, 1, 0]  # the chain visits every train timestep
    cosine = make_actor(steps=5).scheduler.alphas_cumprod
    assert cosine[-1] < 1e-3  # x_K ~ N(0, I) is consistent with the default schedule


def test_actions_lie_in_bounds():
    actor = make_actor()
    for scale in (1.0, 1e3):  # huge inputs saturate the chain, and the bound still holds
        obs = observations(scale=scale)
        action, log_prob = actor.sample(obs)
        for a in (action, actor(obs), actor.deterministic(obs)):
            assert a.shape == (32, ACTION_DIM)
            assert torch.isfinite(a).all() and a.abs().max() <= 1.0
        assert log_prob.shape == (32, 1) and torch.isfinite(log_prob).all()
    assert actor(observations(scale=1e3)).abs().max() <= math.tanh(PRE_TANH_RANGE) + 1e-6


def test_critic_gradient_reaches_every_denoiser_parameter_through_the_chain():
    actor = make_actor(steps=3).double()
    critic = FixedCritic().double()
    obs = observations(dtype=torch.float64)

    def loss() -> torch.Tensor:
        torch.manual_seed(11)  # the same chain noise on every evaluation
        return -critic(obs, actor(obs)).mean()

    actor.zero_grad()
    loss().backward()
    params = dict(actor.denoiser.named_parameters())
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # The autograd gradient is the true derivative of the K-step chain (which the last
    # step alone would not give): a central finite difference along a random direction.
    direction = {name: torch.randn_like(p) for name, p in params.items()}
    analytic = sum((params[n].grad * direction[n]).sum() for n in params)
    h = 1e-6
    with torch.no_grad():
        for n in params:
            params[n].add_(h * direction[n])
        plus = loss()
        for n in params:
            params[n].sub_(2 * h * direction[n])
        minus = loss()
        for n in params:
            params[n].add_(h * direction[n])
    torch.testing.assert_close(analytic, (plus - minus) / (2 * h), rtol=1e-5, atol=1e-8)


def test_sac_log_prob_trains_the_noise_scale():
    actor = make_actor()
    _, log_prob = actor.sample(observations())
    log_prob.mean().backward()
    assert actor.log_std_param.grad is not None and actor.log_std_param.grad.abs().min() > 0


def test_reproducible_under_manual_seed_and_deterministic_draws_no_global_noise():
    actor = make_actor()
    obs = observations()
    torch.manual_seed(3)
    first = actor.sample(obs)
    torch.manual_seed(3)
    second = actor.sample(obs)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.manual_seed(4)
    assert not torch.equal(actor.sample(obs)[0], first[0])
    assert not torch.equal(actor(obs), actor(obs))  # the policy itself is stochastic

    state = torch.get_rng_state()
    evaluation = actor.deterministic(obs)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(actor.deterministic(obs), evaluation, rtol=0, atol=0)


def test_neuron_layers_are_the_metric_keys():
    actor = make_actor(widths=(16, 8))
    names = [layer.name for layer in neuron_layers(actor)]
    assert names == ["denoiser.layers.1", "denoiser.layers.3"]
    assert [layer.width for layer in neuron_layers(actor)] == [16, 8]
    obs = observations()
    assert list(dormant_scores(actor, obs)) == names
    assert list(grama_scores(actor, lambda net, o: -FixedCritic()(o, net(o)).mean(), obs)) == names


def hand_chain(actor: DiffusionActor, obs: torch.Tensor):
    """The actor's action written out with the DDPM posterior formulas (Ho et al. 2020,
    Eqs. 7 and 15) and explicit layers; returns the action and, per hidden layer, the
    pre-activation z and the activation output h = ReLU(z) of each of the K denoiser calls
    (gradients retained)."""
    first, second, out = [m for m in actor.denoiser.layers if isinstance(m, nn.Linear)]
    alphas_cumprod = actor.scheduler.alphas_cumprod.double()
    pre: list[list[torch.Tensor]] = [[], []]
    hidden: list[list[torch.Tensor]] = [[], []]
    x = torch.randn(obs.shape[0], ACTION_DIM, dtype=obs.dtype)
    for index, t in enumerate(actor.timesteps):
        embedding = actor.time_embeddings[index].to(obs.dtype).expand(obs.shape[0], -1)
        z1 = first(torch.cat([x, obs, embedding], dim=-1))
        h1 = torch.relu(z1)
        z2 = second(h1)
        h2 = torch.relu(z2)
        for layer_pre, layer_hidden, z, h in zip(pre, hidden, (z1, z2), (h1, h2)):
            z.retain_grad()
            layer_pre.append(z)
            layer_hidden.append(h)
        noise = out(h2)
        ab_t = alphas_cumprod[t]
        ab_prev = alphas_cumprod[actor.timesteps[index + 1]] if index + 1 < len(actor.timesteps) else torch.tensor(1.0)
        beta_t = 1 - ab_t / ab_prev
        x0 = ((x - (1 - ab_t).sqrt() * noise) / ab_t.sqrt()).clamp(-PRE_TANH_RANGE, PRE_TANH_RANGE)
        mean = (ab_prev.sqrt() * beta_t / (1 - ab_t)) * x0 + ((1 - beta_t).sqrt() * (1 - ab_prev) / (1 - ab_t)) * x
        if t > 0:
            variance = (1 - ab_prev) / (1 - ab_t) * beta_t
            x = mean + variance.sqrt() * torch.randn(obs.shape[0], ACTION_DIM, dtype=obs.dtype)
        else:
            x = mean
    return torch.tanh(x), pre, hidden


def test_the_denoiser_uses_dacers_mish_by_default():
    assert [type(m) for m in make_actor().denoiser.layers if not isinstance(m, nn.Linear)] == [nn.Mish, nn.Mish]


def test_grama_and_dormant_pool_the_k_denoiser_calls_as_a_hand_computation_does():
    actor = make_actor(steps=2, widths=(3, 3), seed=2, denoiser_activation="ReLU").double()  # the hand chain's ReLU
    critic = FixedCritic().double()
    obs = observations(n=16, dtype=torch.float64)

    def loss_fn(net, o):
        torch.manual_seed(21)
        return -critic(o, net(o)).mean()

    torch.manual_seed(21)
    action, pre, hidden = hand_chain(actor, obs)
    torch.manual_seed(21)
    torch.testing.assert_close(action, actor(obs))  # the scheduler's step is the DDPM step
    (-critic(obs, action).mean()).backward()

    def normalise(m: torch.Tensor) -> torch.Tensor:
        return m / (m.mean() + 1e-9)

    # Per sample and per call: |dL/dz| at the pre-activation and |h|, averaged over the B x K rows.
    expected_grama = [normalise(torch.cat([z.grad.abs() for z in calls]).mean(0)) for calls in pre]
    expected_dormant = [normalise(torch.cat([h.detach().abs() for h in calls]).mean(0)) for calls in hidden]
    last_call_only = [normalise(calls[-1].grad.abs().mean(0)) for calls in pre]
    assert any(e.abs().sum() > 0 for e in expected_grama)

    grama = grama_scores(actor, loss_fn, obs)
    torch.manual_seed(21)
    dormant = dormant_scores(actor, obs)
    for index, name in enumerate(["denoiser.layers.1", "denoiser.layers.3"]):
        torch.testing.assert_close(grama[name], expected_grama[index].to(grama[name].dtype))
        torch.testing.assert_close(dormant[name], expected_dormant[index].to(dormant[name].dtype))
    # Pooling mattered: one call alone scores differently.
    assert not all(torch.allclose(grama[n], last_call_only[i].float()) for i, n in enumerate(grama))


def actor_role(actor: DiffusionActor, critic: nn.Module) -> Role:
    def loss_fn(net: nn.Module, batch: Batch) -> torch.Tensor:
        action, log_prob = net.sample(batch.obs)
        return (0.2 * log_prob - critic(batch.obs, action)).mean()  # SAC's actor loss

    return Role(actor, torch.optim.Adam(actor.parameters(), lr=1e-3), loss_fn, lambda b: (b.obs,))


def make_batch(n: int = 64) -> Batch:
    obs = observations(n=n, seed=9)
    return Batch(obs, torch.zeros(n, ACTION_DIM), torch.zeros(n), obs, torch.zeros(n))


@pytest.mark.parametrize("method_name, options", [
    ("redo", {"tau": 0.6, "period": 1, "batch_size": 64}),
    ("regrama", {"mode": "lowest_k_percent", "percent": 30.0, "period": 1, "batch_size": 64,
                 "variant": "pre_activation"}),  # the ReDo pipeline this test pins
])
def test_recycling_resets_denoiser_neurons_and_their_adam_state(method_name, options):
    actor = make_actor(widths=(16, 16), seed=4)
    critic = FixedCritic()
    role = actor_role(actor, critic)
    batch = make_batch()
    for _ in range(3):
        role.optimizer.zero_grad()
        role.loss_fn(actor, batch).backward()
        role.optimizer.step()
    g = torch.Generator().manual_seed(3)
    for state in role.optimizer.state.values():  # every entry non-zero, so resets are visible
        for key in ("exp_avg", "exp_avg_sq"):
            state[key].copy_(torch.rand(state[key].shape, generator=g) + 0.5)
    layers = neuron_layers(actor)
    before = {id(p): p.detach().clone() for p in actor.parameters()}
    adam_before = {id(p): {k: v.clone() for k, v in role.optimizer.state[p].items()} for p in actor.parameters()}

    method = make_method(method_name, **options)
    torch.manual_seed(17)
    masks = {name: method.select(score) for name, score in method.scores(role, batch).items()}
    torch.manual_seed(17)  # the method scores under the same chain noise
    stats = method.after_update({"actor": role}, 1, lambda: batch)
    reset_total = sum(int(m.sum()) for m in masks.values())
    assert reset_total > 0
    assert stats["reset_fraction/actor"] == pytest.approx(reset_total / sum(layer.width for layer in layers))

    # Layers share matrices (one's outgoing is the next one's incoming): row i of a matrix is
    # re-drawn when its next-layer neuron is chosen, column j zeroed when its neuron is chosen.
    redrawn_rows = {id(layer.incoming.weight): masks[layer.name] for layer in layers}
    zeroed_columns = {id(out.weight): masks[layer.name] for layer in layers for out in layer.outgoing}
    for layer in layers:
        chosen = masks[layer.name]
        weight, bias = layer.incoming.weight, layer.incoming.bias
        old = before[id(weight)]
        assert not torch.equal(weight[chosen], old[chosen])  # re-drawn
        kept_columns = ~zeroed_columns.get(id(weight), torch.zeros(weight.shape[1], dtype=torch.bool))
        torch.testing.assert_close(weight[~chosen][:, kept_columns], old[~chosen][:, kept_columns], rtol=0, atol=0)
        assert torch.all(bias[chosen] == 0)
        for outgoing in layer.outgoing:
            kept_rows = ~redrawn_rows.get(id(outgoing.weight), torch.zeros(outgoing.out_features, dtype=torch.bool))
            assert torch.all(outgoing.weight[:, chosen] == 0)
            unchanged = before[id(outgoing.weight)][kept_rows][:, ~chosen]
            torch.testing.assert_close(outgoing.weight[kept_rows][:, ~chosen], unchanged, rtol=0, atol=0)
            for key in ("exp_avg", "exp_avg_sq"):
                state = role.optimizer.state[outgoing.weight][key]
                assert torch.all(state[:, chosen] == 0)
                unchanged = adam_before[id(outgoing.weight)][key][kept_rows][:, ~chosen]
                torch.testing.assert_close(state[kept_rows][:, ~chosen], unchanged, rtol=0, atol=0)
        for key in ("exp_avg", "exp_avg_sq"):
            state = role.optimizer.state[weight][key]
            assert torch.all(state[chosen] == 0)
            unchanged = adam_before[id(weight)][key][~chosen][:, kept_columns]
            torch.testing.assert_close(state[~chosen][:, kept_columns], unchanged, rtol=0, atol=0)
            assert torch.all(role.optimizer.state[bias][key][chosen] == 0)

    for _ in range(5):  # and the network still trains
        role.optimizer.zero_grad()
        loss = role.loss_fn(actor, batch)
        loss.backward()
        role.optimizer.step()
        assert torch.isfinite(loss)
    assert any(not torch.equal(p, before[id(p)]) for p in actor.parameters())


def test_dqn_with_a_diffusion_actor_is_an_invalid_combination():
    with pytest.raises(InvalidCombinationError, match="'dqn' has no actor; architecture 'diffusion'.*sac, td3"):
        build_spec("dqn", "diffusion", "none", "gym:CartPole-v1", seed=0, steps=1000)
    spec = build_spec("sac", "diffusion", "none", "gym:Pendulum-v1", seed=0, steps=1000, overrides=["diffusion_steps=3"])
    assert spec.hyperparams["diffusion_steps"] == 3
    from plasticity_bench.spec import SpecError

    for override, message in [("beta_schedule=cosine", "unknown beta_schedule 'cosine'; valid: squaredcos_cap_v2"),
                              ("diffusion_steps=0", r"diffusion_steps=0 is out of range; valid: \[1, inf\)"),
                              ("denoiser_hidden_sizes=[]", "denoiser_hidden_sizes must list")]:
        with pytest.raises(SpecError, match=message):
            build_spec("sac", "diffusion", "none", "gym:Pendulum-v1", seed=0, steps=1000, overrides=[override])


def test_sac_builds_the_diffusion_actor_by_arch():
    import numpy as np

    from plasticity_bench.agents.sac import SAC
    from plasticity_bench.spec import default_hyperparams

    network = NetworkConfig(arch="diffusion", diffusion_steps=2, denoiser_hidden_sizes=(8,), hidden_sizes=(8,))
    agent = SAC(OBS_DIM, ACTION_DIM, default_hyperparams("sac", "diffusion"), network, 100, torch.device("cpu"))
    assert isinstance(agent.actor, DiffusionActor)
    batch = make_batch(8)
    batch = batch._replace(actions=torch.rand(8, ACTION_DIM) * 2 - 1, rewards=torch.randn(8), terminations=torch.zeros(8))
    for _ in range(2):
        stats = agent.update(batch)
    assert all(torch.isfinite(v) for v in stats.values())
    assert agent.act(np.zeros((1, OBS_DIM), dtype=np.float32), 0, [np.random.default_rng(0)], explore=True)[0].shape == (ACTION_DIM,)


def test_td3_builds_the_diffusion_actor_by_arch():
    import numpy as np

    from plasticity_bench.agents.td3 import TD3
    from plasticity_bench.spec import default_hyperparams

    network = NetworkConfig(arch="diffusion", diffusion_steps=2, denoiser_hidden_sizes=(8,), hidden_sizes=(8,))
    agent = TD3(OBS_DIM, ACTION_DIM, default_hyperparams("td3", "diffusion"), network, 100, torch.device("cpu"))
    assert isinstance(agent.actor, DiffusionActor) and isinstance(agent.actor_target, DiffusionActor)
    batch = make_batch(8)._replace(actions=torch.rand(8, ACTION_DIM) * 2 - 1, rewards=torch.randn(8))
    before = [p.detach().clone() for p in agent.actor.denoiser.parameters()]
    for _ in range(2):  # the second update moves the actor (policy_frequency 2)
        stats = agent.update(batch)
    assert all(torch.isfinite(v) for v in stats.values()) and "actor_loss" in stats
    assert any(not torch.equal(p, b) for p, b in zip(agent.actor.denoiser.parameters(), before))
    state = torch.get_rng_state()
    evaluation = agent.act(np.zeros((1, OBS_DIM), dtype=np.float32), 0, [np.random.default_rng(0)], explore=False)[0]
    assert np.abs(evaluation).max() <= 1.0
    assert torch.equal(torch.get_rng_state(), state)  # evaluation leaves training's noise alone


def final_return(spec, tmp_path) -> float:
    from plasticity_bench.analysis.runs import RunRecord
    from plasticity_bench.training import train

    manifest = train(spec, tmp_path / spec.run_id, progress=False, device="cpu")
    assert manifest["status"] == "completed"
    return float(RunRecord(tmp_path / spec.run_id).eval()["return"].iloc[-1])


# CleanRL defaults except learning_starts (Pendulum's 200-step episodes need few random
# steps) and widths of 128 (as tests/test_td3.py's residual test) to keep each run within
# a few CPU minutes; K = 5 steps and the cosine schedule are the defaults.
WIDTHS_128 = ["hidden_sizes=[128,128]", "denoiser_hidden_sizes=[128,128]"]
SAC_STEPS, SAC_OVERRIDES = 6000, ["eval_every_steps=2000", "learning_starts=1000", *WIDTHS_128]
TD3_STEPS, TD3_OVERRIDES = 12_000, ["eval_every_steps=3000", "learning_starts=5000", *WIDTHS_128]


# Uniform random actions score about -1225 on Pendulum (plasticity_bench/suites/classic_control_continuous.yaml);
# -400 is far above anything a random or untrained policy reaches.
@pytest.mark.slow
def test_sac_with_the_diffusion_actor_learns_pendulum(tmp_path):
    spec = build_spec("sac", "diffusion", "none", "gym:Pendulum-v1", seed=0, steps=SAC_STEPS,
                      overrides=SAC_OVERRIDES)
    assert final_return(spec, tmp_path) >= -400


@pytest.mark.slow
def test_td3_with_the_diffusion_actor_learns_pendulum(tmp_path):
    spec = build_spec("td3", "diffusion", "none", "gym:Pendulum-v1", seed=0, steps=TD3_STEPS,
                      overrides=TD3_OVERRIDES)
    assert final_return(spec, tmp_path) >= -400


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_with_the_diffusion_actor(tmp_path):
    """The chain's noise comes from the checkpointed global RNG: a resumed run (SAC with
    ReGraMa resets of the actor's denoiser) finishes exactly as the uninterrupted one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import pandas as pd

    from plasticity_bench.analysis.runs import RunRecord

    args = ["--algo", "sac", "--arch", "diffusion", "--method", "regrama", "--task", "gym:Pendulum-v1",
            "--steps", "1800", "--set", "learning_starts=400", "--set", "checkpoint_every_steps=400",
            "--set", "eval_every_steps=600", "--set", "eval_episodes=2", "--set", "monitor_every_updates=200",
            "--set", "regrama.period=300", "--set", "hidden_sizes=[64, 64]", "--set", "denoiser_hidden_sizes=[64, 64]",
            "--device", "cpu", "--no-progress"]

    def command(out):
        return [sys.executable, "-m", "plasticity_bench", "train", *args, "--out", str(out)]

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(command(reference), check=True, capture_output=True, timeout=900)
    process = subprocess.Popen(command(resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (resumed / "checkpoint.pt").exists():
        assert process.poll() is None, "run finished before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(command(resumed), check=True, capture_output=True, timeout=900)
    assert RunRecord(resumed).manifest()["resumes"] >= 1
    pd.testing.assert_frame_equal(RunRecord(resumed).eval(), RunRecord(reference).eval())
    metrics = RunRecord(resumed).metrics()
    pd.testing.assert_frame_equal(metrics, RunRecord(reference).metrics())
    actor_layers = set(metrics.loc[metrics["network"] == "actor", "layer"])
    assert {"denoiser.layers.1", "denoiser.layers.3"} <= actor_layers  # the monitor sees the denoiser
