"""The leaderboard says only what its data supports: rank groups, unlearned scopes, and rows a
reader can recompute from the published scores.csv with rliable alone (real run folders, real rliable)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics as rly_metrics

from plasticity_bench.analysis import report
from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.latex import leaderboard_tex
from plasticity_bench.analysis.leaderboard import leaderboard, leaderboard_markdown, rank_groups
from plasticity_bench.analysis.vocabulary import OVERALL, SCOPE
from plasticity_bench.results import EVAL, write_parquet

from test_stats import EVAL_STEPS, SEEDS, SUITE, TASKS, make_runs, run_id, toy_suite  # noqa: F401 (autouse)

REPS = 200


def recomputed_iqm(scores: pd.DataFrame, method: str, column: str, reps: int, seed: int, confidence: float):
    """A reader's recomputation of one row's IQM and CI: numpy, pandas and rliable only."""
    rows = scores[scores["method"] == method]
    tasks = sorted(rows["task"].unique())
    matrix = np.stack([rows[rows["task"] == task].sort_values("seed")[column].to_numpy(float) for task in tasks],
                      axis=1)  # (seeds, tasks)
    np.random.seed(seed)  # rliable 1.2.0 ignores random_state: it draws from numpy's global RNG
    point, interval = rly.get_interval_estimates(
        {method: matrix}, lambda x: np.array([rly_metrics.aggregate_iqm(x)]), reps=reps,
        confidence_interval_size=confidence)
    return point[method][0], interval[method][0, 0], interval[method][1, 0]


def test_every_leaderboard_row_is_recomputed_from_scores_csv_with_rliable(tmp_path):
    cells = [(m, a) for m in ("none", "regrama") for a in ("mlp", "residual")]
    matrix, runs = make_runs(tmp_path, cells)
    aggregate(matrix, runs, tmp_path / "aggregate", reps=REPS, seed=7)
    target = report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix)

    scores = pd.read_csv(target / "scores.csv")
    board = pd.read_csv(target / "leaderboard.csv")
    settings = json.loads((target / "manifest.json").read_text())["aggregate"]
    assert {"run_id", "suite", "algo", "arch", "method", "task", "seed", "final_return", "score",
            "auc"} <= set(scores.columns)
    assert len(scores) == len(matrix["runs"])
    overall_scores = scores[scores["in_overall"]].assign(
        task=lambda f: f["suite"] + "/" + f["algo"] + "/" + f["arch"] + "/" + f["task"])
    assert len(board) == 3 * 2  # two scopes and the overall scope, two methods each
    for row in board.itertuples():
        scope = (row.suite, row.algo, row.arch)
        rows = overall_scores if scope == (OVERALL,) * 3 else scores[(scores[SCOPE] == scope).all(axis=1)]
        for column, prefix in (("score", "iqm"), ("auc", "auc_iqm")):
            expected = recomputed_iqm(rows, row.method, column, settings["reps"], settings["seed"],
                                      settings["confidence"])
            got = (getattr(row, prefix), getattr(row, f"{prefix}_low"), getattr(row, f"{prefix}_high"))
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (scope, row.method, column)
        assert row.run_score_std == pytest.approx(rows[rows["method"] == row.method]["score"].std(ddof=1))
        assert row.seeds == len(SEEDS)
    notes = (target / "leaderboard.md").read_text()
    assert "np.random.seed(7)" in notes and "reps=200" in notes  # how to reproduce, with this report's settings


def flatten_to_random(runs, method: str, task: str, seed: int, arch: str) -> None:
    """Overwrite a run's evaluations with its task's random return: nothing learned."""
    random, _ = TASKS[task]
    write_parquet(runs / run_id(method, task, seed, arch) / EVAL,
                  pd.DataFrame({"step": list(EVAL_STEPS), "return": random, "episodes": 5}))


def test_unlearned_scope_is_flagged_and_left_out_of_the_overall_scope(tmp_path):
    """Every run of the residual scope at random level: its rows stay, flagged, and the overall
    scope is the mlp scope's runs alone (the same numbers as that scope)."""
    cells = [(m, a) for m in ("none", "regrama") for a in ("mlp", "residual")]
    matrix, runs = make_runs(tmp_path, cells)
    for run in matrix["runs"]:
        if run["arch"] == "residual":
            flatten_to_random(runs, run["method"], run["task"], run["seed"], run["arch"])
    result = aggregate(matrix, runs, tmp_path / "aggregate", reps=REPS, seed=0)

    assert result.summary["unlearned_scopes"] == [
        {"suite": SUITE, "algo": "sac", "arch": "residual", "highest_iqm_high": 0.0}]
    assert result.summary["overall"]["cells"] == len(TASKS)  # the mlp cells only
    in_overall = result.scores.set_index("run_id")["in_overall"]
    assert not in_overall[result.scores["arch"].eq("residual").to_numpy()].any()
    assert in_overall[result.scores["arch"].eq("mlp").to_numpy()].all()
    intervals = result.interval_estimates
    overall = intervals[intervals["suite"] == OVERALL].drop(columns=SCOPE).reset_index(drop=True)
    mlp = intervals[intervals["arch"] == "mlp"].drop(columns=SCOPE).reset_index(drop=True)
    pd.testing.assert_frame_equal(overall, mlp)  # same matrix: the residual runs are not pooled in

    board = leaderboard(result)
    assert board.loc[board["arch"] == "residual", "scope_unlearned"].all()
    assert not board.loc[board["arch"] != "residual", "scope_unlearned"].any()
    markdown = leaderboard_markdown(board, "t", [])
    residual_section = markdown.split("## toy / sac / residual")[1]
    assert "Unlearned at this budget" in residual_section and "left out of the overall scope" in residual_section
    assert "Unlearned at this budget" not in markdown.split("## toy / sac / residual")[0]
    assert "not learned at this budget" in leaderboard_tex(board)


def ranked(intervals: dict[str, tuple[float, float, float]]) -> dict[str, int]:
    rows = pd.DataFrame([{"method": m, "iqm": i, "iqm_low": lo, "iqm_high": hi}
                         for m, (i, lo, hi) in intervals.items()])
    return dict(zip(rows["method"], rank_groups(rows).astype(int)))


def test_overlapping_intervals_share_a_rank_group_and_disjoint_ones_do_not():
    assert ranked({"a": (0.8, 0.7, 0.9), "b": (0.75, 0.6, 0.85), "c": (0.2, 0.1, 0.3)}) == {"a": 1, "b": 1, "c": 2}
    assert ranked({"a": (0.8, 0.7, 0.9), "b": (0.5, 0.4, 0.6), "c": (0.2, 0.1, 0.3)}) == {"a": 1, "b": 2, "c": 3}
    # Overlap with the group's top method, not with any member: c overlaps b only.
    assert ranked({"a": (0.8, 0.7, 0.9), "b": (0.65, 0.5, 0.75), "c": (0.45, 0.4, 0.55)}) == {"a": 1, "b": 1, "c": 2}
    # The top is the highest point IQM even when another interval reaches higher.
    assert ranked({"a": (0.6, 0.55, 0.65), "b": (0.5, 0.1, 0.9), "c": (0.3, 0.25, 0.35)}) == {"a": 1, "b": 1, "c": 2}


def board_of(tmp_path, methods: tuple[str, ...]) -> pd.DataFrame:
    matrix, runs = make_runs(tmp_path, [(m, "mlp") for m in methods])
    return leaderboard(aggregate(matrix, runs, reps=REPS, seed=0))


def test_bold_winner_only_when_alone_in_the_first_rank_group(tmp_path):
    # regrama's runs score 0.75-0.89 and none's 0.50-0.64: disjoint CIs, regrama alone in group 1.
    separated = board_of(tmp_path / "separated", ("none", "regrama"))
    scope = separated[separated["suite"] == SUITE].set_index("method")
    assert scope["rank_group"].to_dict() == {"regrama": 1, "none": 2}
    assert leaderboard_tex(separated).count("\\textbf{") == 2  # regrama, in its scope and overall
    # redo's runs (0.65-0.79) overlap regrama's: they share group 1 and nobody is in bold.
    tied = board_of(tmp_path / "tied", ("none", "redo", "regrama"))
    scope = tied[tied["suite"] == SUITE].set_index("method")
    assert scope["rank_group"].to_dict() == {"regrama": 1, "redo": 1, "none": 2}
    assert "\\textbf{" not in leaderboard_tex(tied)
    markdown = leaderboard_markdown(tied, "t", [])
    assert "No single best method: regrama, redo share rank group 1" in markdown
    assert "| 1 | regrama |" in markdown and "| 1 | redo |" in markdown and "| 2 | none |" in markdown


def test_fewer_than_five_seeds_are_stated_and_warned_about(tmp_path):
    markdown = leaderboard_markdown(board_of(tmp_path, ("none", "regrama")), "t", [])
    assert markdown.count(f"{len(SEEDS)} seed(s) per task.") == 2  # the scope and the overall scope
    assert markdown.count("WARNING: fewer than 5 seeds per task") == 2
