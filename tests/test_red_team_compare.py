"""`compare` shows a scope whose setups differ (tasks, budget, seeds, hyperparameters,
normalisation, aggregation) as not comparable, naming what differs, and subtracts nothing
there; the overall row only when every scope in it compares."""

from __future__ import annotations

from pathlib import Path

import pytest

from plasticity_bench.analysis import report
from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.compare import compare, comparison_markdown

from test_stats import make_runs, write_suite

ROOT = Path(__file__).resolve().parents[1]
REPS = 200


def test_published_reports_of_other_suites_seeds_and_overrides_are_not_compared():
    comparison = compare(ROOT / "reports/v0.1.0-02aac60b-d84ac15", ROOT / "reports/v0.1.0-f53af217-e1eb670")
    both = comparison.table[comparison.table["present"] == "both"]
    assert len(both) and not both["comparable"].any()
    assert both["change"].isna().all()
    overall = both[(both["suite"] == "all") & (both["method"] == "regrama")].iloc[0]
    assert "seeds" in overall.differs or "scopes" in overall.differs
    dqn = both[(both["suite"] == "classic_control") & (both["algo"] == "dqn")].iloc[0]
    assert "seeds [0, 1, 2] in A, [0, 1, 2, 3, 4] in B" in dqn.differs
    assert "tasks" not in dqn.differs  # the same tasks, listed in another order
    assert "aggregation" in dqn.differs
    markdown = comparison_markdown(comparison)
    assert "+0.294" not in markdown and "not comparable" in markdown


def build(root: Path, config: dict, final_window: float = 0.1) -> Path:
    matrix, runs = make_runs(root)
    matrix = {**matrix, "config": {**matrix["config"], **config}, "config_hash": f"{abs(hash(repr(config))):016x}"}
    aggregate(matrix, runs, root / "aggregate", reps=REPS, seed=0, final_window=final_window)
    return report.build_report(root / "aggregate", root / "reports", matrix, version=root.name)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare_scopes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(root / "suites")))
        base = {"steps": {"toy": 5000}, "overrides": {"sac": {"learning_starts": 1000}}}
        return {"a": build(root / "A", base), "same": build(root / "same", base),
                "budget": build(root / "budget", {**base, "steps": {"toy": 2000}}),
                "hp": build(root / "hp", {**base, "overrides": {"sac": {"learning_starts": 500}}}),
                "window": build(root / "window", base, final_window=0.5)}


def test_same_setups_compare(reports):
    table = compare(reports["a"], reports["same"]).table
    assert table["comparable"].all() and table["change"].tolist() == pytest.approx([0.0] * len(table))


@pytest.mark.parametrize("other, words", [("budget", "steps 5000 in A, 2000 in B"),
                                          ("hp", "hyperparameters: overrides {'learning_starts': 1000} in A, {'learning_starts': 500} in B"), ("window", "final_window 0.1 in A, 0.5 in B")])
def test_a_setup_that_differs_is_named_and_not_subtracted(reports, other, words):
    comparison = compare(reports["a"], reports[other])
    table = comparison.table
    assert not table["comparable"].any() and table["change"].isna().all() and table["cis_overlap"].isna().all()
    scope = table[table["suite"] != "all"]
    assert all(words in differs for differs in scope["differs"]), table["differs"].tolist()
    overall = table[table["suite"] == "all"]
    assert all(differs == "scopes not comparable: toy/sac/mlp" for differs in overall["differs"])
    assert "not comparable" in comparison_markdown(comparison)


@pytest.mark.parametrize("damage", ["manifest", "empty board", "board without columns"])
def test_a_damaged_report_is_a_one_line_error(reports, tmp_path, damage):
    import shutil

    import typer
    from typer.testing import CliRunner

    from plasticity_bench.cli_pipeline import compare_command

    broken = tmp_path / "broken"
    shutil.copytree(reports["a"], broken)
    if damage == "manifest":
        (broken / "manifest.json").write_text("{truncated")
    elif damage == "empty board":
        (broken / "leaderboard.csv").write_text("")
    else:
        (broken / "leaderboard.csv").write_text("a,b\n1,2\n")
    app = typer.Typer()
    app.command("compare")(compare_command)
    result = CliRunner().invoke(app, [str(reports["a"]), str(broken), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and str(broken) in result.stderr, result.stderr
