"""`--restart` with several seeds restarts only the seeds whose records are damaged; the
seeds that had completed keep their records (they were retrained from scratch before)."""

from __future__ import annotations

import json

import pytest

from plasticity_bench import results
from plasticity_bench.results import CorruptRecordError
from plasticity_bench.training import train_seeds
from plasticity_bench.spec import build_spec

OVERRIDES = ["monitor_every_updates=50", "hidden_sizes=[16,16]", "eval_episodes=1", "learning_starts=100",
             "eval_every_steps=200", "replay_ratio=1", "checkpoint_every_steps=100"]


def test_restart_restarts_only_the_damaged_seed(tmp_path):
    group = [build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed, 300, OVERRIDES) for seed in (0, 1, 2)]
    dirs = [tmp_path / spec.run_id for spec in group]
    train_seeds(group, dirs, progress=False, allow_short_budget=True, tensorboard=False)
    # seed 2 as a killed run whose checkpoint was then damaged on disk
    manifest = json.loads((dirs[2] / results.MANIFEST).read_text())
    (dirs[2] / results.MANIFEST).write_text(json.dumps({**manifest, "status": "running"}))
    checkpoint = dirs[2] / results.CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[:-100])
    kept = {path: path.read_bytes() for run_dir in dirs[:2] for path in sorted(run_dir.iterdir()) if path.is_file()}
    with pytest.raises(CorruptRecordError):
        train_seeds(group, dirs, progress=False, allow_short_budget=True, tensorboard=False)
    manifests = train_seeds(group, dirs, progress=False, allow_short_budget=True, tensorboard=False, restart=True)
    assert [m["status"] for m in manifests] == ["completed"] * 3
    assert {path: path.read_bytes() for path in kept} == kept  # the completed seeds' records untouched
    assert manifests[2]["resumes"] == 0 and manifests[2]["step"] == 300  # seed 2 trained again from scratch
