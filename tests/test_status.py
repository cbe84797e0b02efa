"""`plasticity-bench status` and the progress a training run leaves while it trains."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from plasticity_bench.cli import app
from plasticity_bench.results import PROGRESS, read_json, run_lock, write_json
from plasticity_bench.spec import build_spec
from plasticity_bench.status import run_status, status_table, time_left, workflow_status
from plasticity_bench.training import train

TINY_DQN = {"learning_starts": 100, "eval_every_steps": 200, "eval_episodes": 1, "monitor_every_updates": 25,
            "hidden_sizes": [16, 16]}


def test_a_workflow_job_logs_each_evaluation_and_leaves_its_progress(tmp_path, capsys):
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 0, 600, TINY_DQN)
    train(spec, tmp_path / spec.run_id, progress=False, tensorboard=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(spec.run_id)]
    assert [line.split(": step ")[1].split(" ")[0] for line in lines] == ["200/600", "400/600", "600/600"]
    assert "eval return" in lines[0] and "steps/s" in lines[0] and lines[-1].endswith("0s left")
    progress = read_json(tmp_path / spec.run_id / PROGRESS)
    assert progress["step"] == 600 and progress["steps"] == 600 and progress["eval_step"] == 600
    assert progress["updates"] == 50 and progress["steps_per_second"] > 0  # (600 - 100) x 0.1
    status = run_status(tmp_path / spec.run_id)
    assert (status.state, status.step, status.steps) == ("completed", 600, 600)
    assert status.last_return == pytest.approx(progress["last_eval_return"])


def write_running(run_dir, step=300, steps=1000, rate=50.0):
    write_json(run_dir / "manifest.json", {"run_id": run_dir.name, "status": "running", "step": 0,
                                           "spec": {"steps": steps}})
    write_json(run_dir / PROGRESS, {"step": step, "steps": steps, "steps_per_second": rate,
                                    "last_eval_return": 12.5, "eval_step": 200})


def test_a_running_run_is_told_from_a_stopped_one_by_its_lock(tmp_path):
    run_dir = tmp_path / "runs" / "sac-a"
    write_running(run_dir)
    with run_lock(run_dir):  # a trainer holds the folder
        status = run_status(run_dir)
        assert (status.state, status.step, status.left()) == ("running", 300, "14s")
    assert run_status(run_dir).state == "stopped"  # killed: its job resumes it when run again


def test_the_results_folder_lists_pending_failed_and_counts(tmp_path):
    runs = tmp_path / "runs"
    write_running(runs / "a")
    write_json(runs / "b" / "manifest.json", {"run_id": "b", "status": "failed", "step": 40,
                                               "spec": {"steps": 100}, "error": "non-finite loss at step 40"})
    (tmp_path / "matrix-0123.json").write_text(json.dumps({"runs": [{"run_id": r} for r in ("a", "b", "c")]}))
    statuses = workflow_status(tmp_path)
    assert [(s.run_id, s.state) for s in statuses] == [("a", "stopped"), ("b", "failed"), ("c", "pending")]
    table = status_table(statuses)
    assert "non-finite loss at step 40" in table and table.splitlines()[-1] == "1 stopped, 1 failed, 1 pending"
    result = CliRunner().invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 0 and "c" in result.output and "1 pending" in result.output
    missing = CliRunner().invoke(app, ["status", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "is not a folder" in missing.output


@pytest.mark.parametrize("left, rate, text", [(0, 10.0, "0s"), (45, 1.0, "45s"), (190, 1.0, "3m10s"),
                                              (3720, 1.0, "1h02m"), (10, 0.0, "?")])
def test_time_left_reads_at_a_glance(left, rate, text):
    assert time_left(left, rate) == text


def test_version_flag():
    from plasticity_bench import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"plasticity-bench {__version__}"
