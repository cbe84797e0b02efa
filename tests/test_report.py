"""Versioned reports built from a real aggregate of real run folders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import plasticity_bench
from plasticity_bench import provenance
from plasticity_bench.analysis import curve_plots, leaderboard, report
from plasticity_bench.analysis import page as page_module
from plasticity_bench.analysis.style import PNG_DPI, PlotError, scope_slug
from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.vocabulary import OVERALL, SUMMARY
from plasticity_bench.results import write_json
from rliable import metrics as rly_metrics

from test_stats import (METHODS, SEEDS, TASKS, USER_METHOD, WIDE_CELLS, cli_app, expected_score, make_runs,
                        run_id, write_suite)

REPS = 200


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    """(aggregate dir, matrix, runs dir) for 2 methods x 2 tasks x 3 seeds, one seed missing."""
    root = tmp_path_factory.mktemp("report_inputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(root / "suites")))
        matrix, runs = make_runs(root)
        shutil.rmtree(runs / run_id("none", "gym:TaskB-v0", 2))
        aggregate(matrix, runs, root / "aggregate", reps=REPS, seed=0, allow_missing=True)
    return root / "aggregate", matrix, runs


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_report_contents(aggregated, tmp_path, monkeypatch):
    aggregate_dir, matrix, _ = aggregated
    monkeypatch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(tmp_path / "suites")))  # the page's task table
    target = report.build_report(aggregate_dir, tmp_path / "reports", matrix)
    # The workflow's name for the same report: package, config hash, code commit.
    assert target == tmp_path / "reports" / provenance.default_version(matrix["config_hash"], tmp_path / "reports")
    assert target.name.startswith(f"v{plasticity_bench.__version__}-{matrix['config_hash'][:8]}-")

    everything = pd.read_csv(target / "leaderboard.csv")
    assert list(everything.columns) == leaderboard.LEADERBOARD_COLUMNS
    # The overall scope first, then toy/sac/mlp, each with both methods.
    assert list(everything["suite"]) == [OVERALL] * len(METHODS) + ["toy"] * len(METHODS)
    board = everything[everything["suite"] == "toy"]
    assert list(board["iqm"]) == sorted(board["iqm"], reverse=True)  # ranked by IQM
    assert list(board["method"]) == ["regrama", "none"]
    for statistic in ("iqm", "mean", "median", "optimality_gap"):
        assert (board[f"{statistic}_low"] <= board[statistic] + 1e-12).all()
        assert (board[statistic] <= board[f"{statistic}_high"] + 1e-12).all()
    rows = board.set_index("method")
    assert np.isnan(rows.loc["none", "prob_improvement_over_none"])
    assert 0 <= rows.loc["regrama", "prob_improvement_over_none_low"] <= rows.loc["regrama", "prob_improvement_over_none"]
    # none lost TaskB seed 2, so TaskA seed 2 was left out too: 2 seeds x 2 tasks.
    assert rows.loc["none", "runs"] == 4 and rows.loc["regrama", "runs"] == 6
    assert (board["tasks"] == 2).all()
    intervals = pd.read_csv(aggregate_dir / "interval_estimates.csv")
    iqm = intervals[(intervals["statistic"] == "iqm") & (intervals["method"] == "regrama")]["estimate"].iloc[0]
    assert rows.loc["regrama", "iqm"] == pytest.approx(iqm)

    # Best baseline: each of the two built-ins is the other's.
    assert rows.loc["regrama", "best_baseline"] == "none" and rows.loc["none", "best_baseline"] == "regrama"
    assert rows.loc["regrama", "prob_improvement_over_best_baseline"] == rows.loc["regrama", "prob_improvement_over_none"]
    assert rows.loc["none", "prob_improvement_over_best_baseline"] < 0.5

    markdown = (target / "leaderboard.md").read_text()
    assert "## toy / sac / mlp" in markdown and "| regrama |" in markdown
    assert "## Overall (every suite / algo / arch)" in markdown and "vs regrama" in markdown
    tex = (target / "leaderboard.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "ReGraMa &" in tex and "regrama" not in tex
    missing = (target / "missing.md").read_text()
    assert run_id("none", "gym:TaskB-v0", 2) in missing and "no run folder" in missing

    figures = sorted((target / "figures").iterdir())
    stems = {p.stem.split("_toy")[0] for p in figures}
    assert stems == {"interval_estimates", "sample_efficiency", "inactive_vs_dormant",
                     "probability_of_improvement", "performance_profile", "metric_curves", "task_curves",
                     "run_curves"}
    # Of the stored metrics, only those in the report's default list get curves.
    assert ("grama_inactive_ratio@0.025" not in curve_plots.REPORT_METRICS
            and "dormant_ratio@0.1" in curve_plots.REPORT_METRICS)
    assert {p.stem for p in figures if p.stem.startswith("metric_curves")} == {
        "metric_curves_toy_sac_mlp_dormant_ratio-0.1"}
    for stem in {p.stem for p in figures}:
        for suffix in (".pdf", ".png"):
            path = target / "figures" / f"{stem}{suffix}"
            assert path.exists() and path.stat().st_size > 1000
    assert (target / "figures" / figures[0].name).read_bytes()[:4] in (b"%PDF", b"\x89PNG")

    page = (target / "index.html").read_text()
    for png in (p for p in figures if p.suffix == ".png"):
        assert f'src="figures/{png.name}"' in page
        # Shown at its printed size (PNG pixels at style.PNG_DPI; 96 CSS pixels per inch) times the zoom.
        width = round(page_module.png_size(png)[0] * 96 * page_module.FIGURE_ZOOM / PNG_DPI)
        assert f'src="figures/{png.name}" width="{width}"' in page
    # Captions say what a figure shows, never its file name.
    captions = [re.sub(r" \(<a href=[^)]*\)$", "", c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", page)]
    assert len(captions) == len([p for p in figures if p.suffix == ".png"])
    assert not [c for c in captions if "_toy" in c or ".png" in c]
    assert any(c.startswith("Raw evaluation return per task (not normalised)") for c in captions)
    assert any("Every run&#x27;s raw evaluation return" in c for c in captions)
    # A table of contents by scope, display names, the normalisation with each task's returns and source.
    assert '<a href="#toy_sac_mlp">toy / SAC / MLP</a>' in page and '<section id="toy_sac_mlp">' in page
    assert "ReGraMa" in page and "None (baseline)" in page
    assert "(return &minus; random) / (reference &minus; random)" in page
    assert ('<tr><td class="text">toy</td><td class="text">TaskB-v0</td><td>10</td><td>210</td>'
            '<td class="text source">test</td></tr>') in page
    assert page.count("<table data-sortable>") == 1 + 2  # the task table, one leaderboard per scope
    assert "stratified bootstrap over runs" in page and "numpy bootstrap of the mean" in page

    manifest = json.loads((target / "manifest.json").read_text())
    for key in ("version", "date", "git_sha", "git_dirty", "config", "config_hash", "versions", "run_ids",
                "missing_run_ids", "package_version"):
        assert key in manifest, key
    assert manifest["config"] == matrix["config"] and manifest["config_hash"] == matrix["config_hash"]
    assert manifest["versions"]["rliable"] == "1.2.0"
    assert len(manifest["run_ids"]) == 10 and run_id("none", "gym:TaskB-v0", 2) in manifest["missing_run_ids"]
    index = (tmp_path / "reports" / "index.md").read_text()
    assert manifest["version"] in index
    versions = (tmp_path / "reports" / "index.html").read_text()
    assert f'<a href="{manifest["version"]}/index.html">{manifest["version"]}</a>' in versions
    assert '<a href="../index.html">All report versions</a>' in page


def test_versions_are_never_overwritten(aggregated, tmp_path):
    aggregate_dir, matrix, runs = aggregated
    reports = tmp_path / "reports"
    first = report.build_report(aggregate_dir, reports, matrix)
    before = snapshot(first)

    # The same code and config rewrite the same version, byte for byte.
    assert report.build_report(aggregate_dir, reports, matrix) == first
    assert snapshot(first) == before

    # Another config: a new version; the first is untouched.
    other_matrix = {**matrix, "config": {**matrix["config"], "name": "other"}, "config_hash": "99999999ffff"}
    other_aggregate = tmp_path / "other_aggregate"
    shutil.copytree(aggregate_dir, other_aggregate)
    summary = json.loads((other_aggregate / SUMMARY).read_text())
    write_json(other_aggregate / SUMMARY, {**summary, "config_hash": other_matrix["config_hash"]})
    second = report.build_report(other_aggregate, reports, other_matrix)
    assert second != first and second.name.startswith(f"v{plasticity_bench.__version__}-99999999-")
    assert snapshot(first) == before

    # An explicit version that is taken by another config fails and leaves it alone.
    with pytest.raises(report.ReportError, match="already exists"):
        report.build_report(other_aggregate, reports, other_matrix, version=first.name)
    assert snapshot(first) == before

    # A report of the same config made by other code (another git sha) is not overwritten either:
    # the default version moves on to a suffix.
    manifest = json.loads((first / "manifest.json").read_text())
    write_json(first / "manifest.json", {**manifest, "git_sha": "f" * 40})
    moved = snapshot(first)
    third = report.build_report(aggregate_dir, reports, matrix)
    assert third == reports / f"{first.name}-2"
    assert snapshot(first) == moved

    index = (reports / "index.md").read_text()
    for version in (first.name, second.name, third.name):
        assert f"[{version}]" in index
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_aggregate_of_another_config_is_refused(aggregated, tmp_path):
    aggregate_dir, matrix, _ = aggregated
    with pytest.raises(report.ReportError, match="rerun aggregate"):
        report.build_report(aggregate_dir, tmp_path / "reports", {**matrix, "config_hash": "0000aaaa"})
    assert not (tmp_path / "reports").exists()


def test_cli_report(aggregated, tmp_path):
    aggregate_dir, matrix, _ = aggregated
    matrix_path = tmp_path / "matrix.json"
    write_json(matrix_path, matrix)
    runner = CliRunner()
    args = ["report", "--aggregate", str(aggregate_dir), "--matrix", str(matrix_path),
            "--reports", str(tmp_path / "reports"), "--version", "paper"]
    result = runner.invoke(cli_app(), args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "paper" / "leaderboard.csv").exists()
    write_json(matrix_path, {**matrix, "config_hash": "1234"})
    result = runner.invoke(cli_app(), args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    result = runner.invoke(cli_app(), ["report", "--aggregate", str(tmp_path / "nothing"), "--matrix",
                                       str(matrix_path), "--reports", str(tmp_path / "reports")])
    assert result.exit_code == 2 and "not a finished aggregate" in result.stderr


def test_leaderboard_overall_scope_and_best_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(tmp_path / "suites")))
    matrix, runs = make_runs(tmp_path, WIDE_CELLS)  # none/redo/regrama on mlp and residual, a user method on mlp
    aggregate(matrix, runs, tmp_path / "aggregate", reps=REPS, seed=0)
    target = report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix)
    board = pd.read_csv(target / "leaderboard.csv")
    scopes = list(dict.fromkeys(zip(board["suite"], board["algo"], board["arch"])))
    assert scopes == [("all", "all", "all"), ("toy", "sac", "mlp"), ("toy", "sac", "residual")]

    overall = board[board["suite"] == OVERALL].set_index("method")
    assert list(overall.index) == ["regrama", "redo", "none"]  # ranked by IQM; the user's method lacks residual
    assert (overall["tasks"] == 4).all() and (overall["runs"] == 12).all()
    assert list(overall["best_baseline"]) == ["redo", "regrama", "regrama"]

    mlp = board[board["arch"] == "mlp"].set_index("method")
    assert list(mlp.index) == ["regrama", USER_METHOD, "redo", "none"]
    # Hand-checked: the user's method is compared with the best built-in (regrama), on the same arrays.
    assert mlp.loc[USER_METHOD, "best_baseline"] == "regrama"
    x = np.array([[expected_score(USER_METHOD, t, s) for t in sorted(TASKS)] for s in SEEDS])
    y = np.array([[expected_score("regrama", t, s) for t in sorted(TASKS)] for s in SEEDS])
    probability = rly_metrics.probability_of_improvement(x, y)
    assert 0 < probability < 0.5
    assert mlp.loc[USER_METHOD, "prob_improvement_over_best_baseline"] == pytest.approx(probability)
    assert (mlp.loc[USER_METHOD, "prob_improvement_over_best_baseline_low"] <= probability
            <= mlp.loc[USER_METHOD, "prob_improvement_over_best_baseline_high"])

    markdown = (target / "leaderboard.md").read_text()
    assert "Left out of the overall scope for lacking cells: my_plugin.methods:Mine (2 of 4 cells missing)" in markdown
    assert f"{probability:.3f} [" in markdown and "vs regrama" in markdown
    tex = (target / "leaderboard.tex").read_text()
    assert "P($>$none)" in tex and "Overall (every suite / algo / arch)" in tex
    page = (target / "index.html").read_text()
    assert "P(&gt; best baseline)" in page and "Overall (every suite / algo / arch)" in page
    figures = {p.name for p in (target / "figures").iterdir()}
    assert {"interval_estimates_overall.png", "probability_of_improvement_overall.pdf",
            "performance_profile_overall.png"} <= figures


def test_report_draws_the_metric_curves_it_is_asked_for(aggregated, tmp_path):
    aggregate_dir, matrix, _ = aggregated
    target = report.build_report(aggregate_dir, tmp_path / "reports", matrix, metrics=["grama_inactive_ratio"])
    assert {p.stem for p in (target / "figures").iterdir() if p.stem.startswith("metric_curves")} == {
        "metric_curves_toy_sac_mlp_grama_inactive_ratio-0.025"}
    with pytest.raises(PlotError, match="unknown metric 'srank'; stored metrics: dormant_ratio@0.1, "
                                              "grama_inactive_ratio@0.025"):
        report.build_report(aggregate_dir, tmp_path / "other", matrix, metrics=["srank"])


def test_a_report_is_redrawn_from_its_own_files(aggregated, tmp_path):
    """`plot --aggregate <report>` reads only the report folder (its data/), draws the report's
    figures byte for byte, draws them anew at other sizes, and never writes into the report."""
    aggregate_dir, matrix, runs = aggregated
    built = report.build_report(aggregate_dir, tmp_path / "reports", matrix, runs_dir=runs)
    published = tmp_path / "elsewhere" / built.name  # the report alone: no aggregate, no runs beside it
    shutil.copytree(built, published)
    before = snapshot(published)
    data = {p.name for p in (published / report.DATA).iterdir()}
    assert data == {f"{name}.parquet" for name in report.FILES} | {report.RUN_METRICS, SUMMARY}
    run_metrics = pd.read_parquet(published / report.DATA / report.RUN_METRICS)
    assert set(run_metrics["run_id"]) == set(pd.read_csv(published / "scores.csv")["run_id"])
    assert (published / report.DATA / "run_curves.parquet").stat().st_size > 0
    manifest = json.loads((published / "manifest.json").read_text())
    assert f"{report.DATA}/{report.RUN_METRICS}" in manifest["files"]

    from plasticity_bench.cli import app

    runner = CliRunner()
    out = tmp_path / "redrawn"
    result = runner.invoke(app, ["plot", "--aggregate", str(published), "--out", str(out)])
    assert result.exit_code == 0, result.output
    drawn = {p.name: p.read_bytes() for p in out.iterdir()}
    figures = {p.name: p.read_bytes() for p in (published / "figures").iterdir()}
    assert drawn == figures  # every figure of the report, identical

    single = tmp_path / "single"
    result = runner.invoke(app, ["plot", "--report", str(published), "--out", str(single), "--column", "single",
                                     "--font-size", "9", "--format", "pdf", "--figure", "sample_efficiency",
                                     "--methods", "regrama", "--method-name", "regrama=ReGraMa (ours)"])
    assert result.exit_code == 0, result.output
    pdfs = sorted(p.name for p in single.iterdir())
    assert pdfs and all(name.startswith("sample_efficiency_") and name.endswith(".pdf") for name in pdfs)
    # The PDF's page is one column wide: 3.25 in = 234 pt.
    assert b"/MediaBox [ 0 0 234 " in (single / pdfs[0]).read_bytes()

    for args, message in (
            (["--out", str(published / "figures" / "mine")], "is inside the published report"),
            (["--out", str(tmp_path / "x"), "--font-size", "6"], "font size 6 pt: give 8 to 16"),
            (["--out", str(tmp_path / "x"), "--column", "triple"], "--column: unknown value 'triple'; valid: single, "
                                                                   "double"),
            (["--out", str(tmp_path / "x"), "--methods", "redo"], "--methods: unknown value 'redo'; valid: none, "
                                                                  "regrama"),
            (["--out", str(tmp_path / "x"), "--method-name", "regrama"], "--method-name 'regrama': write LABEL=NAME")):
        result = runner.invoke(app, ["plot", "--aggregate", str(published), *args])
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    assert snapshot(published) == before  # published folders stay as they are

    shutil.rmtree(published / report.DATA)  # a report from before reports carried their data
    result = runner.invoke(app, ["plot", "--aggregate", str(published), "--out", str(tmp_path / "old")])
    assert result.exit_code == 2 and "predates report data (no data/aggregate.json)" in result.stderr


PUBLISHED = Path(__file__).resolve().parents[1] / "reports"


@pytest.mark.parametrize("version", ["v0.1.0-d7cf4599-b62e90a", "v0.1.0-f53af217-e1eb670", "v0.1.0-ca8f0e9e-394057e"])
def test_the_latex_table_of_a_published_leaderboard_fits_a_neurips_text_width(version):
    from plasticity_bench.analysis import latex

    board = pd.read_csv(PUBLISHED / version / "leaderboard.csv")
    tex = latex.leaderboard_tex(board)
    header, blocks = latex.table_cells(board)
    assert latex.estimated_width(header, blocks) <= latex.TEXT_WIDTH
    assert "\\usepackage{booktabs}" in tex and tex.count("\\toprule") == tex.count("\\bottomrule") == 1
    assert "None (baseline)" in tex or "None (replay ratio" in tex  # display names, never identifiers
    rows = [line for line in tex.splitlines() if line.endswith("\\\\") and "multicolumn" not in line][1:]
    assert all(line.count(" & ") == len(latex.DEFAULT_COLUMNS) for line in rows)
    assert not {line.split(" & ")[0] for line in rows} & {latex.tex_escape(m) for m in board["method"]}
    # Every column at once is wider than the text: optional columns are off unless asked for.
    everything = latex.table_cells(board, columns=list(latex.HEADERS))
    assert latex.estimated_width(*everything) > latex.TEXT_WIDTH
    assert "Opt.\\ gap ($\\downarrow$)" in latex.leaderboard_tex(board, columns=["iqm", "optimality_gap"])
    with pytest.raises(ValueError, match="unknown table column 'sd'; valid: group, iqm, "):
        latex.leaderboard_tex(board, columns=["iqm", "sd"])


def reports_with_data() -> list[Path]:
    """Published reports that carry what their figures were drawn from (data/); older ones do not."""
    return sorted(folder for folder in PUBLISHED.glob("v*") if (folder / report.DATA / SUMMARY).exists())


@pytest.mark.parametrize("folder", reports_with_data(), ids=lambda folder: folder.name)
def test_published_reports_are_redrawn_from_their_own_files(folder, tmp_path):
    """Every figure of a published report, redrawn from the folder alone (new code may draw it
    differently, so the names are compared, not the bytes), and the folder left as it was."""
    from typer.testing import CliRunner

    from plasticity_bench.cli import app

    before = snapshot(folder)
    result = CliRunner().invoke(app, ["plot", "--report", str(folder), "--out", str(tmp_path / "figures")])
    assert result.exit_code == 0, result.output
    expected = {p.name for p in (folder / "figures").iterdir()}
    if not any(name.startswith("plasticity_ratio_") for name in expected):
        # Published before the continual figures were drawn: its continual scopes now get them,
        # in place of their sample-efficiency curve.
        for row in json.loads((folder / report.DATA / SUMMARY).read_text()).get("continual", {}).get(
                "segment_steps", []):
            slug = scope_slug(row["suite"], row["algo"], row["arch"])
            expected = {name for name in expected if not name.startswith(f"sample_efficiency_{slug}.")}
            expected |= {f"{kind}_{slug}.{ext}" for kind in ("plasticity_ratio", "sequence_returns")
                         for ext in ("pdf", "png")}
    assert {p.name for p in (tmp_path / "figures").iterdir()} == expected
    assert snapshot(folder) == before
