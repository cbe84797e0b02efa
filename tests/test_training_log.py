"""Training-time logging on tiny real runs: CleanRL's tags with the right values in
train.parquet and the TensorBoard event files, eval and metric rows in the event files,
rows unique after an interrupted run resumes, and --track without wandb refused."""

import os
import subprocess
import time
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from plasticity_bench import results
from plasticity_bench.budget import updates_after
from plasticity_bench.methods.base import Method
from plasticity_bench.spec import build_spec
from plasticity_bench.training.entry import make_trainer, run_to_end
from plasticity_bench.training import train
from plasticity_bench.training_log import TrainingLog, metric_tag

CPU = torch.device("cpu")
# 50 updates, a health check (so a loss point) every 10, evaluations at 300 and 600.
DQN = {"learning_starts": 100, "eval_every_steps": 300, "eval_episodes": 1, "monitor_every_updates": 10, "hidden_sizes": [16],
       "checkpoint_every_steps": 200}
SAC = {"learning_starts": 100, "eval_every_steps": 200, "eval_episodes": 1, "monitor_every_updates": 50, "hidden_sizes": [16, 16]}


def event_scalars(run_dir: Path) -> pd.DataFrame:
    """Every scalar the event files show (after TensorBoard's purge of resumed runs)."""
    accumulator = EventAccumulator(str(run_dir / results.TENSORBOARD), size_guidance={"scalars": 0})
    accumulator.Reload()
    rows = [{"step": event.step, "name": tag, "value": event.value}
            for tag in accumulator.Tags()["scalars"] for event in accumulator.Scalars(tag)]
    return pd.DataFrame(rows).sort_values(["name", "step"]).reset_index(drop=True)


def recorded_train_run(tmp_path, spec, monkeypatch) -> tuple[pd.DataFrame, list[dict[str, float]]]:
    """Train ``spec`` with its agent's update statistics also read out per update (on CPU, for
    the test only), and return train.parquet with them. The agent class's update is wrapped:
    the update that trains is the seed stack's agent's (training/stack.py), of the same class."""
    trainer = make_trainer(spec, tmp_path, 1, CPU, False)
    per_update, update = [], type(trainer.agent).update

    def update_and_read(agent, batch):
        stats = update(agent, batch)
        per_update.append({name: float(value) for name, value in stats.items()})
        return stats

    monkeypatch.setattr(type(trainer.agent), "update", update_and_read)
    assert run_to_end(trainer)["status"] == "completed"
    return pd.read_parquet(tmp_path / results.TRAIN), per_update


def test_dqn_logs_cleanrl_tags_with_the_means_of_its_updates(tmp_path, monkeypatch):
    # Other tests in this worker may have imported wandb (--track): forget it for this run.
    for name in [name for name in sys.modules if name == "wandb" or name.startswith("wandb.")]:
        monkeypatch.delitem(sys.modules, name)
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 0, 600, DQN)
    logged, per_update = recorded_train_run(tmp_path, spec, monkeypatch)
    assert list(logged.columns) == results.TRAIN_COLUMNS
    assert set(logged["name"]) == {"charts/episodic_return", "charts/episodic_length", "charts/SPS",
                                   "losses/q_loss", "losses/td_loss", "losses/q_values"}
    assert not logged.duplicated(["step", "name"]).any()

    # Each loss point is the mean over the updates since the previous point.
    losses = logged[logged["name"] == "losses/td_loss"]
    done = 0
    for step in losses["step"]:
        upto = updates_after(spec.hyperparams, step)
        for name in ("q_loss", "td_loss", "q_values"):
            expected = np.mean([stats[name] for stats in per_update[done:upto]])
            value = logged[(logged["step"] == step) & (logged["name"] == f"losses/{name}")]["value"].item()
            assert value == pytest.approx(expected, rel=1e-9), (name, step)
        done = upto
    assert done == len(per_update) == 50 and len(losses) == 5  # every 10 updates
    # Without a method's loss term the role's loss is CleanRL's td_loss.
    both = logged[logged["name"].isin(["losses/q_loss", "losses/td_loss"])].pivot(index="step", columns="name")
    assert np.allclose(both.iloc[:, 0], both.iloc[:, 1])

    # CartPole pays 1 per step: an episode's return is its length, and episodes tile the steps.
    returns = logged[logged["name"] == "charts/episodic_return"]
    lengths = logged[logged["name"] == "charts/episodic_length"]
    assert returns["value"].tolist() == lengths["value"].tolist()
    assert returns["step"].tolist() == np.cumsum(lengths["value"]).astype(int).tolist()
    assert (logged.loc[logged["name"] == "charts/SPS", "value"] > 0).all()
    assert "wandb" not in sys.modules  # never imported without --track


def test_event_files_show_train_eval_and_metric_rows_exactly(tmp_path):
    spec = build_spec("dqn", "mlp", "redo", "gym:CartPole-v1", 0, 600, {**DQN, "redo.period": 20})
    train(spec, tmp_path, device=CPU, progress=False)
    shown = event_scalars(tmp_path)
    logged = pd.read_parquet(tmp_path / results.TRAIN)
    evals = pd.read_parquet(tmp_path / results.EVAL)
    metrics = pd.read_parquet(tmp_path / results.METRICS)
    expected = pd.concat([
        logged,
        pd.DataFrame({"step": evals["step"], "name": "charts/eval_return", "value": evals["return"]}),
        pd.DataFrame({"step": metrics["step"], "name": [metric_tag(row) for row in metrics.to_dict("records")],
                      "value": metrics["value"]}),
    ]).sort_values(["name", "step"]).reset_index(drop=True)
    assert any(name.startswith("metrics/reset_neurons/q/") for name in shown["name"])  # ReDo's resets
    assert any(name.startswith("metrics/dormant_ratio@0.1/q") for name in shown["name"])  # the monitor
    pd.testing.assert_frame_equal(shown[["step", "name"]], expected[["step", "name"]], check_dtype=False)
    assert np.allclose(shown["value"], expected["value"].astype(np.float32), rtol=1e-6, equal_nan=True)


def test_sac_logs_critics_actor_alpha_and_entropy(tmp_path, monkeypatch):
    spec = build_spec("sac", "mlp", "none", "gym:Pendulum-v1", 0, 400, SAC)
    logged, per_update = recorded_train_run(tmp_path, spec, monkeypatch)
    wide = logged.pivot(index="step", columns="name", values="value")
    for tag in ("critic_loss", "qf1_loss", "qf2_loss", "qf_loss", "qf1_values", "qf2_values", "actor_loss",
                "alpha", "alpha_loss", "entropy"):
        assert f"losses/{tag}" in wide, tag
    points = wide.dropna(subset=["losses/qf1_loss"])
    assert np.allclose(points["losses/qf_loss"], (points["losses/qf1_loss"] + points["losses/qf2_loss"]) / 2)
    assert np.allclose(points["losses/critic_loss"], points["losses/qf1_loss"] + points["losses/qf2_loss"])
    # alpha: every update's value, from exp(log alpha) = 1 down as autotune lowers it.
    assert np.mean([stats["alpha"] for stats in per_update[:50]]) == pytest.approx(points["losses/alpha"].iloc[0])
    assert 0 < points["losses/alpha"].iloc[-1] < points["losses/alpha"].iloc[0] < 1
    # The actor, and with it alpha_loss and entropy, is updated every second update.
    assert sum("actor_loss" in stats for stats in per_update) == len(per_update) // 2
    assert wide["charts/episodic_length"].dropna().tolist() == [200.0, 200.0]  # Pendulum's time limit


def test_supervised_run_logs_its_classifier_loss(tmp_path):
    spec = build_spec("sl", "mlp", "none", "sl:digits-random-labels", 0, 200,
                      {"samples": 64, "hidden_sizes": [32], "task_steps": 100, "monitor_every_updates": 50})
    train(spec, tmp_path, device=CPU, progress=False)
    logged = pd.read_parquet(tmp_path / results.TRAIN)
    assert set(logged["name"]) == {"losses/classifier_loss", "charts/SPS"}
    assert logged.loc[logged["name"] == "losses/classifier_loss", "step"].tolist() == [50, 100, 150, 200]
    assert "charts/eval_return" in set(event_scalars(tmp_path)["name"])  # the task accuracies


class InterruptOnce(Method):
    """Ctrl-C at update 35 of the first attempt: after the checkpoint at env step >= 200."""

    name = "interrupt_once"
    armed = False

    def after_update(self, roles, update_step, sample_batch):
        if InterruptOnce.armed and update_step == 35:
            InterruptOnce.armed = False
            raise KeyboardInterrupt
        return {}


def test_interrupted_run_resumes_without_duplicated_or_lost_points(tmp_path):
    spec = build_spec("dqn", "mlp", f"{__name__}:InterruptOnce", "gym:CartPole-v1", 0, 600, DQN)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train(spec, reference, device=CPU, progress=False)
    InterruptOnce.armed = True
    with pytest.raises(KeyboardInterrupt):
        train(spec, resumed, device=CPU, progress=False)
    checkpoint_step = results.load_checkpoint(resumed / results.CHECKPOINT)["counters"]["env_steps"]
    interrupted_rows = pd.read_parquet(resumed / results.TRAIN)
    assert interrupted_rows["step"].max() >= checkpoint_step >= 200
    assert train(spec, resumed, device=CPU, progress=False)["resumes"] == 1
    assert len(list((resumed / results.TENSORBOARD).iterdir())) == 2  # one event file per attempt

    # train.parquet: the reference's rows, none twice; steps/s is a wall-clock rate.
    def deterministic(frame):
        return frame[frame["name"] != "charts/SPS"].reset_index(drop=True)

    ours, theirs = pd.read_parquet(resumed / results.TRAIN), pd.read_parquet(reference / results.TRAIN)
    assert not ours.duplicated(["step", "name"]).any()
    pd.testing.assert_frame_equal(deterministic(ours), deterministic(theirs))
    pd.testing.assert_frame_equal(ours[["step", "name"]], theirs[["step", "name"]])
    # The event files: what the first attempt wrote after its checkpoint is hidden, so every
    # tag shows the reference's points once.
    shown, expected = event_scalars(resumed), event_scalars(reference)
    pd.testing.assert_frame_equal(shown[["step", "name"]], expected[["step", "name"]])
    pd.testing.assert_frame_equal(deterministic(shown), deterministic(expected))


def test_restart_deletes_the_event_files(tmp_path):
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 0, 600, DQN)
    train(spec, tmp_path, device=CPU, progress=False)
    train(spec, tmp_path, device=CPU, progress=False, restart=True)
    assert len(list((tmp_path / results.TENSORBOARD).iterdir())) == 1


def test_no_tensorboard_still_writes_train_parquet(cli, tmp_path):
    out = tmp_path / "run"
    cli("train", "--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "600", *[f"--set={k}={v}" for k, v in
        DQN.items()], "--device", "cpu", "--no-progress", "--no-tensorboard", "--out", str(out), check=True)
    assert not (out / results.TENSORBOARD).exists()
    assert "losses/td_loss" in set(pd.read_parquet(out / results.TRAIN)["name"])


def test_track_without_wandb_is_a_clear_error_before_training(tmp_path):
    """Whether or not wandb is installed here: a package named wandb that cannot be imported
    (as on a machine without the extra) comes first on the path of the CLI's process."""
    shadow = tmp_path / "no_wandb" / "wandb"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'wandb'\")\n")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    result = subprocess.run([sys.executable, "-m", "plasticity_bench", "train", "--algo", "dqn", "--task",
                             "gym:CartPole-v1", "--steps", "600", "--set=learning_starts=100", "--set=monitor_every_updates=10",
                             "--set=eval_every_steps=300", "--track", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "--track" in line and "wandb is not installed" in line and "plasticity-bench[wandb]" in line
    assert not out.exists()


def test_track_logs_the_same_points_to_an_offline_wandb_run(cli, tmp_path, monkeypatch):
    """A real W&B run in offline mode (no network): its record file holds the CleanRL tags,
    the evaluation returns and the monitor's metrics (read as the keys in the run's records)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    cli("train", "--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "600", *[f"--set={k}={v}" for k, v in
        DQN.items()], "--device", "cpu", "--no-progress", "--track", "--out", str(out), check=True)
    (records,) = (out / "wandb").glob("offline-run-*/*.wandb")
    data = records.read_bytes()
    for tag in ("charts/episodic_return", "charts/SPS", "losses/td_loss", "losses/q_values", "charts/eval_return",
                "metrics/dormant_ratio@0.1/q"):
        assert tag.encode() in data, tag


def test_a_new_attempt_opens_its_event_file_in_a_later_second(tmp_path):
    """TensorBoard reads event files in name order, whose first field is the second the file
    was opened: an attempt opened within the second of an earlier one waits for the next."""
    from plasticity_bench.training_log import start_after_earlier_attempts

    folder = tmp_path / "tensorboard"
    folder.mkdir()
    start_after_earlier_attempts(folder)  # no earlier attempt: no wait
    now = int(time.time())
    (folder / f"events.out.tfevents.{now:010d}.host.123.9").write_bytes(b"")
    start_after_earlier_attempts(folder)
    assert int(time.time()) > now
