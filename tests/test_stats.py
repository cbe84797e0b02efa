"""Aggregation on real run folders (manifest.json / eval.parquet / metrics.parquet) with real rliable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from rliable import metrics as rly_metrics
from typer.testing import CliRunner

from plasticity_bench.analysis.aggregate import MissingRunsError, aggregate
from plasticity_bench.analysis.baselines import best_baselines
from plasticity_bench.analysis.scores import collect
from plasticity_bench.analysis.stats import STATISTICS, interval_estimates
from plasticity_bench.analysis.vocabulary import (FILES, OVERALL, SCOPE, SUMMARY, AnalysisError, read_aggregate,
                                                  write_aggregate)
from plasticity_bench.cli_pipeline import aggregate_command, report_command
from plasticity_bench.results import EVAL, MANIFEST, METRICS, write_json, write_parquet

SUITE = "toy"
TASKS = {"gym:TaskA-v0": (0.0, 100.0), "gym:TaskB-v0": (10.0, 210.0)}  # task -> (random, reference)
METHODS = ("none", "regrama")
SEEDS = (0, 1, 2)
EVAL_STEPS = (1000, 2000, 3000, 4000, 5000)
REPS = 200


def write_suite(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {SUITE}", "description: two made-up tasks for tests", "algos: [sac]", "steps: 5000", "tasks:"]
    for task, (random, reference) in TASKS.items():
        lines += [f"  {task}:", f"    random: {random}", f"    reference: {reference}", "    source: test"]
    (directory / f"{SUITE}.yaml").write_text("\n".join(lines) + "\n")
    return directory


USER_METHOD = "my_plugin.methods:Mine"  # a user's method: never a baseline
#: method -> (final level, curve exponent); any other method learns like "none".
CURVES = {"none": (0.55, 1.3), "regrama": (0.8, 0.7), "redo": (0.7, 1.0), USER_METHOD: (0.75, 0.9)}
ARCH_OFFSET = {"mlp": 0.0, "residual": 0.1}


def eval_returns(method: str, task: str, seed: int, arch: str = "mlp") -> np.ndarray:
    """Deterministic, distinct learning curves: regrama learns faster, seeds and tasks differ."""
    random, reference = TASKS[task]
    level, exponent = CURVES.get(method, CURVES["none"])
    progress = np.linspace(0.1, 1.0, len(EVAL_STEPS)) ** exponent
    level = level + ARCH_OFFSET[arch] + 0.07 * seed - 0.05 * list(TASKS).index(task)
    wiggle = 0.01 * np.sin(np.arange(len(EVAL_STEPS)) * (seed + 1))
    return random + (reference - random) * (level * progress + wiggle)


def run_id(method: str, task: str, seed: int, arch: str = "mlp") -> str:
    return f"sac-{arch}-{method.replace(':', '.')}-{task.split(':')[1]}-s{seed}"


def write_run(runs: Path, method: str, task: str, seed: int, status: str = "completed", error=None,
              arch: str = "mlp") -> Path:
    folder = runs / run_id(method, task, seed, arch)
    spec = {"algo": "sac", "arch": arch, "method": method, "task": task, "seed": seed, "steps": 5000,
            "hyperparams": {}, "method_options": {}}
    write_json(folder / MANIFEST, {
        "run_id": folder.name, "status": status, "error": error, "step": 5000, "spec": spec,
        "git": {"sha": "0" * 40, "dirty": False}, "versions": {"plasticity_bench": "0.1.0"},
        "device": "cpu", "wall_time_s": 1.0})
    write_parquet(folder / EVAL, pd.DataFrame(
        {"step": list(EVAL_STEPS), "return": eval_returns(method, task, seed, arch), "episodes": 5}))
    rows = []
    for i, step in enumerate(EVAL_STEPS):
        for network in ("actor", "critic"):
            grama = 0.01 * (i + 1) * (0.5 if method == "regrama" else 1.0) + 0.001 * seed
            dormant = 0.004 * (i + 1) + 0.001 * seed
            for layer, scale in (("all", 1.0), ("fc1", 2.0)):
                rows.append({"step": step, "network": network, "layer": layer,
                             "metric": "grama_inactive_ratio@0.025", "value": grama * scale})
                rows.append({"step": step, "network": network, "layer": layer,
                             "metric": "dormant_ratio@0.1", "value": dormant * scale})
    write_parquet(folder / METRICS, pd.DataFrame(rows))
    return folder


def make_matrix(config_hash: str = "abcdef0123456789", cells=None) -> dict:
    """``cells``: (method, arch) pairs; default every METHODS on mlp."""
    cells = cells or [(m, "mlp") for m in METHODS]
    runs = [{"run_id": run_id(m, t, s, a), "algo": "sac", "arch": a, "method": m, "task": t, "seed": s,
             "suite": SUITE} for m, a in cells for t in TASKS for s in SEEDS]
    return {"runs": runs, "dropped": [{"algo": "dqn", "arch": "diffusion", "method": "none", "task": "x",
                                       "reason": "diffusion actor needs continuous actions"}],
            "config": {"name": "test", "seeds": list(SEEDS)}, "config_hash": config_hash}


def make_runs(root: Path, cells=None) -> tuple[dict, Path]:
    runs = root / "runs"
    matrix = make_matrix(cells=cells)
    for run in matrix["runs"]:
        write_run(runs, run["method"], run["task"], run["seed"], arch=run["arch"])
    return matrix, runs


def expected_score(method: str, task: str, seed: int, arch: str = "mlp", last: int = 1) -> float:
    """Normalised mean of the ``last`` evaluations: 1 with the default final window (0.1 of
    5000 steps reaches back 500 steps, and evaluations are 1000 steps apart)."""
    random, reference = TASKS[task]
    return (eval_returns(method, task, seed, arch)[-last:].mean() - random) / (reference - random)


@pytest.fixture(autouse=True)
def toy_suite(tmp_path_factory, monkeypatch):
    directory = write_suite(tmp_path_factory.getbasetemp() / "suites")
    monkeypatch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(directory))
    return directory


@pytest.fixture
def complete(tmp_path):
    return make_runs(tmp_path)


@pytest.mark.parametrize("final_window, last", [(0.1, 1), (0.0, 1), (0.4, 3), (1.0, 5)])
def test_final_score_averages_the_evaluations_in_the_final_window_of_the_budget(complete, final_window, last):
    """Evaluations every 1000 of 5000 steps: a window of 0.4 x 5000 reaches back to step 3000."""
    matrix, runs = complete
    scores, missing = collect(matrix, runs, final_window=final_window)
    assert missing.empty and len(scores) == 12
    for row in scores.itertuples():
        assert row.score == pytest.approx(expected_score(row.method, row.task, row.seed, last=last))
        assert row.final_return == pytest.approx(eval_returns(row.method, row.task, row.seed)[-last:].mean())
        assert row.final_evals == last and row.num_evals == 5 and row.last_step == 5000


def test_auc_is_the_mean_height_of_the_normalised_learning_curve(complete):
    """Trapezoid rule over the eval steps divided by their span."""
    matrix, runs = complete
    scores, _ = collect(matrix, runs)
    for row in scores.itertuples():
        random, reference = TASKS[row.task]
        curve = (eval_returns(row.method, row.task, row.seed) - random) / (reference - random)
        heights = (curve[1:] + curve[:-1]) / 2  # evaluations are evenly spaced
        assert row.auc == pytest.approx(heights.mean())


@pytest.mark.parametrize("final_window", [-0.1, 1.5])
def test_final_window_outside_the_budget_names_value_and_range(complete, final_window):
    matrix, runs = complete
    with pytest.raises(AnalysisError, match=rf"final_window {final_window} .* valid: 0 to 1"):
        collect(matrix, runs, final_window=final_window)


def test_iqm_equals_rliable_on_same_arrays_and_cis_contain_estimates(complete, tmp_path):
    matrix, runs = complete
    result = aggregate(matrix, runs, tmp_path / "agg", reps=REPS, seed=0)
    everything = result.interval_estimates
    estimates = everything[everything["suite"] == SUITE].reset_index(drop=True)
    assert len(estimates) == len(METHODS) * (len(STATISTICS) + 1)  # and the IQM of the AUCs
    # One scope: the overall scope is the same matrix (cells in the same order), so the same numbers.
    overall = everything[everything["suite"] == OVERALL].reset_index(drop=True)
    assert (overall[["algo", "arch"]] == OVERALL).all().all()
    pd.testing.assert_frame_equal(overall.drop(columns=SCOPE), estimates.drop(columns=SCOPE))
    for method in METHODS:
        array = np.array([[expected_score(method, t, s) for t in sorted(TASKS)] for s in SEEDS])  # (runs, tasks)
        rows = estimates[estimates["method"] == method].set_index("statistic")
        assert rows.loc["iqm", "estimate"] == pytest.approx(rly_metrics.aggregate_iqm(array))
        assert rows.loc["mean", "estimate"] == pytest.approx(rly_metrics.aggregate_mean(array))
        assert rows.loc["median", "estimate"] == pytest.approx(rly_metrics.aggregate_median(array))
        assert rows.loc["optimality_gap", "estimate"] == pytest.approx(rly_metrics.aggregate_optimality_gap(array))
        assert (rows["runs"] == 6).all() and (rows["tasks"] == 2).all()
    assert (estimates["low"] <= estimates["estimate"] + 1e-12).all()
    assert (estimates["estimate"] <= estimates["high"] + 1e-12).all()
    assert (estimates["low"] < estimates["high"]).any()
    poi = result.probability_of_improvement
    poi = poi[poi["suite"] == SUITE]
    # regrama against none; none against its best (only) other built-in, regrama.
    assert list(zip(poi["method"], poi["baseline"], poi["best_baseline"])) == [
        ("none", "regrama", True), ("regrama", "none", True)]
    poi = poi[poi["method"] == "regrama"]
    assert poi["low"].iloc[0] <= poi["probability"].iloc[0] <= poi["high"].iloc[0]
    x = np.array([[expected_score("regrama", t, s) for t in sorted(TASKS)] for s in SEEDS])
    y = np.array([[expected_score("none", t, s) for t in sorted(TASKS)] for s in SEEDS])
    assert poi["probability"].iloc[0] == pytest.approx(rly_metrics.probability_of_improvement(x, y))


def test_iqm_by_hand_on_tiny_example():
    # 8 scores (4 seeds x 2 tasks): the IQM drops the 2 lowest and 2 highest -> mean(2, 3, 4, 5).
    values = [[0.0, 6.0], [1.0, 100.0], [2.0, 4.0], [3.0, 5.0]]
    rows = [{"run_id": f"r{s}{t}", "suite": "s", "algo": "a", "arch": "b", "method": "none", "task": f"t{t}",
             "seed": s, "score": values[s][t]} for s in range(4) for t in range(2)]
    table = interval_estimates(pd.DataFrame(rows), reps=50, seed=0).set_index("statistic")
    assert table.loc["iqm", "estimate"] == pytest.approx(3.5)
    assert table.loc["mean", "estimate"] == pytest.approx(121.0 / 8)
    # scipy's trim_mean (rliable's IQM) cuts floor(n/4) from each end: with 6 scores, one each.
    assert rly_metrics.aggregate_iqm(np.array([[1.0, 9.0], [2.0, 3.0], [4.0, 50.0]])) == pytest.approx(4.5)


def test_same_seed_gives_identical_files_and_another_seed_changes_cis(complete, tmp_path):
    matrix, runs = complete
    first = write_aggregate(aggregate(matrix, runs, reps=REPS, seed=3), tmp_path / "a")
    np.random.seed(12345)  # global state before the call must not matter
    second = write_aggregate(aggregate(matrix, runs, reps=REPS, seed=3), tmp_path / "b")
    for name in FILES:
        assert first[name].read_bytes() == second[name].read_bytes(), name
    other = aggregate(matrix, runs, reps=REPS, seed=4).interval_estimates
    same = pd.read_csv(first["interval_estimates"])
    assert np.allclose(other["estimate"], same["estimate"])
    assert not np.allclose(other[["low", "high"]].to_numpy(), same[["low", "high"]].to_numpy())


def test_missing_seed_raises_without_allow_missing_and_is_listed_with_it(complete, tmp_path):
    matrix, runs = complete
    gone = run_id("regrama", "gym:TaskB-v0", 2)
    shutil.rmtree(runs / gone)
    out = tmp_path / "agg"
    with pytest.raises(MissingRunsError) as error:
        aggregate(matrix, runs, out, reps=REPS)
    assert "1 of the expected runs are missing" in str(error.value) and gone in str(error.value)
    assert list(error.value.missing["run_id"]) == [gone]
    assert not out.exists()

    result = aggregate(matrix, runs, out, reps=REPS, allow_missing=True)
    missing = pd.read_csv(out / "missing.csv")
    assert gone in set(missing["run_id"])
    assert missing.set_index("run_id").loc[gone, "reason"] == "no run folder"
    # The matrix stays rectangular: regrama's seed 2 on TaskA is left out and reported as such.
    unbalanced = run_id("regrama", "gym:TaskA-v0", 2)
    assert missing.set_index("run_id").loc[unbalanced, "reason"].startswith("unbalanced")
    scoped = result.interval_estimates[result.interval_estimates["suite"] == SUITE]
    rows = scoped.set_index(["method", "statistic"])
    assert rows.loc[("regrama", "iqm"), "runs"] == 4 and rows.loc[("none", "iqm"), "runs"] == 6
    assert set(pd.read_csv(out / "scores.csv")["run_id"]) == set(result.scores["run_id"])
    assert gone not in set(result.scores["run_id"]) and unbalanced not in set(result.scores["run_id"])


@pytest.mark.parametrize("status,error,reason", [
    ("failed", "CUDA out of memory", "status failed: CUDA out of memory"),
    ("running", None, "status running"),
])
def test_unfinished_runs_count_as_missing(complete, status, error, reason):
    matrix, runs = complete
    write_run(runs, "none", "gym:TaskA-v0", 1, status=status, error=error)
    scores, missing = collect(matrix, runs)
    assert list(missing["run_id"]) == [run_id("none", "gym:TaskA-v0", 1)]
    assert list(missing["reason"]) == [reason] and list(missing["status"]) == [status]
    assert len(scores) == 11
    with pytest.raises(MissingRunsError, match="1 of the expected runs are missing"):
        aggregate(matrix, runs, reps=REPS)


def test_empty_eval_and_spec_mismatch_count_as_missing(complete):
    matrix, runs = complete
    write_parquet(runs / run_id("none", "gym:TaskA-v0", 0) / EVAL, pd.DataFrame(
        {"step": pd.Series([], dtype=int), "return": pd.Series([], dtype=float),
         "episodes": pd.Series([], dtype=int)}))
    matrix["runs"][1]["seed"] = 7  # the folder's manifest says seed 1
    _, missing = collect(matrix, runs)
    reasons = missing.set_index("run_id")["reason"]
    assert reasons[run_id("none", "gym:TaskA-v0", 0)] == "empty eval"
    assert "seed=1" in reasons[run_id("none", "gym:TaskA-v0", 1)]


def test_task_outside_the_suite_is_a_user_error(complete):
    matrix, runs = complete
    matrix["runs"][0]["task"] = "gym:Unknown-v0"
    write_run(runs, "none", "gym:TaskA-v0", 0)  # manifest task still TaskA: fix the folder to agree
    manifest_path = runs / run_id("none", "gym:TaskA-v0", 0) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["spec"]["task"] = "gym:Unknown-v0"
    write_json(manifest_path, manifest)
    with pytest.raises(AnalysisError, match="gym:Unknown-v0"):
        collect(matrix, runs)


def test_sample_efficiency_iqm_per_step_and_metric_curves(complete):
    matrix, runs = complete
    result = aggregate(matrix, runs, reps=REPS)
    curves = result.sample_efficiency
    assert sorted(curves["step"].unique()) == list(EVAL_STEPS)
    for method in METHODS:
        for t, step in enumerate(EVAL_STEPS):
            array = np.array([[(eval_returns(method, task, s)[t] - TASKS[task][0]) / (TASKS[task][1] - TASKS[task][0])
                               for task in sorted(TASKS)] for s in SEEDS])
            row = curves[(curves["method"] == method) & (curves["step"] == step)].iloc[0]
            assert row["iqm"] == pytest.approx(rly_metrics.aggregate_iqm(array))
            assert row["low"] - 1e-12 <= row["iqm"] <= row["high"] + 1e-12
    metric_curves = result.metric_curves
    assert set(metric_curves["network"]) == {"actor", "critic"}
    row = metric_curves[(metric_curves["method"] == "none") & (metric_curves["network"] == "critic")
                        & (metric_curves["metric"] == "grama_inactive_ratio@0.025") & (metric_curves["step"] == 2000)]
    # layer "all" only (fc1 rows are twice as large): mean over 3 seeds x 2 tasks of 0.02 + 0.001 * seed
    assert row["mean"].iloc[0] == pytest.approx(0.021) and row["runs"].iloc[0] == 6
    profiles = result.performance_profiles
    assert ((profiles["fraction"] >= 0) & (profiles["fraction"] <= 1)).all()
    assert set(profiles["suite"]) == {SUITE, OVERALL}
    assert profiles.groupby(SCOPE + ["method"])["fraction"].apply(lambda f: f.is_monotonic_decreasing).all()


def test_read_aggregate_round_trip(complete, tmp_path):
    matrix, runs = complete
    written = aggregate(matrix, runs, tmp_path / "agg", reps=REPS)
    read = read_aggregate(tmp_path / "agg")
    pd.testing.assert_frame_equal(read.interval_estimates, written.interval_estimates, check_dtype=False)
    assert read.summary["config_hash"] == matrix["config_hash"] and read.summary["reps"] == REPS


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("aggregate")(aggregate_command)
    app.command("report")(report_command)
    return app


def test_cli_aggregate_user_errors_exit_2_with_one_line(complete, tmp_path):
    matrix, runs = complete
    matrix_path = tmp_path / "matrix.json"
    write_json(matrix_path, matrix)
    shutil.rmtree(runs / run_id("none", "gym:TaskB-v0", 0))
    runner = CliRunner()
    args = ["aggregate", "--matrix", str(matrix_path), "--runs", str(runs), "--out", str(tmp_path / "agg"),
            "--reps", "50"]
    result = runner.invoke(cli_app(), args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "1 of the expected runs are missing" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(cli_app(), args + ["--allow-missing"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "agg" / "missing.csv").exists()
    result = runner.invoke(cli_app(), ["aggregate", "--matrix", str(tmp_path / "nope.json"), "--runs", str(runs),
                                       "--out", str(tmp_path / "agg2")])
    assert result.exit_code == 2 and "matrix file not found" in result.stderr
    result = runner.invoke(cli_app(), args + ["--allow-missing", "--final-window", "2"])
    assert result.exit_code == 2 and "final_window 2.0 is not a fraction of the step budget; valid: 0 to 1" \
        in result.stderr


# ----------------------------------------------------------------------------- overall scope, best baseline

#: three built-ins on two architectures; the user's method only on mlp.
WIDE_CELLS = [(m, a) for m in ("none", "redo", "regrama") for a in ("mlp", "residual")] + [(USER_METHOD, "mlp")]


def score_array(method: str, cells: list[tuple[str, str]]) -> np.ndarray:
    """(num_runs, num_tasks) of ``method`` over (arch, task) cells, seeds as runs."""
    return np.array([[expected_score(method, t, s, a) for a, t in cells] for s in SEEDS])


def test_overall_scope_pools_cells_and_excludes_methods_missing_one(tmp_path):
    matrix, runs = make_runs(tmp_path, WIDE_CELLS)
    result = aggregate(matrix, runs, tmp_path / "agg", reps=REPS, seed=0)
    overall = result.interval_estimates[result.interval_estimates["suite"] == OVERALL]
    assert set(overall["method"]) == {"none", "redo", "regrama"}  # the user's method lacks residual
    cells = sorted((a, t) for a in ("mlp", "residual") for t in TASKS)  # the order of "sac/<arch>/<task>" names
    for method in ("none", "redo", "regrama"):
        rows = overall[overall["method"] == method].set_index("statistic")
        assert rows.loc["iqm", "estimate"] == pytest.approx(rly_metrics.aggregate_iqm(score_array(method, cells)))
        assert rows.loc["iqm", "tasks"] == 4 and rows.loc["iqm", "runs"] == 12
        assert rows.loc["iqm", "low"] <= rows.loc["iqm", "estimate"] <= rows.loc["iqm", "high"]
    summary = json.loads((tmp_path / "agg" / SUMMARY).read_text())["overall"]
    assert summary["cells"] == 4 and summary["methods"] == ["none", "redo", "regrama"]
    assert summary["excluded"] == {USER_METHOD: [f"{SUITE}/sac/residual/{t}" for t in sorted(TASKS)]}
    # Per-scope rows are untouched by pooling: the mlp scope still ranks all four methods.
    mlp = result.interval_estimates[result.interval_estimates["arch"] == "mlp"]
    assert set(mlp["method"]) == {"none", "redo", "regrama", USER_METHOD}
    assert set(result.scores["suite"]) == {SUITE}  # scores.csv holds runs, not the pooled copy


def test_best_baseline_is_highest_iqm_builtin_other_than_itself(tmp_path):
    matrix, runs = make_runs(tmp_path, WIDE_CELLS)
    result = aggregate(matrix, runs, reps=REPS, seed=0)
    poi = result.probability_of_improvement
    mlp = poi[(poi["arch"] == "mlp") & poi["best_baseline"]].set_index("method")["baseline"]
    # IQMs on mlp: regrama > user > redo > none; the user's method is never a baseline.
    assert dict(mlp) == {"none": "regrama", "redo": "regrama", "regrama": "redo", USER_METHOD: "regrama"}
    cells = [("mlp", t) for t in sorted(TASKS)]
    for method, baseline in (("regrama", "redo"), (USER_METHOD, "regrama")):  # hand-checked pairs
        row = poi[(poi["arch"] == "mlp") & (poi["method"] == method) & (poi["baseline"] == baseline)].iloc[0]
        assert row["probability"] == pytest.approx(rly_metrics.probability_of_improvement(
            score_array(method, cells), score_array(baseline, cells)))
        assert row["low"] <= row["probability"] <= row["high"] and row["tasks"] == 2
    # Against none as well; none itself is not compared with none.
    against_none = poi[(poi["arch"] == "mlp") & (poi["baseline"] == "none")]
    assert set(against_none["method"]) == {"redo", "regrama", USER_METHOD}
    assert not against_none["best_baseline"].any()  # none is nobody's best baseline here
    # The pairs stay unique.
    assert not poi.duplicated(SCOPE + ["method", "baseline"]).any()


def test_best_baselines_ties_and_lonely_scopes():
    rows = [{"suite": "s", "algo": "a", "arch": "b", "method": m, "statistic": "iqm", "estimate": v}
            for m, v in (("none", 0.5), ("redo", 0.5), ("x:Y", 0.9))]
    rows.append({"suite": "s", "algo": "a", "arch": "c", "method": "none", "statistic": "iqm", "estimate": 0.1})
    best = best_baselines(pd.DataFrame(rows), builtin={"none", "redo"}).set_index(["arch", "method"])
    assert best.loc[("b", "x:Y"), "best_baseline"] == "none"  # tie: none first
    assert best.loc[("b", "none"), "best_baseline"] == "redo"
    assert best.loc[("c", "none"), "best_baseline"] is None  # no other built-in in the scope
