"""The plasticity probe (Lyle et al. 2023; metrics/plasticity_probe.py): its targets, that it tells a
plastic network from a dead one, that it runs on every role of every agent and
architecture, and that training with it is exactly training without it."""

import copy
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.metrics.plasticity_probe import (PROBE_LOSS, PROBE_METRICS, fit_random_targets, optimizer_like,
                                                       probe_roles, probe_seeds, random_targets)
from plasticity_bench.networks import MLP, NetworkConfig
from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.spec import SpecError, build_spec
from plasticity_bench.training.run import Trainer
from plasticity_bench.training import train


def test_targets_are_current_mean_plus_sin_of_a_fresh_init():
    torch.manual_seed(0)
    net, x = nn.Linear(3, 2), torch.randn(16, 3)
    targets = random_targets(net, (x,), seed=7)
    # By hand: w0 is nn.Linear's own initialisation drawn from the probe's init seed.
    torch.manual_seed(probe_seeds(7)[0])
    w0 = nn.Linear(3, 2)
    with torch.no_grad():
        expected = net(x).mean(dim=0) + torch.sin(1e5 * w0(x))
    torch.testing.assert_close(targets, expected)
    assert not torch.equal(w0.weight, net.weight)


def adam_at(lr):
    return optimizer_like(torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=lr))


def test_probe_tells_a_plastic_net_from_a_dead_one():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    plastic = MLP(4, 2, NetworkConfig(hidden_sizes=(32, 32)))
    fits = [fit_random_targets(plastic, (x,), steps=steps, make_optimizer=adam_at(1e-3), seed=3) for steps in (0, 50, 300)]
    assert fits[0].loss > fits[1].loss > fits[2].loss
    assert fits[2].loss < 0.3 * fits[0].loss
    assert len({fit.initial_loss for fit in fits}) == 1 and fits[0].loss == fits[0].initial_loss

    dead = copy.deepcopy(plastic)
    with torch.no_grad():
        dead.layers[0].bias.fill_(-100.0)  # every first-layer ReLU off on every input: only the output bias learns
    targets = random_targets(dead, (x,), seed=int(np.random.SeedSequence(3).generate_state(1)[0]))
    variance = targets.var(dim=0, unbiased=False).mean().item()  # the best a constant output can do
    dead_fit = fit_random_targets(dead, (x,), steps=300, make_optimizer=adam_at(1e-3), seed=3)
    assert dead_fit.target_variance == pytest.approx(variance, rel=1e-6)
    assert 0.999 * variance <= dead_fit.loss <= 1.05 * variance  # float32 rounding below
    assert abs(dead_fit.plasticity) <= 0.05 * variance  # P = b - L: nothing of the targets' variance explained
    assert dead_fit.loss > 3 * fits[2].loss


def test_plasticity_is_target_variance_minus_final_loss_by_hand():
    # Before any step (steps=0) every quantity is a closed form of the net and its targets.
    torch.manual_seed(1)
    net, x = nn.Linear(3, 2), torch.randn(10, 3)
    fit = fit_random_targets(net, (x,), steps=0, make_optimizer=adam_at(1e-2), seed=4, targets=3)
    seeds = [int(s) for s in np.random.SeedSequence(4).generate_state(3)]
    targets = [random_targets(net, (x,), seed=s) for s in seeds]
    with torch.no_grad():
        losses = [F.mse_loss(net(x), t).item() for t in targets]
    variances = [t.var(dim=0, unbiased=False).mean().item() for t in targets]
    assert fit.initial_loss == pytest.approx(np.mean(losses), rel=1e-6) and fit.loss == fit.initial_loss
    assert fit.target_variance == pytest.approx(np.mean(variances), rel=1e-6)
    assert fit.plasticity == pytest.approx(np.mean(variances) - np.mean(losses), rel=1e-5)
    assert fit.loss_ratio == 1.0
    # A linear map with more inputs than samples interpolates any targets: the fit explains all of
    # their variance, P -> b, L / L0 -> 0.
    wide, few = nn.Linear(16, 2), torch.randn(8, 16)
    fitted = fit_random_targets(wide, (few,), steps=2000, make_optimizer=adam_at(1e-2), seed=4, targets=3)
    assert fitted.loss < 1e-4 and fitted.plasticity == pytest.approx(fitted.target_variance, abs=1e-4)
    assert fitted.loss_ratio < 1e-3


def test_stacked_fit_of_the_targets_equals_fitting_them_one_by_one():
    torch.manual_seed(2)
    x = torch.randn(32, 5)
    net = MLP(5, 3, NetworkConfig(hidden_sizes=(16, 16), layer_norm=True))
    stacked = fit_random_targets(net, (x,), steps=200, make_optimizer=adam_at(1e-3), seed=9, targets=4)
    alone = fit_random_targets(net, (x,), steps=200, make_optimizer=adam_at(1e-3), seed=9, targets=4, stack=False)
    assert stacked.initial_loss == pytest.approx(alone.initial_loss, rel=1e-5)
    assert stacked.target_variance == alone.target_variance
    assert stacked.loss == pytest.approx(alone.loss, rel=1e-3)


def test_the_copy_trains_with_the_networks_own_optimizer_type():
    params = [nn.Parameter(torch.zeros(2))]
    made = optimizer_like(torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1))([nn.Parameter(torch.zeros(2))])
    assert type(made) is torch.optim.AdamW
    assert made.param_groups[0]["lr"] == 3e-4 and made.param_groups[0]["weight_decay"] == 0.1
    made = optimizer_like(torch.optim.SGD(params, lr=0.5, momentum=0.9), lr=0.01)([nn.Parameter(torch.zeros(2))])
    assert type(made) is torch.optim.SGD and made.param_groups[0]["lr"] == 0.01
    assert made.param_groups[0]["momentum"] == 0.9


def test_probe_fits_a_copy_and_restores_the_global_rng():
    torch.manual_seed(0)
    net, x = MLP(4, 2, NetworkConfig(hidden_sizes=(16,))), torch.randn(32, 4)
    F.mse_loss(net(x), torch.zeros(32, 2)).backward()  # the live net holds gradients, as after an update
    before = copy.deepcopy(net.state_dict())
    grads = [p.grad.clone() for p in net.parameters()]
    rng = torch.get_rng_state()
    first = fit_random_targets(net, (x,), steps=20, make_optimizer=adam_at(1e-3), seed=5, targets=3)
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), grads))
    assert fit_random_targets(net, (x,), steps=20, make_optimizer=adam_at(1e-3), seed=5, targets=3) == first


CELLS = [("sac", "mlp"), ("sac", "residual"), ("sac", "diffusion"), ("td3", "mlp"), ("td3", "residual"),
         ("td3", "diffusion"), ("dqn", "mlp"), ("dqn", "residual")]


@pytest.mark.parametrize("algo,arch", CELLS)
def test_probe_runs_on_every_role_and_leaves_training_state_alone(tmp_path, algo, arch):
    task = "gym:CartPole-v1" if algo == "dqn" else "gym:Pendulum-v1"
    overrides = ["hidden_sizes=[16]", "learning_starts=64"] + (["denoiser_hidden_sizes=[16]"] if arch == "diffusion" else [])
    spec = build_spec(algo, arch, "none", task, seed=0, steps=1000, overrides=overrides)
    trainer = Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False)
    trainer.start_episode()
    for _ in range(80):  # a few updates, so the optimizers hold state
        over = trainer.collect_step()
        trainer.train_on_replay()
        if over:
            trainer.start_episode()
    state = copy.deepcopy(trainer.agent.state_dict())
    replay = (trainer.replay.position, trainer.replay.size)
    rng = torch.get_rng_state()

    rows = probe_roles(trainer.agent.roles, trainer.replay, steps=5, lr=None, batch_size=32, targets=3, seed=11)

    assert [(r["network"], r["layer"], r["metric"]) for r in rows] == [
        (role, "all", metric) for role in trainer.agent.roles for metric in PROBE_METRICS]
    assert all(0 < r["value"] < float("inf") for r in rows if r["metric"] != "plasticity")
    # The diffusion actor's chain draws noise: under the probe it is a fixed function.
    assert probe_roles(trainer.agent.roles, trainer.replay, steps=5, lr=None, batch_size=32, targets=3, seed=11) == rows
    assert torch.equal(torch.get_rng_state(), rng)
    assert (trainer.replay.position, trainer.replay.size) == replay
    torch.testing.assert_close(trainer.agent.state_dict(), state, rtol=0, atol=0)


# Tiny runs on which the probe fires several times; each with a method whose state and
# forward hooks (CBP) or resets (ReDo) would show any effect of the probe on the networks.
RUNS = {
    "sac": ("sac", "cbp", "gym:Pendulum-v1", 600, ["learning_starts=200", "eval_every_steps=200", "eval_episodes=2",
            "monitor_every_updates=50", "hidden_sizes=[32, 32]", "cbp.maturity_threshold=20", "cbp.replacement_rate=0.01"]),
    "dqn": ("dqn", "redo", "gym:CartPole-v1", 2000, ["learning_starts=500", "eval_every_steps=500", "eval_episodes=2",
            "monitor_every_updates=25", "hidden_sizes=[32, 32]", "redo.period=40"]),
}
PROBE_ON = ["probe_every_updates=30", "probe_steps=20", "probe_targets=3", "probe_batch_size=64"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_training_with_the_probe_equals_training_without(tmp_path, name):
    algo, method, task, steps, overrides = RUNS[name]
    records = {}
    for label, probe in (("off", ["probe_every_updates=0"]), ("on", PROBE_ON)):
        spec = build_spec(algo, "mlp", method, task, seed=1, steps=steps, overrides=overrides + probe)
        train(spec, tmp_path / label, threads=1, device="cpu", progress=False)
        records[label] = RunRecord(tmp_path / label)
    pd.testing.assert_frame_equal(records["on"].eval(), records["off"].eval())
    on, off = records["on"].metrics(), records["off"].metrics()
    probes = on[on.metric == PROBE_LOSS]
    assert not set(PROBE_METRICS) & set(off.metric)
    assert len(probes) >= 3 * len(set(probes.network)) and probes.value.gt(0).all()
    assert probes.step.min() == min(on.step)  # the probe at update 0, with the monitor's first row
    pd.testing.assert_frame_equal(on[~on.metric.isin(PROBE_METRICS)].reset_index(drop=True), off)


def test_probe_settings_are_checked():
    for override in ("probe_every_updates=-1", "probe_steps=0", "probe_targets=0", "probe_lr=-0.001", "probe_batch_size=0"):
        with pytest.raises(SpecError, match=f"{override} is out of range; valid: "):
            build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed=0, steps=100, overrides=[override])


@pytest.mark.slow
def test_sigkill_then_resume_with_the_probe_equals_uninterrupted(tmp_path):
    args = ["--algo", "sac", "--method", "redo", "--task", "gym:Pendulum-v1", "--steps", "1200",
            "--set", "learning_starts=200", "--set", "checkpoint_every_steps=300", "--set", "eval_every_steps=400",
            "--set", "eval_episodes=2", "--set", "monitor_every_updates=100", "--set", "redo.period=150",
            "--set", "hidden_sizes=[32, 32]", "--set", "probe_every_updates=70", "--set", "probe_steps=30", "--set", "probe_targets=2"]

    def command(out):
        return [sys.executable, "-m", "plasticity_bench", "train", *args, "--out", str(out), "--no-progress", "--device", "cpu"]

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(command(reference), check=True, capture_output=True, timeout=600)
    process = subprocess.Popen(command(resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (resumed / "checkpoint.pt").exists():
        assert process.poll() is None, "run finished before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # kill somewhere after the first checkpoint
    assert process.poll() is None, "run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(command(resumed), check=True, capture_output=True, timeout=600)
    assert RunRecord(resumed).manifest()["resumes"] >= 1

    metrics = RunRecord(resumed).metrics()
    assert (metrics.metric == PROBE_LOSS).sum() >= 2 * 15  # two roles, at 0 and every 70 of 1000 updates
    pd.testing.assert_frame_equal(RunRecord(resumed).eval(), RunRecord(reference).eval())
    pd.testing.assert_frame_equal(metrics, RunRecord(reference).metrics())
