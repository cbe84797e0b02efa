"""`plasticity-bench plot` on the records of real (short) training runs, with real rliable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from plasticity_bench.analysis import plots
from plasticity_bench.analysis.style import slug
from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.runs import load_matrix
from plasticity_bench.cli import app
from plasticity_bench.matrix import PlannedRun, write_matrix
from plasticity_bench.spec import build_spec
from plasticity_bench.training import train

SUITE = "classic_control"
TASK = "gym:CartPole-v1"
METHODS = ("none", "redo")
SEEDS = (0, 1)
OVERRIDES = {"learning_starts": 300, "eval_every_steps": 500, "eval_episodes": 2, "monitor_every_updates": 20,
             "hidden_sizes": [16, 16]}
REPS = "100"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(matrix.json, runs dir) of dqn on CartPole: 2 methods x 2 seeds, 1500 steps each."""
    root = tmp_path_factory.mktemp("plot_inputs")
    planned = []
    for method in METHODS:
        for seed in SEEDS:
            spec = build_spec("dqn", "mlp", method, TASK, seed, 1500, OVERRIDES)
            # 120 updates: ReDo never acts (the budget guard refuses that); the figures need records only.
            manifest = train(spec, root / "runs" / spec.run_id, device="cpu", progress=False, allow_short_budget=True)
            assert manifest["status"] == "completed"
            planned.append(PlannedRun(spec, SUITE, OVERRIDES))
    write_matrix(root / "matrix.json", {"name": "plot-test", "methods": list(METHODS)}, planned, [])
    return root / "matrix.json", root / "runs"


def invoke(*args: str):
    return CliRunner().invoke(app, ["plot", *args])


def files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(directory.iterdir())} if directory.exists() else {}


def test_plot_from_records_draws_every_figure_in_both_formats(recorded, tmp_path):
    matrix, runs = recorded
    out = tmp_path / "figures"
    result = invoke("--matrix", str(matrix), "--runs", str(runs), "--out", str(out), "--reps", REPS)
    assert result.exit_code == 0, result.output
    written = files(out)
    scope = f"{SUITE}_dqn_mlp"
    for figure in ("interval_estimates", "performance_profile", "probability_of_improvement", "sample_efficiency",
                   "task_curves", "run_curves", "inactive_vs_dormant"):
        for suffix in ("pdf", "png"):
            assert written.get(f"{figure}_{scope}.{suffix}", 0) > 1000, (figure, suffix)
    # The generic metric figure: one per stored metric, e.g. srank and weight_magnitude of the real monitor.
    stored = set(pd.concat(pd.read_parquet(p) for p in runs.glob("*/metrics.parquet"))["metric"])
    drawn = {name[len(f"metric_curves_{scope}_"):-4] for name in written
             if name.startswith("metric_curves_") and name.endswith(".png")}
    assert drawn == {slug(metric) for metric in stored}
    assert {"srank", "weight_magnitude", "active_fraction"} <= stored
    # One scope only: no overall figures repeating it.
    assert not [name for name in written if "overall" in name]
    # No option was swept: no sensitivity figure, and the command says so.
    assert not [name for name in written if name.startswith("sensitivity")]
    assert "sensitivity: nothing to draw" in result.stderr
    assert (out / f"interval_estimates_{scope}.pdf").read_bytes()[:4] == b"%PDF"
    assert (out / f"interval_estimates_{scope}.png").read_bytes()[:4] == b"\x89PNG"


def test_figure_format_and_metric_selection(recorded, tmp_path):
    matrix, runs = recorded
    out = tmp_path / "figures"
    result = invoke("--matrix", str(matrix), "--runs", str(runs), "--out", str(out), "--reps", REPS,
                    "--figure", "metric_curves,sample_efficiency", "--metric", "srank",
                    "--metric", "dormant_ratio", "--format", "png")
    assert result.exit_code == 0, result.output
    scope = f"{SUITE}_dqn_mlp"
    stored = set(pd.concat(pd.read_parquet(p) for p in runs.glob("*/metrics.parquet"))["metric"])
    dormant = {m for m in stored if m.split("@")[0] == "dormant_ratio"}
    assert dormant  # the prefix matches every stored threshold
    expected = {f"sample_efficiency_{scope}.png"} | {f"metric_curves_{scope}_{slug(m)}.png"
                                                     for m in {"srank"} | dormant}
    assert set(files(out)) == expected
    assert all(size > 1000 for size in files(out).values())


def test_subsets_recompute_from_the_records(recorded, tmp_path):
    matrix, runs = recorded
    out = tmp_path / "figures"
    result = invoke("--matrix", str(matrix), "--runs", str(runs), "--out", str(out), "--reps", REPS,
                    "--methods", "redo", "--tasks", TASK, "--figure", "interval_estimates",
                    "--figure", "probability_of_improvement", "--format", "pdf")
    assert result.exit_code == 0, result.output
    scope = f"{SUITE}_dqn_mlp"
    assert set(files(out)) == {f"interval_estimates_{scope}.pdf"}  # nothing to compare redo with
    assert "probability_of_improvement: nothing to draw" in result.stderr
    # The same subset as the library computes it (seeded): redo's numbers do not depend on none.
    full = aggregate(load_matrix(matrix), runs, reps=int(REPS), seed=0).interval_estimates
    only = aggregate({**load_matrix(matrix), "runs": [
        r for r in load_matrix(matrix)["runs"] if r["method"] == "redo"]}, runs, reps=int(REPS), seed=0)
    pick = lambda frame: frame[(frame["method"] == "redo") & (frame["suite"] == SUITE)].reset_index(drop=True)
    pd.testing.assert_frame_equal(pick(full), pick(only.interval_estimates))


def test_plot_from_an_aggregate_dir(recorded, tmp_path):
    matrix, runs = recorded
    aggregate(load_matrix(matrix), runs, tmp_path / "agg", reps=int(REPS), seed=0)
    out = tmp_path / "figures"
    result = invoke("--aggregate", str(tmp_path / "agg"), "--out", str(out), "--figure", "performance_profile",
                    "--format", "svg,png")
    assert result.exit_code == 0, result.output
    assert set(files(out)) == {f"performance_profile_{SUITE}_dqn_mlp.{s}" for s in ("svg", "png")}


@pytest.mark.parametrize("args,message", [
    (["--methods", "redo,resett"], "--methods: unknown value 'resett'; valid: none, redo"),
    (["--tasks", "gym:Acrobot-v1"], f"--tasks: unknown value 'gym:Acrobot-v1'; valid: {TASK}"),
    (["--figure", "histogram"], "--figure: unknown value 'histogram'; valid: interval_estimates, "),
    (["--format", "jpg"], "--format: unknown value 'jpg'; valid: pdf, png, svg"),
    (["--figure", "metric_curves", "--metric", "sranks"], "unknown metric 'sranks'; stored metrics: "),
])
def test_bad_choices_fail_with_one_line(recorded, tmp_path, args, message):
    matrix, runs = recorded
    out = tmp_path / "figures"
    result = invoke("--matrix", str(matrix), "--runs", str(runs), "--out", str(out), "--reps", REPS, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.output
    assert not files(out)


def test_inputs_must_be_an_aggregate_or_matrix_and_runs(recorded, tmp_path):
    matrix, runs = recorded
    result = invoke("--matrix", str(matrix), "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and "give --aggregate (an aggregate or report folder), or --matrix with --runs" \
        in result.stderr
    result = invoke("--aggregate", str(tmp_path), "--tasks", TASK, "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and "--tasks recomputes the statistics" in result.stderr
    result = invoke("--aggregate", str(tmp_path / "none"), "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and "not a finished aggregate" in result.stderr
    result = invoke("--aggregate", str(tmp_path), "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and "is neither an aggregate nor a report folder" in result.stderr


def test_cli_figure_names_are_the_plot_modules():
    from plasticity_bench import cli_pipeline

    assert cli_pipeline.FIGURE_NAMES == tuple(plots.FIGURES)
