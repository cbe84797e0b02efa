"""The supervised positive control (algorithm sl, task sl:digits-random-labels): its data and
labels, per-task trainability records, plasticity loss without intervention, methods on it,
resume, and its place in the CLI, the suites and the smoke workflow."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from plasticity_bench.cli import app
from plasticity_bench.environments import is_supervised, make_env
from plasticity_bench.environments.suites import load_suite
from plasticity_bench.environments.supervised import DIGITS_COUNT, task_inputs, task_labels
from plasticity_bench.matrix import expand
from plasticity_bench.methods import Method
from plasticity_bench.networks import build_body
from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.results import load_checkpoint
from plasticity_bench.spec import InvalidCombinationError, SpecError, build_spec
from plasticity_bench.training.run import RunFailedError
from plasticity_bench.training.entry import make_trainer
from plasticity_bench.training import train

TASK = "sl:digits-random-labels"
ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# Small enough for a second or two of CPU, big enough that a fresh net memorises a task:
# 64 digits, a 2x128 MLP, 100 Adam steps per task at lr 0.02. Measured without intervention,
# seeds 0-3, eight tasks: first task 0.91-1.0, last two tasks 0.14-0.42 (seed 0: 0.91, 0.98,
# 0.55, 0.59, 0.22, 0.23, 0.22, 0.19).
SMALL = {"samples": 64, "hidden_sizes": [128, 128], "task_steps": 100, "learning_rate": 2e-2, "batch_size": 32,
         "monitor_every_updates": 400, "probe_every_updates": 0}


def small_spec(method="none", steps=800, seed=0, **changes):
    return build_spec("sl", "mlp", method, TASK, seed, steps, {**SMALL, **changes})


def accuracies(run_dir) -> list[float]:
    return RunRecord(run_dir).eval().sort_values("step")["return"].tolist()


# ---- data and labels ------------------------------------------------------------------


def test_inputs_are_the_bundled_digits_scaled_to_unit_range():
    digits = load_digits()
    assert len(digits.data) == DIGITS_COUNT
    inputs = task_inputs("digits-random-labels", 100)
    assert inputs.shape == (100, 64) and inputs.dtype == torch.float32
    assert float(inputs.min()) == 0.0 and float(inputs.max()) == 1.0
    np.testing.assert_allclose(inputs[7].numpy(), digits.images[7].ravel() / 16.0, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="samples=1798"):
        task_inputs("digits-random-labels", DIGITS_COUNT + 1)


def test_labels_are_redrawn_per_task_from_the_seed_and_reproducible():
    labels = task_labels(seed=3, task_index=2, samples=DIGITS_COUNT)
    assert labels.dtype == torch.int64 and labels.shape == (DIGITS_COUNT,)
    assert torch.equal(labels, task_labels(3, 2, DIGITS_COUNT))  # same seed and task: same labels
    assert torch.equal(labels[:50], task_labels(3, 2, 50))  # fewer samples: a prefix of the same draw
    for other in (task_labels(3, 3, DIGITS_COUNT), task_labels(4, 2, DIGITS_COUNT)):
        assert (other == labels).float().mean() < 0.2  # another task or seed: ~1/10 agree by chance
    counts = torch.bincount(labels, minlength=10)
    assert len(counts) == 10 and counts.min() > 120 and counts.max() < 240  # uniform: 179.7 ± 12.7 each
    true_digits = torch.as_tensor(load_digits().target)
    assert 0.05 < (labels == true_digits).float().mean() < 0.15  # random, not the digit shown


# ---- the protocol, checked by hand ----------------------------------------------------


def test_one_gradient_step_is_adam_on_cross_entropy_of_a_uniform_minibatch(tmp_path):
    spec = small_spec()
    trainer = make_trainer(spec, tmp_path, threads=1, device=CPU, progress=False)
    network = trainer.agent.roles["classifier"].network
    expected = copy.deepcopy(network)
    optimizer = torch.optim.Adam(expected.parameters(), lr=2e-2)
    rng_state = torch.get_rng_state()
    trainer.collect_step()  # task 0's labels
    trainer.train_on_replay()  # one gradient step

    torch.set_rng_state(rng_state)
    # (the monitor's batch at update 0 comes from a generator of its own: the global one is untouched)
    index = torch.randint(0, 64, (32,))  # 32 of the 64 samples, uniform with replacement
    pixels = torch.as_tensor(load_digits().data[:64] / 16.0, dtype=torch.float32)
    labels = torch.as_tensor(np.random.default_rng([0, 5, 0]).integers(10, size=64))  # task 0 of seed 0
    loss = F.cross_entropy(expected(pixels[index]), labels[index])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for got, want in zip(network.parameters(), expected.parameters()):
        # torch's per-tensor Adam; the suite's is its fused kernel, which rounds differently in the last bit
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-8)


def test_each_task_gets_one_trainability_row_computed_on_all_its_samples(tmp_path):
    spec = small_spec(steps=300, monitor_every_updates=150)
    manifest = train(spec, tmp_path, threads=1, device=CPU, progress=False)
    assert manifest["status"] == "completed" and manifest["step"] == 300 and manifest["updates"] == 300
    evals = RunRecord(tmp_path).eval()
    assert evals["step"].tolist() == [100, 200, 300] and evals["episodes"].tolist() == [1, 1, 1]
    metrics = RunRecord(tmp_path).metrics()
    per_task = metrics[metrics["network"].eq("classifier") & metrics["metric"].str.startswith("task_final")]
    table = per_task.pivot(index="step", columns="metric", values="value")
    assert table.index.tolist() == [100, 200, 300]
    assert table["task_final_accuracy"].tolist() == evals["return"].tolist()
    assert {"dormant_ratio@0", "srank", "weight_magnitude"} <= set(metrics["metric"])  # the monitor measured it

    # The last task's score, recomputed from the final checkpoint: its net on its labels.
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    network = build_body(spec.network_config(), 64, 10)
    network.load_state_dict(state["agent"]["modules"]["network"])
    pixels = torch.as_tensor(load_digits().data[:64] / 16.0, dtype=torch.float32)
    labels = task_labels(0, 2, 64)
    with torch.no_grad():
        logits = network(pixels)
    assert (logits.argmax(1) == labels).float().mean().item() == pytest.approx(evals["return"].iloc[-1], abs=1e-7)
    assert F.cross_entropy(logits, labels).item() == pytest.approx(table["task_final_loss"].iloc[-1], rel=1e-5)
    assert torch.equal(state["replay"]["actions"], labels)  # the trainer trained on exactly these labels


# ---- plasticity loss, and methods against it ------------------------------------------


def test_without_intervention_later_tasks_are_learned_worse(tmp_path):
    train(small_spec(), tmp_path, threads=1, device=CPU, progress=False)
    scores = accuracies(tmp_path)
    assert len(scores) == 8
    assert scores[0] > 0.85  # a fresh network memorises 64 random labels
    assert np.mean(scores[-2:]) < scores[0] - 0.4  # seven tasks later it cannot


def test_resetting_every_task_keeps_later_tasks_as_learnable_as_the_first(tmp_path):
    # reset (all layers and their Adam state) at each task's last step, after it is scored
    train(small_spec("reset", **{"reset.period": 100}), tmp_path, threads=1, device=CPU, progress=False)
    scores = accuracies(tmp_path)
    assert min(scores) > 0.85, scores
    metrics = RunRecord(tmp_path).metrics()
    resets = metrics[metrics["metric"] == "reset_fraction"]
    assert resets["step"].tolist() == [100, 200, 300, 400, 500, 600, 700, 800]
    assert resets["value"].eq(1.0).all() and resets["network"].eq("classifier").all()


@pytest.mark.parametrize("method", ["layer_norm", "redo"])
def test_role_methods_run_on_the_classifier(tmp_path, method):
    options = {"redo.period": 50} if method == "redo" else {}
    manifest = train(small_spec(method, steps=200, monitor_every_updates=100, **options), tmp_path, threads=1, device=CPU,
                     progress=False)
    assert manifest["status"] == "completed" and len(accuracies(tmp_path)) == 2
    if method == "layer_norm":
        assert manifest["network"]["layer_norm"] is True
    else:
        metrics = RunRecord(tmp_path).metrics()
        assert (metrics["metric"].str.contains("reset") & metrics["network"].eq("classifier")).any()


def test_diverging_run_is_recorded_as_failed_with_its_reason(tmp_path):
    with pytest.raises(RunFailedError, match="non-finite"):
        train(small_spec(steps=200, learning_rate=1e30, monitor_every_updates=100), tmp_path, threads=1, device=CPU,
              progress=False)
    manifest = RunRecord(tmp_path).manifest()
    assert manifest["status"] == "failed" and "non-finite" in manifest["error"]


# ---- resume ---------------------------------------------------------------------------


class InterruptOnce(Method):
    """Stands in for a kill: raises KeyboardInterrupt once, after update ``at``, while armed."""

    name = "interrupt_once"
    armed = False

    def __init__(self, at: int = 250):
        self.at = at

    @classmethod
    def options(cls):
        return {"at": 250}

    def after_update(self, roles, update_step, sample_batch):
        if InterruptOnce.armed and update_step == self.at:
            InterruptOnce.armed = False
            raise KeyboardInterrupt
        return {}


def test_run_interrupted_after_a_checkpoint_resumes_to_identical_records(tmp_path):
    # redo acts across the interruption; monitor rows before and after it; checkpoint at 200,
    # interruption at 250 (mid-task, after the records of task 2 were written).
    spec = small_spec(f"redo+{__name__}:InterruptOnce", steps=400, checkpoint_every_steps=200, monitor_every_updates=50,
                      **{"redo.period": 30})
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train(spec, reference, threads=1, device=CPU, progress=False)
    InterruptOnce.armed = True
    with pytest.raises(KeyboardInterrupt):
        train(spec, resumed, threads=1, device=CPU, progress=False)
    assert not InterruptOnce.armed and RunRecord(resumed).manifest()["status"] == "running"
    assert load_checkpoint(resumed / "checkpoint.pt")["counters"]["env_steps"] == 200

    manifest = train(spec, resumed, threads=1, device=CPU, progress=False)
    assert manifest["status"] == "completed" and manifest["resumes"] == 1
    pd.testing.assert_frame_equal(RunRecord(resumed).eval(), RunRecord(reference).eval())
    pd.testing.assert_frame_equal(RunRecord(resumed).metrics(), RunRecord(reference).metrics())


# ---- spec, CLI, suite, workflow -------------------------------------------------------


@pytest.mark.parametrize("algo, arch, task, must_mention", [
    ("sl", "mlp", "gym:CartPole-v1", ["'sl'", "supervised", "gym:CartPole-v1"]),
    ("sac", "mlp", TASK, [TASK, "only algorithm 'sl'", "'sac'"]),
    ("dqn", "mlp", TASK, [TASK, "only algorithm 'sl'"]),
    ("sl", "diffusion", TASK, ["'diffusion'", "mlp, residual"]),
])
def test_invalid_combinations_are_rejected_with_a_reason(algo, arch, task, must_mention):
    with pytest.raises(InvalidCombinationError) as error:
        build_spec(algo, arch, "none", task, 0, 1000)
    for text in must_mention:
        assert text in str(error.value), (text, str(error.value))


@pytest.mark.parametrize("steps, overrides, must_mention", [
    (1050, {}, ["steps=1050", "task_steps=500", "1000"]),
    (1000, {"samples": 1798}, ["samples=1798", "1797"]),
    (1000, {"task_steps": 0}, ["task_steps=0"]),
    (1000, {"eval_every_steps": 100}, ["'eval_every_steps'", "task_steps"]),
])
def test_bad_supervised_settings_name_the_value_and_the_choices(steps, overrides, must_mention):
    with pytest.raises(SpecError) as error:
        build_spec("sl", "mlp", "none", TASK, 0, steps, overrides)
    for text in must_mention:
        assert text in str(error.value), (text, str(error.value))


def test_supervised_spec_builds_on_mlp_and_residual_and_is_no_environment():
    for arch in ("mlp", "residual"):
        spec = build_spec("sl", arch, "none", TASK, 0, 10000)
        assert spec.hyperparams["task_steps"] == 500 and "eval_every_steps" not in spec.hyperparams
        assert "residual_actor_blocks" not in spec.hyperparams
    assert is_supervised(TASK) and not is_supervised("gym:CartPole-v1")
    with pytest.raises(ValueError, match="algorithm 'sl'"):
        make_env(TASK)


def test_list_shows_the_algorithm_and_the_task_family():
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:1] == ["sl"] and "Lyle" in line for line in lines[lines.index("algorithms:"):])
    families = lines[lines.index("task families:"):]
    assert any(line.split()[:1] == ["sl"] and TASK in line for line in families)


def test_suite_normalises_chance_to_zero_and_perfect_memorisation_to_one():
    suite = load_suite("supervised")
    assert suite.algos == ("sl",) and list(suite.tasks) == [TASK]
    assert suite.steps % build_spec("sl", "mlp", "none", TASK, 0, suite.steps).hyperparams["task_steps"] == 0
    assert suite.normalise(TASK, 0.1) == pytest.approx(0.0) and suite.normalise(TASK, 1.0) == pytest.approx(1.0)
    assert "random: chance accuracy" in suite.tasks[TASK].source and "reference:" in suite.tasks[TASK].source


def test_smoke_workflow_runs_the_control_with_the_baseline_and_two_methods():
    runs, _ = expand(yaml.safe_load((ROOT / "workflow" / "config" / "smoke.yaml").read_text()))
    supervised = [run for run in runs if run.spec.algo == "sl"]
    assert {(run.spec.method, run.spec.seed) for run in supervised} == {
        (method, seed) for method in ("none", "layer_norm", "reset") for seed in (0, 1)}
    assert all(run.suite == "supervised" and run.spec.task == TASK for run in supervised)
    assert all(run.spec.steps == 800 and run.spec.hyperparams["task_steps"] == 100 for run in supervised)
