"""Records say which seeds trained together: a seed's numbers depend in the last bits on
how many seeds share its stack (docs/robustness.md), so each manifest lists the stacks its
run trained in, and a report flags a configuration whose runs trained in different groupings."""

from __future__ import annotations

import json
import shutil

from plasticity_bench import results
from plasticity_bench.analysis import report
from plasticity_bench.training import train_seeds
from plasticity_bench.spec import build_spec
from plasticity_bench.training import train

from test_report import aggregated  # noqa: F401  (fixture)

OVERRIDES = ["monitor_every_updates=50", "hidden_sizes=[16,16]", "eval_episodes=1", "learning_starts=100",
             "eval_every_steps=200", "replay_ratio=1", "checkpoint_every_steps=100"]


def specs(seeds):
    return [build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed, 200, OVERRIDES) for seed in seeds]


def test_manifests_record_the_stacks_a_run_trained_in(tmp_path):
    group = specs((0, 1, 2))
    manifests = train_seeds(group, [tmp_path / "together" / spec.run_id for spec in group], progress=False,
                            allow_short_budget=True, tensorboard=False)
    for manifest in manifests:
        assert manifest["trained_with"] == [{"from_step": 0, "from_update": 0, "stack": [0, 1, 2]}]
    alone = train(group[0], tmp_path / "alone" / group[0].run_id, progress=False, allow_short_budget=True,
                  tensorboard=False)
    assert alone["trained_with"] == [{"from_step": 0, "from_update": 0, "stack": [0]}]
    # the record survives a resume from the checkpoint (the history up to it is kept)
    state = results.load_checkpoint(tmp_path / "alone" / group[0].run_id / results.CHECKPOINT)
    assert state["counters"]["trained_with"] == alone["trained_with"]


def test_a_report_flags_a_configuration_trained_in_different_groupings(aggregated, tmp_path):  # noqa: F811
    aggregate_dir, matrix, runs = aggregated
    copied = tmp_path / "runs"
    shutil.copytree(runs, copied)
    folders = sorted(p for p in copied.iterdir() if p.is_dir() and "regrama" in p.name and "TaskA" in p.name)
    for index, folder in enumerate(folders):  # seed 0 alone, the others as a stack of two
        manifest = json.loads((folder / results.MANIFEST).read_text())
        stack = [manifest["spec"]["seed"]] if index == 0 else [1, 2]
        manifest["trained_with"] = [{"from_step": 0, "from_update": 0, "stack": stack}]
        (folder / results.MANIFEST).write_text(json.dumps(manifest))
    target = report.build_report(aggregate_dir, tmp_path / "reports", matrix, runs_dir=copied)
    text = (target / "leaderboard.md").read_text()
    assert "trained in different seed groupings" in text and folders[0].name in text
    groupings = json.loads((target / "manifest.json").read_text())["seed_groupings"]
    assert len(groupings) == 1
    (cell, by_size), = groupings.items()
    assert "regrama" in cell and "TaskA" in cell
    assert by_size == {"1": [folders[0].name], "2": [folders[1].name, folders[2].name]}
