"""Seeds as a batch dimension (training/stack.py): several seeds trained by one process give each
seed the numbers of its one-seed run, for every algorithm × architecture × method cell of
the smoke config; a seed that fails fails alone; a killed group resumes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from plasticity_bench import results
from plasticity_bench.roles import Batch
from plasticity_bench.methods.base import Method
from plasticity_bench.networks.stacked import NotStackableError, stack_networks
from plasticity_bench.training.stack import SeedGroup, SeedStack, acts_inside_update, ready
from plasticity_bench.training import train_seeds
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer
from plasticity_bench.training import train

ROOT = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((ROOT / "workflow/config/smoke.yaml").read_text())

# Small budgets with 200 updates at replay ratio 1, every method acting at least twice.
COMMON = ["monitor_every_updates=50", "hidden_sizes=[32,32]", "eval_episodes=1", "checkpoint_every_steps=100",
          "learning_starts=100", "eval_every_steps=150", "replay_ratio=1"]
METHOD_OPTIONS = {"redo": ["redo.period=50"], "regrama": ["regrama.period=50"], "reset": ["reset.period=50"],
                  "shrink_perturb": ["shrink_perturb.period=50"], "plasticity_injection": ["plasticity_injection.at_update=100"],
                  "cbp": ["cbp.maturity_threshold=20", "cbp.replacement_rate=0.05"],
                  "c_chain": ["c_chain.adapt_after=50", "c_chain.window=50"]}
TASKS = {"dqn": "gym:CartPole-v1", "sac": "gym:Pendulum-v1", "td3": "gym:Pendulum-v1"}


def smoke_cells() -> list[tuple[str, str, str]]:
    """Every algorithm × architecture × method of the smoke config's RL runs (the valid ones:
    the workflow drops e.g. DQN × diffusion, which has no actor)."""
    cells = {(algo, arch, method) for algo in SMOKE["algos"] for arch in SMOKE["archs"] for method in SMOKE["methods"]}
    for experiment in SMOKE["experiments"]:
        algos = experiment.get("algos", SMOKE["algos"])
        cells |= {(algo, arch, method) for algo in algos if algo != "sl"
                  for arch in experiment.get("archs", SMOKE["archs"]) for method in experiment.get("methods", SMOKE["methods"])}
    return sorted(cell for cell in cells if cell != ("dqn", "diffusion", "none"))


def specs_of(algo: str, arch: str, method: str, seeds=(0, 1), steps: int = 300, extra=()):
    overrides = COMMON + METHOD_OPTIONS.get(method, []) + list(extra)
    return [build_spec(algo, arch, method, TASKS[algo], seed, steps, overrides) for seed in seeds]


def final_state(run_dir: Path) -> dict:
    return results.load_checkpoint(run_dir / results.CHECKPOINT)


def assert_same_run(one_seed: Path, batched: Path, tolerance: float = 1e-5) -> None:
    """Parameters within ``tolerance`` relative; the same metric rows (reset events included)
    with values within it; the same evaluation returns."""
    a, b = final_state(one_seed), final_state(batched)
    assert a["counters"]["updates"] == b["counters"]["updates"]
    for name, module in a["agent"]["modules"].items():
        if "optimizer" in name:
            continue
        for key, value in module.items():
            other = b["agent"]["modules"][name][key]
            scale = value.double().abs().max().clamp_min(1e-12)
            assert ((value.double() - other.double()).abs().max() / scale) <= tolerance, f"{name}.{key}"
    metrics_a, metrics_b = pd.read_parquet(one_seed / results.METRICS), pd.read_parquet(batched / results.METRICS)
    keys = ["step", "network", "layer", "metric"]
    pd.testing.assert_frame_equal(metrics_a[keys], metrics_b[keys])
    pd.testing.assert_series_equal(metrics_a["value"], metrics_b["value"], rtol=tolerance, atol=tolerance)
    resets = metrics_a["metric"].str.startswith("reset")
    assert metrics_a[resets]["value"].tolist() == metrics_b[resets]["value"].tolist()
    assert pd.read_parquet(one_seed / results.EVAL)["return"].tolist() == pytest.approx(
        pd.read_parquet(batched / results.EVAL)["return"].tolist(), rel=tolerance)


def train_alone_and_together(tmp_path: Path, specs) -> list[dict]:
    for spec in specs:
        train(spec, tmp_path / "alone" / spec.run_id, progress=False, allow_short_budget=True, tensorboard=False)
    return train_seeds(specs, [tmp_path / "together" / spec.run_id for spec in specs], progress=False,
                       allow_short_budget=True, tensorboard=False)


@pytest.mark.slow
@pytest.mark.parametrize("algo,arch,method", smoke_cells())
def test_seeds_trained_together_match_their_one_seed_runs(tmp_path, algo, arch, method):
    specs = specs_of(algo, arch, method)
    manifests = train_alone_and_together(tmp_path, specs)
    assert [m["status"] for m in manifests] == ["completed", "completed"]
    for spec in specs:
        assert final_state(tmp_path / "together" / spec.run_id)["counters"]["updates"] == 200
        assert_same_run(tmp_path / "alone" / spec.run_id, tmp_path / "together" / spec.run_id)


def test_smoke_cells_cover_every_method_and_architecture():
    cells = smoke_cells()
    assert {method for _, _, method in cells} == set(SMOKE["methods"])
    assert {(algo, arch) for algo, arch, _ in cells} >= {(a, r) for a in ("sac", "td3", "dqn")
                                                         for r in ("mlp", "residual", "diffusion")} - {("dqn", "diffusion")}


def test_a_seed_that_diverges_fails_alone(tmp_path, monkeypatch):
    """A NaN in seed 1's weights (as a divergence leaves) fails seed 1 at its next health
    check with the reason; seed 0 trains on, its numbers those of its one-seed run."""
    specs = specs_of("dqn", "mlp", "none")
    train(specs[0], tmp_path / "alone" / specs[0].run_id, progress=False, allow_short_budget=True, tensorboard=False)
    original = Trainer.after_update

    def poison(self):
        original(self)
        if self.spec.seed == 1 and self.updates == 60:
            with torch.no_grad():
                next(self.agent.q_network.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(Trainer, "after_update", poison)
    manifests = train_seeds(specs, [tmp_path / "together" / spec.run_id for spec in specs], progress=False,
                            allow_short_budget=True, tensorboard=False)
    assert manifests[0]["status"] == "completed"
    assert manifests[1]["status"] == "failed"
    assert "non-finite" in manifests[1]["error"] and "update 100" in manifests[1]["error"]
    assert results.read_manifest(tmp_path / "together" / specs[1].run_id)["status"] == "failed"
    assert_same_run(tmp_path / "alone" / specs[0].run_id, tmp_path / "together" / specs[0].run_id)


def test_a_killed_group_resumes_every_seed_exactly(tmp_path, monkeypatch):
    """Killed mid-run (KeyboardInterrupt, as Ctrl-C; a SIGKILL leaves the same checkpoints),
    the same call resumes each seed from its own last checkpoint (taken at its own episode
    boundary, so the seeds catch up to each other first) and ends where an uninterrupted
    group ends."""
    specs = specs_of("sac", "mlp", "redo", steps=400)
    uninterrupted = train_seeds(specs, [tmp_path / "whole" / s.run_id for s in specs], progress=False,
                                allow_short_budget=True, tensorboard=False)
    assert [m["status"] for m in uninterrupted] == ["completed", "completed"]
    original = Trainer.collect_step

    def interrupt(self, *action):
        if self.spec.seed == 0 and self.env_steps == 290:
            raise KeyboardInterrupt
        return original(self, *action)

    monkeypatch.setattr(Trainer, "collect_step", interrupt)
    dirs = [tmp_path / "killed" / s.run_id for s in specs]
    with pytest.raises(KeyboardInterrupt):
        train_seeds(specs, dirs, progress=False, allow_short_budget=True, tensorboard=False)
    steps = [final_state(d)["counters"]["env_steps"] for d in dirs]
    assert all(100 <= step < 290 for step in steps)
    monkeypatch.setattr(Trainer, "collect_step", original)
    resumed = train_seeds(specs, dirs, progress=False, allow_short_budget=True, tensorboard=False)
    assert [m["resumes"] for m in resumed] == [1, 1]
    for spec in specs:
        assert_same_run(tmp_path / "whole" / spec.run_id, tmp_path / "killed" / spec.run_id, tolerance=0.0)


def test_seeds_of_different_cells_are_refused(tmp_path):
    specs = specs_of("dqn", "mlp", "none", seeds=(0,)) + specs_of("dqn", "mlp", "redo", seeds=(1,))
    with pytest.raises(ValueError, match="one cell"):
        train_seeds(specs, [tmp_path / s.run_id for s in specs], progress=False, allow_short_budget=True)


def test_stacked_networks_are_views_and_compute_each_seeds_own_output():
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.LayerNorm(8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
            for _ in range(3)]
    stacked = stack_networks(nets)
    x = torch.randn(3, 5, 3)
    for seed, net in enumerate(nets):
        assert torch.allclose(stacked(x)[seed], net(x[seed]), atol=1e-6)
    with torch.no_grad():
        nets[1][0].weight.zero_()  # a method editing seed 1 in place edits the stack's seed 1 only
    assert stacked[0].weight[1].abs().sum() == 0 and stacked[0].weight[0].abs().sum() > 0


def test_a_module_with_parameters_of_its_own_does_not_stack():
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(2))

        def forward(self, x):
            return x * self.scale

    with pytest.raises(NotStackableError, match="Scaled .* parameters of its own"):
        stack_networks([Scaled(), Scaled()])


def test_methods_that_act_inside_the_update_are_detected():
    from plasticity_bench.methods import make_method

    inside = {name for name in SMOKE["methods"] if acts_inside_update(make_method(name))}
    assert inside == {"l2", "l2_init", "parseval", "c_chain", "cbp", "plasticity_injection"}


def test_one_stacked_adam_step_is_each_seeds_adam_step(tmp_path):
    """The stack's optimizer is one Adam over [seeds, ...] tensors whose state the seeds'
    Adams view: a stacked update leaves each seed's optimizer state as its own update would."""
    specs = specs_of("dqn", "mlp", "none", steps=300)
    trainers = []
    for spec in specs:
        trainer = Trainer(spec, tmp_path / spec.run_id, 1, torch.device("cpu"), False)
        ready(trainer)
        trainer.start_episode()
        for _ in range(150):
            if trainer.collect_step():
                trainer.start_episode()
        trainers.append(trainer)
    references = []
    for trainer in trainers:
        copy_ = Trainer(trainer.spec, tmp_path / "ref" / trainer.spec.run_id, 1, torch.device("cpu"), False)
        copy_.agent.load_state_dict(trainer.agent.state_dict())
        references.append(copy_)
    stack = SeedStack(trainers)
    index = torch.arange(32).expand(2, 32)
    batch = Batch(*(field[stack.seed_index, index] for field in stack.replay_fields))
    stack.agent.update(batch)
    for seed, (trainer, reference) in enumerate(zip(trainers, references)):
        seed_batch = Batch(*(getattr(trainer.replay, name)[:32] for name in ("obs", "actions", "rewards", "next_obs", "terminations")))
        reference.agent.update(seed_batch)
        for param, expected in zip(trainer.agent.q_network.parameters(), reference.agent.q_network.parameters()):
            assert torch.allclose(param, expected, atol=1e-7)
        for param, expected in zip(trainer.agent.q_network.parameters(), reference.agent.q_network.parameters()):
            state, expected_state = trainer.agent.optimizer.state[param], reference.agent.optimizer.state[expected]
            assert float(state["step"]) == float(expected_state["step"]) == 1.0
            assert torch.allclose(state["exp_avg"], expected_state["exp_avg"], atol=1e-9)
    assert stack.intact()
    trainers[1].agent.optimizer.state.pop(next(trainers[1].agent.q_network.parameters()))  # as a reset does
    assert not stack.intact()


@pytest.mark.slow
def test_sigkill_of_a_grouped_job_then_rerun_equals_uninterrupted(tmp_path):
    """`train --seeds` killed with SIGKILL after a checkpoint and run again finishes every seed
    with the records of an uninterrupted group."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "plasticity_bench", "train", "--algo", "dqn", "--method", "redo",
            "--task", "gym:CartPole-v1", "--steps", "8000", "--seeds", "0,1", "--no-progress", "--device", "cpu",
            "--set", "learning_starts=1000", "--set", "checkpoint_every_steps=1500", "--set", "eval_every_steps=2000",
            "--set", "monitor_every_updates=100", "--set", "redo.period=200", "--set", "replay_ratio=0.5"]
    subprocess.run(args + ["--runs-dir", str(tmp_path / "whole")], check=True, capture_output=True, timeout=900)
    killed = tmp_path / "killed"
    process = subprocess.Popen(args + ["--runs-dir", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not list(killed.glob("*/checkpoint.pt")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "the job finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(args + ["--runs-dir", str(killed)], check=True, capture_output=True, timeout=900)
    for run in (tmp_path / "whole").iterdir():
        assert results.read_manifest(killed / run.name)["status"] == "completed"
        pd.testing.assert_frame_equal(pd.read_parquet(killed / run.name / results.EVAL), pd.read_parquet(run / results.EVAL))
        pd.testing.assert_frame_equal(pd.read_parquet(killed / run.name / results.METRICS),
                                      pd.read_parquet(run / results.METRICS))


def test_probe_and_hessian_rows_match_too(tmp_path):
    """The plasticity probe and the Hessian monitor, off in the smoke cells, on a stack."""
    specs = specs_of("sac", "mlp", "none", extra=["probe_every_updates=100", "probe_steps=30", "probe_targets=3",
                                                 "monitor_hessian=true"])
    train_alone_and_together(tmp_path, specs)
    for spec in specs:
        metrics = pd.read_parquet(tmp_path / "together" / spec.run_id / results.METRICS)
        assert metrics["metric"].str.contains("probe").any() and metrics["metric"].str.contains("hessian").any()
        assert_same_run(tmp_path / "alone" / spec.run_id, tmp_path / "together" / spec.run_id)


def played_alone(trainer: Trainer) -> list[float]:
    """The seed's evaluation returns played in a group of its own (a stack of one)."""
    group = SeedGroup([trainer], progress=False)
    group.restack()
    played = group.play_evaluations()[id(trainer)]
    group.drop_stack()
    return played


def built_trainers(tmp_path: Path, specs) -> list[Trainer]:
    trainers = []
    for spec in specs:
        trainer = Trainer(spec, tmp_path / spec.run_id, 1, torch.device("cpu"), False)
        ready(trainer)
        trainer.start_clock()
        trainer.start_episode()
        trainers.append(trainer)
    return trainers


@pytest.mark.parametrize("algo", ["dqn", "sac", "td3"])
def test_evaluation_played_in_lockstep_is_each_seeds_own(tmp_path, algo):
    """The stack plays every seed's evaluation episodes at once (episodes of different
    lengths: CartPole's end when the pole falls): each seed's returns are those it plays
    alone with its own modules, and no training generator moves."""
    specs = specs_of(algo, "mlp", "none", seeds=(0, 1, 2), extra=["eval_episodes=3", "eval_epsilon=0.2"] if algo == "dqn"
                     else ["eval_episodes=2"])
    trainers = built_trainers(tmp_path, specs)
    group = SeedGroup(trainers, progress=False)
    before = [(trainer.rng.bit_generator.state, trainer.generators.for_device.get_state()) for trainer in trainers]
    group.restack()
    played = group.play_evaluations()
    group.drop_stack()
    assert set(played) == {id(trainer) for trainer in trainers}
    for trainer, (numpy_state, torch_state) in zip(trainers, before):
        assert trainer.rng.bit_generator.state == numpy_state
        assert torch.equal(trainer.generators.for_device.get_state(), torch_state)
        alone = played_alone(trainer)
        assert len(played[id(trainer)]) == len(alone)
        assert played[id(trainer)] == pytest.approx(alone, rel=1e-4)
    if algo == "dqn":  # the seeds' episodes differ, so lockstep had seeds waiting
        assert len({tuple(played[id(trainer)]) for trainer in trainers}) == 3


def test_a_seed_whose_evaluation_env_fails_fails_alone(tmp_path):
    """An evaluation environment that raises mid-episode fails its seed with the reason;
    the other seeds' evaluations complete with their own returns."""
    specs = specs_of("dqn", "mlp", "none", seeds=(0, 1, 2), extra=["eval_episodes=2"])
    trainers = built_trainers(tmp_path, specs)
    expected = {trainer.spec.seed: played_alone(trainer) for trainer in trainers}
    broken = trainers[1].eval_env
    real_step, calls = broken.step, []

    def step(action):
        calls.append(action)
        if len(calls) == 5:
            raise RuntimeError("the simulator lost its state")
        return real_step(action)

    broken.step = step
    group = SeedGroup(trainers, progress=False)
    group.restack()
    played = group.play_evaluations()
    assert [trainer.spec.seed for trainer in group.live] == [0, 2]
    assert {trainers[0].spec.seed: played[id(trainers[0])], 2: played[id(trainers[2])]} == {0: expected[0], 2: expected[2]}
    manifest = group.manifests[id(trainers[1])]
    assert manifest["status"] == "failed" and "the simulator lost its state" in manifest["error"]
