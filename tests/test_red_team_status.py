"""`status` lists every run whatever one bad file holds: a bad entry is shown as unreadable
with the reason, a stopped run shows the step it resumes from, every matrix's runs are
listed, and a run folder given itself is that run (not its subfolders as pending runs)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from plasticity_bench.cli import app
from plasticity_bench.results import LOCK, MANIFEST, PROGRESS, write_json
from plasticity_bench.spec import build_spec
from plasticity_bench.status import run_status, workflow_status
from plasticity_bench.training import train


def running(run_dir, step=1505, steps=3000):
    write_json(run_dir / MANIFEST, {"run_id": run_dir.name, "status": "running", "step": step, "spec": {"steps": steps}})


def test_one_bad_file_does_not_hide_the_other_runs(tmp_path):
    runs = tmp_path / "runs"
    running(runs / "good")
    running(runs / "progress-list")
    (runs / "progress-list" / PROGRESS).write_text("[1, 2]")
    running(runs / "progress-types")
    write_json(runs / "progress-types" / PROGRESS, {"step": "many", "steps_per_second": [3], "last_eval_return": "x"})
    (runs / "spec-list").mkdir()
    write_json(runs / "spec-list" / MANIFEST, {"run_id": "spec-list", "status": "running", "spec": [1], "step": 3})
    (runs / "manifest-dir" / MANIFEST).mkdir(parents=True)
    running(runs / "lock-dir")
    (runs / "lock-dir" / LOCK).mkdir()
    (tmp_path / "matrix-aaaa.json").write_text("{not json")
    (tmp_path / "matrix-bbbb.json").write_text(json.dumps({"runs": [{"run_id": "good"}, {"run_id": "planned-b"}]}))
    result = CliRunner().invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 0, result.output
    states = {s.run_id: s for s in workflow_status(tmp_path)}
    assert states["good"].state == "stopped"
    assert states["progress-list"].state == "stopped" and states["progress-types"].state == "stopped"
    assert states["spec-list"].state == "unreadable" and "spec" in states["spec-list"].note
    assert states["manifest-dir"].state == "unreadable" and "directory" in states["manifest-dir"].note
    assert states["lock-dir"].state == "unreadable" and "lock" in states["lock-dir"].note
    assert states["matrix-aaaa.json"].state == "unreadable" and "not valid JSON" in states["matrix-aaaa.json"].note
    assert states["planned-b"].state == "pending"
    for name in states:
        assert name in result.output


def test_every_matrix_of_the_folder_is_listed(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "matrix-1.json").write_text(json.dumps({"runs": [{"run_id": "a"}]}))
    (tmp_path / "matrix-2.json").write_text(json.dumps({"runs": [{"run_id": "b"}]}))
    assert sorted(s.run_id for s in workflow_status(tmp_path)) == ["a", "b"]


def test_a_stopped_run_shows_the_step_it_resumes_from(tmp_path):
    run_dir = tmp_path / "runs" / "killed"
    running(run_dir, step=1505)
    write_json(run_dir / PROGRESS, {"step": 2500, "steps": 3000, "steps_per_second": 40.0})
    status = run_status(run_dir)
    assert (status.state, status.step) == ("stopped", 1505)
    assert "resumes from step 1505" in status.note and "2500" in status.note


def test_a_run_folder_given_itself_is_that_run(tmp_path):
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 0, 300,
                      {"learning_starts": 100, "eval_every_steps": 300, "eval_episodes": 1,
                       "monitor_every_updates": 10, "hidden_sizes": [16]})
    train(spec, tmp_path / spec.run_id, progress=False, allow_short_budget=True)  # with its tensorboard/ subfolder
    assert (tmp_path / spec.run_id / "tensorboard").is_dir()
    statuses = workflow_status(tmp_path / spec.run_id)
    assert [(s.run_id, s.state) for s in statuses] == [(spec.run_id, "completed")]
