"""A full disk or exhausted memory while runs train is not the runs' verdict: they stay
resumable (status running, not failed), the process exits with the retryable code 75, and
the next start completes them. (A partly full disk used to record every seed as failed with
exit 3, which the workflow counts as done and never retries.)"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from plasticity_bench import results
from plasticity_bench.cli import RESOURCE_EXIT, app
from plasticity_bench.methods.base import Method
from plasticity_bench.results import ResourceExhaustedError
from plasticity_bench.training import train_seeds
from plasticity_bench.spec import build_spec

DISK = {"full": True}  # /dev/full answers every write with ENOSPC, as a full disk does
OVERRIDES = ["monitor_every_updates=50", "hidden_sizes=[16,16]", "eval_episodes=1", "learning_starts=100",
             "eval_every_steps=200", "replay_ratio=1", "checkpoint_every_steps=100"]


class WritesAtUpdate120(Method):
    """Writes a line of its own at update 120 (a user method's log file, say)."""

    name = "writes"

    def after_update(self, roles, update_step, sample_batch):
        if update_step == 120:
            with open("/dev/full" if DISK["full"] else "/dev/null", "w") as handle:
                handle.write("update 120\n")
                handle.flush()
        return {}


def specs(seeds=(0, 1)):
    return [build_spec("dqn", "mlp", f"{__name__}:WritesAtUpdate120", "gym:CartPole-v1", seed, 300, OVERRIDES)
            for seed in seeds]


def test_a_full_disk_leaves_the_runs_resumable_and_the_rerun_completes_them(tmp_path):
    group = specs()
    dirs = [tmp_path / spec.run_id for spec in group]
    DISK["full"] = True
    with pytest.raises(ResourceExhaustedError, match="No space left on device"):
        train_seeds(group, dirs, progress=False, allow_short_budget=True, tensorboard=False)
    for run_dir in dirs:
        manifest = results.read_manifest(run_dir)
        assert manifest["status"] == "running" and not manifest.get("error")
    DISK["full"] = False
    manifests = train_seeds(group, dirs, progress=False, allow_short_budget=True, tensorboard=False)
    assert [manifest["status"] for manifest in manifests] == ["completed", "completed"]
    assert all(manifest["resumes"] == 1 for manifest in manifests)


def test_the_cli_exits_with_the_retryable_code(tmp_path):
    DISK["full"] = True
    try:
        result = CliRunner().invoke(app, ["train", "--algo", "dqn", "--method", f"{__name__}:WritesAtUpdate120",
                                          "--task", "gym:CartPole-v1", "--seeds", "0,1", "--steps", "300",
                                          "--runs-dir", str(tmp_path), "--no-progress", "--no-tensorboard",
                                          "--allow-short-budget", *[arg for o in OVERRIDES for arg in ("--set", o)]])
    finally:
        DISK["full"] = False
    assert result.exit_code == RESOURCE_EXIT == 75, result.output
    assert "No space left on device" in result.output and "resume" in result.output
    for folder in tmp_path.iterdir():
        assert json.loads((folder / results.MANIFEST).read_text())["status"] == "running"
