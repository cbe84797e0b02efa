"""`plasticity-bench compare`: the change in IQM between two real reports, with both CIs."""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from plasticity_bench.analysis import report
from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.cli_pipeline import compare_command

from test_stats import make_runs, write_suite

REPS = 200


def build(root, cells, final_window: float):
    matrix, runs = make_runs(root, cells)
    matrix = {**matrix, "config_hash": f"{len(cells):04d}{int(final_window * 100):04d}feed"}
    aggregate(matrix, runs, root / "aggregate", reps=REPS, seed=0, final_window=final_window)
    return report.build_report(root / "aggregate", root / "reports", matrix, version=root.name)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A: none and regrama on mlp. B: also redo, and the residual arch."""
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(root / "suites")))
        a = build(root / "A", [("none", "mlp"), ("regrama", "mlp")], 0.1)
        # the same final window: a different one makes every scope not comparable (test_red_team_compare.py)
        b = build(root / "B", [(m, arch) for m in ("none", "regrama", "redo") for arch in ("mlp", "residual")], 0.1)
    return a, b


def invoke(*args: str):
    app = typer.Typer()
    app.command("compare")(compare_command)  # the one command of this app: invoked without its name
    return CliRunner().invoke(app, list(args))


def test_compare_prints_and_writes_the_iqm_change_with_both_cis(reports, tmp_path):
    a, b = reports
    result = invoke(str(a), str(b), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "compare.csv")
    board_a, board_b = (pd.read_csv(r / "leaderboard.csv").set_index(["suite", "arch", "method"]) for r in (a, b))
    both = table[table["present"] == "both"]
    assert set(zip(both["arch"], both["method"])) == {("mlp", "none"), ("mlp", "regrama"), ("all", "none"),
                                                      ("all", "regrama")}
    for row in both.itertuples():
        key = (row.suite, row.arch, row.method)
        assert row.iqm_a == pytest.approx(board_a.loc[key, "iqm"]) and row.iqm_b == pytest.approx(board_b.loc[key, "iqm"])
        assert row.iqm_a_low == pytest.approx(board_a.loc[key, "iqm_low"])
        assert row.iqm_b_high == pytest.approx(board_b.loc[key, "iqm_high"])
        if row.suite == "all":  # B's overall IQM also covers its residual scopes: not A's overall
            assert not row.comparable and pd.isna(row.change)
            assert row.differs == "scopes in one report only: toy/sac/residual"
        else:
            assert row.comparable and row.change == pytest.approx(row.iqm_b - row.iqm_a)
    # What only B has is listed, per scope in the table and overall in the text.
    assert set(zip(table.loc[table["present"] == "B only", "arch"], table.loc[table["present"] == "B only", "method"])) \
        == {("mlp", "redo"), ("residual", "none"), ("residual", "regrama"), ("residual", "redo"), ("all", "redo")}
    assert not (table["present"] == "A only").any()
    markdown = (tmp_path / "out" / "compare.md").read_text()
    assert "Only in B (B): scopes toy/sac/residual." in markdown and "Only in B (B): methods redo." in markdown
    regrama = both[(both["arch"] == "mlp") & (both["method"] == "regrama")].iloc[0]
    assert "Not comparable (no change computed): scopes in one report only: toy/sac/residual." in markdown
    assert (f"| regrama | {regrama.iqm_a:.3f} [{regrama.iqm_a_low:.3f}, {regrama.iqm_a_high:.3f}] | "
            f"{regrama.iqm_b:.3f} [{regrama.iqm_b_low:.3f}, {regrama.iqm_b_high:.3f}] | {regrama.change:+.3f} |") in markdown
    assert markdown in result.output  # printed as written


def test_compare_refuses_a_folder_that_is_not_a_report(reports, tmp_path):
    a, _ = reports
    result = invoke(str(a), str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"{tmp_path} is not a report folder (no leaderboard.csv)" in result.stderr
    assert not (tmp_path / "out").exists()
