"""Aggregate run records into rliable statistics (the only module that imports rliable).

A small functional API in rliable's style. Shapes follow rliable's convention: a score
matrix is ``(num_runs, num_tasks)`` where ``num_runs`` are the seeds of one method on
every task, and a curve array is ``(num_runs, num_tasks, num_steps)``.

Definitions used throughout:

- **Final return** of a run: the mean ``return`` of its last ``last_n`` evaluations
  (default 3; fewer when the run has fewer evaluations). Averaging a few evaluations
  removes most of the evaluation noise of a single point without reaching back into
  the learning phase (with the default 10-20 evaluations per run, 3 evaluations are the
  last 15-30% of training).
- **Normalised score**: ``(return - random) / (reference - random)`` with the suite's
  random and reference returns (``plasticity_bench.environments.suites``).
- **Scope**: the columns ``suite, algo, arch``; statistics are computed per scope and
  method, across the tasks of the scope.
- **Missing run**: a run the matrix expects whose folder is absent, whose status is not
  ``completed`` (the reason a failed run recorded is kept), whose manifest disagrees with
  the matrix (its run id, the hash of the full spec, differs), whose records cannot be
  read, or whose eval table is empty or holds a non-finite return.
  Missing runs are an error unless ``allow_missing=True`` (never a silent average over
  fewer seeds). With ``allow_missing`` a method's score matrix is kept rectangular by
  using, for every task, the first ``k`` seeds where ``k`` is the smallest number of
  completed seeds over the method's tasks; the runs left out this way are reported in
  ``missing.csv`` with the reason ``unbalanced``. A task with no completed run of a
  method is left out of that method's matrix (the ``tasks`` column shows it).

- **Overall scope** (``suite = algo = arch = "all"``): every method's runs pooled across
  scopes into one ``(num_runs, num_tasks)`` matrix whose "tasks" are the *cells*
  ``suite/algo/arch/task`` and whose runs are the seeds. Cells differ in normalisation
  only by construction (every score is normalised per task), so pooling them is what
  rliable does across the games of Atari. A method enters the overall scope only if it
  has every cell that any method has (otherwise its IQM would stand on other tasks than
  its rivals'); the methods left out and the cells they lack are listed in
  ``aggregate.json`` under ``overall``. Seeds are trimmed to the smallest per-cell count of
  the method, as ``balance`` does per scope. Sample-efficiency and metric curves have no
  overall scope: step budgets differ between suites.
- **Best baseline** of a method in a scope: the built-in method (a name in
  ``plasticity_bench.registry.METHODS``, ``none`` included) with the highest IQM in that
  scope, other than the method itself; ties go to ``none`` first, then alphabetical
  order. Combinations (``redo+layer_norm``) and user methods (``module:Class`` or entry
  points) are never baselines; they are compared against the best built-in.
  ``probability_of_improvement`` holds one row per compared pair; the column
  ``best_baseline`` is true where ``baseline`` is the method's best baseline.

Bootstrap reproducibility: rliable 1.2.0 draws its bootstrap indices from numpy's
*global* RNG and ignores ``random_state``; every rliable call here is preceded by
``np.random.seed(seed)``, once per (scope, method, kind of estimate), so a method's numbers do
not depend on which other methods are aggregated alongside it.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.stats
from rliable import library as rly
from rliable import metrics as rly_metrics

from plasticity_bench.results import (EVAL, MANIFEST, METRICS, CorruptRecordError, RunRecord, atomic_write_bytes,
                                      write_json)

SCOPE = ["suite", "algo", "arch"]
RUN_COLUMNS = ["run_id", "suite", "algo", "arch", "method", "task", "seed"]
BASELINE = "none"
OVERALL = "all"  # suite, algo and arch of the overall scope
DEFAULT_LAST_N = 3
DEFAULT_REPS = 2000
DEFAULT_CONFIDENCE = 0.95
MISSING_LISTED = 10

#: name -> function of a ``(num_runs, num_tasks)`` matrix returning a scalar.
STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "iqm": rly_metrics.aggregate_iqm,
    "mean": rly_metrics.aggregate_mean,
    "median": rly_metrics.aggregate_median,
    "optimality_gap": rly_metrics.aggregate_optimality_gap,
}

SCORE_COLUMNS = RUN_COLUMNS + ["final_return", "score", "num_evals", "last_step"]
MISSING_COLUMNS = RUN_COLUMNS + ["status", "reason"]
INTERVAL_COLUMNS = SCOPE + ["method", "statistic", "estimate", "low", "high", "runs", "tasks"]
POI_COLUMNS = SCOPE + ["method", "baseline", "best_baseline", "probability", "low", "high", "tasks"]
CURVE_COLUMNS = SCOPE + ["method", "step", "iqm", "low", "high", "runs", "tasks"]
METRIC_CURVE_COLUMNS = SCOPE + ["method", "network", "metric", "step", "mean", "std", "runs"]
PROFILE_COLUMNS = SCOPE + ["method", "tau", "fraction", "low", "high"]

FILES = {
    "scores": "scores.csv",
    "missing": "missing.csv",
    "interval_estimates": "interval_estimates.csv",
    "probability_of_improvement": "probability_of_improvement.csv",
    "sample_efficiency": "sample_efficiency.csv",
    "metric_curves": "metric_curves.csv",
    "performance_profiles": "performance_profiles.csv",
}
SUMMARY = "aggregate.json"

#: ``normaliser(suite, task, returns) -> normalised returns`` (same shape as ``returns``).
Normaliser = Callable[[str, str, np.ndarray], np.ndarray]


class StatsError(Exception):
    """A user-facing problem with the inputs of aggregation (bad matrix, unknown task...)."""


class MissingRunsError(StatsError):
    """Expected runs are missing and ``allow_missing`` was not given.

    ``missing`` holds the full table (columns ``MISSING_COLUMNS``).
    """

    def __init__(self, missing: pd.DataFrame, listed: int = MISSING_LISTED):
        self.missing = missing
        lines = [
            f"{row.run_id} ({row.algo}/{row.arch}/{row.method}/{row.task}/seed {row.seed}: {row.reason})"
            for row in missing.head(listed).itertuples()
        ]
        more = f", ... and {len(missing) - listed} more" if len(missing) > listed else ""
        super().__init__(
            f"{len(missing)} of the expected runs are missing: " + "; ".join(lines) + more
            + " (pass allow_missing / --allow-missing to aggregate without them)"
        )


# ----------------------------------------------------------------------------- inputs


def load_matrix(path: Path) -> dict:
    """Read and check ``matrix.json`` (``{"runs": [...], "dropped": [...], "config", "config_hash"}``)."""
    path = Path(path)
    try:
        matrix = json.loads(path.read_text())
    except FileNotFoundError:
        raise StatsError(f"matrix file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise StatsError(f"matrix file {path} is not valid JSON: {error}") from None
    check_matrix(matrix, source=str(path))
    return matrix


def check_matrix(matrix: Mapping, source: str = "matrix") -> None:
    if not isinstance(matrix, Mapping) or not isinstance(matrix.get("runs"), list):
        raise StatsError(f"{source}: expected an object with a 'runs' list")
    for index, run in enumerate(matrix["runs"]):
        absent = [key for key in RUN_COLUMNS if key not in run]
        if absent:
            raise StatsError(f"{source}: run #{index} lacks {', '.join(absent)}")
    ids = [run["run_id"] for run in matrix["runs"]]
    if len(set(ids)) != len(ids):
        raise StatsError(f"{source}: run ids are not unique")


def suite_normaliser() -> Normaliser:
    """The default normaliser: each run's suite file (``environments/suites``), cached per suite."""
    from plasticity_bench.environments import suites  # imported late: it is data, not stats

    cache: dict[str, object] = {}

    def normalise(suite: str, task: str, returns: np.ndarray) -> np.ndarray:
        if suite not in cache:
            try:
                cache[suite] = suites.load_suite(suite)
            except Exception as error:  # unknown suite / unreadable file: a user error
                raise StatsError(f"cannot load suite {suite!r}: {error}") from None
        try:
            return np.asarray(cache[suite].normalise(task, returns), dtype=float)
        except Exception as error:
            raise StatsError(f"cannot normalise task {task!r} of suite {suite!r}: {error}") from None

    return normalise


def final_return(eval_frame: pd.DataFrame, last_n: int = DEFAULT_LAST_N) -> float:
    """Mean ``return`` of the last ``last_n`` evaluations (by step) of one run."""
    ordered = eval_frame.sort_values("step")
    return float(ordered["return"].tail(last_n).mean())


def _check_run(record: RunRecord, expected: Mapping) -> tuple[str | None, str]:
    """(status, reason) -- reason is '' for a run that can be scored.

    A record is the expected run only if its run id (a hash of the full spec: budget,
    hyperparameters, options) is the matrix's; a record trained with other settings in
    the run's folder is refused, naming what differs."""
    if not record.dir.is_dir():
        return None, "no run folder"
    if not record.exists:
        return None, f"no {MANIFEST}"
    try:
        manifest = record.manifest()
    except CorruptRecordError as error:
        return None, f"unreadable record: {error}"
    status = manifest.get("status")
    spec = manifest.get("spec") or {}
    if manifest.get("run_id") != expected["run_id"]:
        differ = [f"{key} {spec[key]!r}, matrix {expected[key]!r}" for key in ("algo", "arch", "method", "task",
                                                                           "seed", "steps")
                  if key in spec and key in expected and spec[key] != expected[key]]
        return status, (f"manifest run_id {manifest.get('run_id')!r} but matrix expects {expected['run_id']!r} ("
                        + ("; ".join(differ) or "other hyperparameters or options") + ")")
    if status != "completed":
        error = manifest.get("error")
        return status, f"status {status}" + (f": {error}" if error else "")
    for key in ("algo", "arch", "method", "task", "seed", "steps"):
        if key in spec and key in expected and spec[key] != expected[key]:
            return status, f"manifest {key}={spec[key]!r} but matrix expects {expected[key]!r}"
    return status, ""


def _read_evals(record: RunRecord) -> tuple[pd.DataFrame | None, str]:
    """(eval table, '') of a scorable run, or (None, reason); the metrics table must be
    readable too (only its footer is read here; the curves read it later)."""
    try:
        evals = record.eval()
    except CorruptRecordError as error:
        return None, f"unreadable record: {error}"
    if evals.empty:
        return None, "empty eval"
    if not np.isfinite(evals["return"].to_numpy(float)).all():
        return None, f"non-finite return in {EVAL}"
    metrics = record.dir / METRICS
    if metrics.exists():
        try:
            pq.read_metadata(metrics)
        except Exception as error:  # pyarrow raises several types for a damaged file
            return None, f"unreadable record: {metrics} is unreadable: {type(error).__name__}: {error}"
    return evals, ""


def collect(
    matrix: Mapping,
    runs_dir: Path,
    *,
    last_n: int = DEFAULT_LAST_N,
    normaliser: Normaliser | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Final scores of the matrix's runs, and the expected runs that cannot be scored.

    Returns:
      scores: one row per scorable run, columns ``SCORE_COLUMNS`` (``final_return`` raw,
        ``score`` normalised by the suite).
      missing: one row per expected run without a folder, not ``completed``, whose
        manifest disagrees with the matrix, or with an empty eval; columns
        ``MISSING_COLUMNS``.
    """
    check_matrix(matrix)
    normaliser = normaliser or suite_normaliser()
    runs_dir = Path(runs_dir)
    scored, missing = [], []
    for run in matrix["runs"]:
        keys = {key: run[key] for key in RUN_COLUMNS}
        record = RunRecord(runs_dir / run["run_id"])
        status, reason = _check_run(record, run)
        if not reason:
            evals, reason = _read_evals(record)
        if reason:
            missing.append({**keys, "status": status, "reason": reason})
            continue
        raw = final_return(evals, last_n)
        score = float(np.asarray(normaliser(run["suite"], run["task"], np.array([raw])))[0])
        scored.append({**keys, "final_return": raw, "score": score,
                       "num_evals": len(evals), "last_step": int(evals["step"].max())})
    scores = pd.DataFrame(scored, columns=SCORE_COLUMNS)
    return _sorted(scores), _sorted(pd.DataFrame(missing, columns=MISSING_COLUMNS))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(RUN_COLUMNS[1:] + ["run_id"], kind="stable").reset_index(drop=True)


def balance(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trim each (scope, method) to the same number of seeds on every task.

    Returns (kept scores, left-out rows with ``MISSING_COLUMNS``). For every task the
    lowest ``k`` seeds are kept, ``k`` = the smallest completed-seed count over the tasks.
    """
    kept, left_out = [], []
    for _, group in scores.groupby(SCOPE + ["method"], sort=True):
        per_task = {task: rows.sort_values("seed") for task, rows in group.groupby("task")}
        k = min(len(rows) for rows in per_task.values())
        for task, rows in per_task.items():
            kept.append(rows.head(k))
            for row in rows.iloc[k:].itertuples():
                left_out.append({**{c: getattr(row, c) for c in RUN_COLUMNS}, "status": "completed",
                                 "reason": f"unbalanced: method has only {k} seed(s) on another task"})
    kept_frame = pd.concat(kept) if kept else scores.iloc[:0]
    return _sorted(kept_frame), pd.DataFrame(left_out, columns=MISSING_COLUMNS)


def score_matrix(scores: pd.DataFrame, value: str = "score") -> tuple[np.ndarray, list[str]]:
    """Score matrix of one (scope, method): ``(num_runs, num_tasks)`` and the task order.

    ``scores`` must be balanced (same number of runs per task); runs are ordered by seed.
    """
    tasks = sorted(scores["task"].unique())
    columns = [scores[scores["task"] == task].sort_values("seed")[value].to_numpy(float) for task in tasks]
    if len({len(column) for column in columns}) > 1:
        raise StatsError("score matrix is not rectangular; call balance() first")
    return np.stack(columns, axis=1), tasks


def _scopes(scores: pd.DataFrame) -> Iterable[tuple[tuple, pd.DataFrame]]:
    for scope, group in scores.groupby(SCOPE, sort=True):
        yield scope, group


def _method_order(methods: Iterable[str]) -> list[str]:
    methods = sorted(set(methods))
    return ([BASELINE] if BASELINE in methods else []) + [m for m in methods if m != BASELINE]


# ----------------------------------------------------------------------------- statistics


def interval_estimates(
    scores: pd.DataFrame,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """IQM, mean, median and optimality gap with stratified-bootstrap percentile CIs.

    Args:
      scores: balanced final scores (``collect`` then ``balance``).
    Returns:
      One row per (scope, method, statistic), columns ``INTERVAL_COLUMNS``; ``runs`` is the
      number of runs, ``tasks`` the number of tasks of the ``(num_runs, num_tasks)`` matrix.
    """
    names = list(STATISTICS)

    def all_statistics(x: np.ndarray) -> np.ndarray:
        return np.array([STATISTICS[name](x) for name in names])

    rows = []
    for scope, group in _scopes(scores):
        for method in _method_order(group["method"]):
            matrix, tasks = score_matrix(group[group["method"] == method])
            # One bootstrap for the four statistics (rliable's usual pattern): same resamples.
            np.random.seed(seed)
            point, interval = rly.get_interval_estimates(
                {method: matrix}, all_statistics, reps=reps, confidence_interval_size=confidence)
            for i, name in enumerate(names):
                rows.append({**dict(zip(SCOPE, scope)), "method": method, "statistic": name,
                             "estimate": float(point[method][i]),
                             "low": float(interval[method][0, i]), "high": float(interval[method][1, i]),
                             "runs": int(matrix.size), "tasks": len(tasks)})
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


def builtin_methods() -> set[str]:
    """Names that can be a best baseline: the methods registered in ``registry.METHODS``."""
    from plasticity_bench import registry  # a name table only; no heavy imports

    return set(registry.METHODS)


def best_baselines(intervals: pd.DataFrame, builtin: Iterable[str] | None = None) -> pd.DataFrame:
    """Per (scope, method): the highest-IQM built-in method of the scope other than itself.

    Args:
      intervals: ``interval_estimates`` output (uses the ``iqm`` rows).
      builtin: names that may be a baseline (default ``builtin_methods()``).
    Returns:
      Columns ``SCOPE + [method, best_baseline]``; ``best_baseline`` is None where the scope
      has no other built-in method.
    """
    builtin = builtin_methods() if builtin is None else set(builtin)
    iqm = intervals[intervals["statistic"] == "iqm"]
    rows = []
    for scope, group in iqm.groupby(SCOPE, sort=True):
        estimates = dict(zip(group["method"], group["estimate"]))
        # Stable sort on -IQM after the fixed method order: ties go to none, then alphabetical.
        candidates = sorted((m for m in _method_order(estimates) if m in builtin), key=lambda m: -estimates[m])
        for method in _method_order(estimates):
            best = next((m for m in candidates if m != method), None)
            rows.append({**dict(zip(SCOPE, scope)), "method": method, "best_baseline": best})
    return pd.DataFrame(rows, columns=SCOPE + ["method", "best_baseline"])


def comparisons(scores: pd.DataFrame, best: pd.DataFrame | None = None, baseline: str = BASELINE) -> pd.DataFrame:
    """The (scope, method, baseline) pairs to compare: every method against ``baseline``
    (where the scope has it) and, given ``best`` (``best_baselines``), against its best baseline.

    Returns columns ``SCOPE + [method, baseline, best_baseline]`` without duplicate pairs.
    """
    rows = []
    best_of = {} if best is None else {
        (*scope, method): b for *scope, method, b in best[SCOPE + ["method", "best_baseline"]].itertuples(index=False)}
    for scope, group in _scopes(scores):
        present = set(group["method"])
        for method in _method_order(present):
            best_name = best_of.get((*scope, method))
            pairs = []
            if baseline in present and method != baseline:
                pairs.append(baseline)
            if best_name is not None and best_name not in pairs:
                pairs.append(best_name)
            for other in pairs:
                rows.append({**dict(zip(SCOPE, scope)), "method": method, "baseline": other,
                             "best_baseline": other == best_name})
    return pd.DataFrame(rows, columns=SCOPE + ["method", "baseline", "best_baseline"])


def probability_of_improvement(
    scores: pd.DataFrame,
    *,
    baseline: str = BASELINE,
    pairs: pd.DataFrame | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """P(method > baseline), averaged over the tasks both share, with bootstrap CIs.

    Each method's ``(num_runs_x, num_tasks)`` and the baseline's ``(num_runs_y, num_tasks)``
    matrices are resampled independently (rliable's ``StratifiedIndependentBootstrap``).

    Args:
      pairs: the pairs to compare (``comparisons``); default every method against
        ``baseline`` (scopes without it produce no rows).
    """
    pairs = comparisons(scores, baseline=baseline) if pairs is None else pairs
    rows = []
    groups = dict(_scopes(scores))
    for pair in pairs.itertuples(index=False):
        scope = tuple(getattr(pair, column) for column in SCOPE)
        group = groups.get(scope)
        if group is None:
            continue
        candidate = group[group["method"] == pair.method]
        reference = group[group["method"] == pair.baseline]
        common = sorted(set(candidate["task"]) & set(reference["task"]))
        if not common:
            continue
        x, _ = score_matrix(candidate[candidate["task"].isin(common)])
        y, _ = score_matrix(reference[reference["task"].isin(common)])
        np.random.seed(seed)
        point, interval = rly.get_interval_estimates(
            {pair.method: (x, y)}, lambda a, b: np.array([rly_metrics.probability_of_improvement(a, b)]),
            reps=reps, confidence_interval_size=confidence)
        rows.append({**dict(zip(SCOPE, scope)), "method": pair.method, "baseline": pair.baseline,
                     "best_baseline": bool(pair.best_baseline),
                     "probability": float(point[pair.method][0]),
                     "low": float(interval[pair.method][0, 0]), "high": float(interval[pair.method][1, 0]),
                     "tasks": len(common)})
    return pd.DataFrame(rows, columns=POI_COLUMNS)


def overall_scores(scores: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The overall scope: scores pooled across scopes, one "task" per cell ``suite/algo/arch/task``.

    Args:
      scores: balanced per-scope scores.
    Returns:
      (scores of the overall scope with ``suite = algo = arch = OVERALL``, balanced; a
      summary ``{"cells", "methods", "excluded": {method: [missing cells]}, "trimmed_runs"}``).
      Only methods with every cell enter (see the module docstring).
    """
    if scores.empty:
        return scores.iloc[:0].copy(), {"cells": 0, "methods": [], "excluded": {}, "trimmed_runs": 0}
    pooled = scores.copy()
    pooled["task"] = pooled["suite"] + "/" + pooled["algo"] + "/" + pooled["arch"] + "/" + pooled["task"]
    pooled[SCOPE] = OVERALL
    cells = set(pooled["task"])
    by_method = {method: set(group["task"]) for method, group in pooled.groupby("method")}
    excluded = {method: sorted(cells - have) for method, have in by_method.items() if have != cells}
    pooled = pooled[~pooled["method"].isin(excluded)]
    kept, trimmed = balance(pooled) if len(pooled) else (pooled, pooled.iloc[:0])
    summary = {"cells": len(cells), "methods": _method_order(kept["method"]),
               "excluded": {m: excluded[m] for m in _method_order(excluded)}, "trimmed_runs": len(trimmed)}
    return kept, summary


def performance_profiles(
    scores: pd.DataFrame,
    *,
    num_taus: int = 51,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """Run-score distributions: fraction of runs with normalised score > tau, with CIs.

    The tau grid is shared by the methods of a scope: ``num_taus`` points from
    ``min(0, lowest score)`` to ``max(1, highest score)``.
    """
    rows = []
    for scope, group in _scopes(scores):
        low = min(0.0, float(group["score"].min()))
        high = max(1.0, float(group["score"].max()))
        taus = np.linspace(low, high, num_taus)
        for method in _method_order(group["method"]):
            matrix, _ = score_matrix(group[group["method"] == method])
            np.random.seed(seed)
            profiles, cis = rly.create_performance_profile(
                {method: matrix}, taus, reps=reps, confidence_interval_size=confidence)
            for i, tau in enumerate(taus):
                rows.append({**dict(zip(SCOPE, scope)), "method": method, "tau": float(tau),
                             "fraction": float(profiles[method][i]),
                             "low": float(cis[method][0, i]), "high": float(cis[method][1, i])})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def eval_curves(scores: pd.DataFrame, runs_dir: Path, normaliser: Normaliser | None = None) -> pd.DataFrame:
    """Normalised eval returns of the scored runs: columns ``RUN_COLUMNS + [step, return, score]``."""
    normaliser = normaliser or suite_normaliser()
    frames = []
    for row in scores.itertuples():
        evals = RunRecord(Path(runs_dir) / row.run_id).eval()[["step", "return"]]
        evals = evals.groupby("step", as_index=False)["return"].mean()
        evals["score"] = normaliser(row.suite, row.task, evals["return"].to_numpy(float))
        for column in RUN_COLUMNS:
            evals[column] = getattr(row, column)
        frames.append(evals)
    columns = RUN_COLUMNS + ["step", "return", "score"]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)


def sample_efficiency(
    curves: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """IQM of normalised return at each eval step, with stratified-bootstrap CIs.

    Uses the balanced runs of ``scores`` and, per scope, the eval steps that every one of
    those runs has (so all methods of a scope are compared at the same steps). The array
    passed to rliable is ``(num_runs, num_tasks, num_steps)``.
    """
    rows = []
    curves = curves[curves["run_id"].isin(scores["run_id"])]
    for scope, group in _scopes(scores):
        runs = curves[curves["run_id"].isin(group["run_id"])]
        step_sets = [set(frame["step"]) for _, frame in runs.groupby("run_id")]
        steps = sorted(set.intersection(*step_sets)) if step_sets else []
        if not steps:
            warnings.warn(f"scope {'/'.join(map(str, scope))}: its runs share no eval step; "
                          "no sample-efficiency curve", stacklevel=2)
            continue
        wide = runs.pivot_table(index="run_id", columns="step", values="score")[steps]

        def iqm_per_step(x: np.ndarray) -> np.ndarray:
            # rliable's aggregate_iqm (scipy trim_mean over all runs and tasks) of every step,
            # in one vectorised call instead of one call per step.
            return scipy.stats.trim_mean(x.reshape(-1, x.shape[-1]), proportiontocut=0.25, axis=0)

        for method in _method_order(group["method"]):
            selected = group[group["method"] == method]
            tasks = sorted(selected["task"].unique())
            per_task = [wide.loc[selected[selected["task"] == task].sort_values("seed")["run_id"]].to_numpy(float)
                        for task in tasks]
            array = np.stack(per_task, axis=1)  # (num_runs, num_tasks, num_steps)
            np.random.seed(seed)
            point, interval = rly.get_interval_estimates(
                {method: array}, iqm_per_step, reps=reps, confidence_interval_size=confidence)
            for t, step in enumerate(steps):
                rows.append({**dict(zip(SCOPE, scope)), "method": method, "step": int(step),
                             "iqm": float(point[method][t]), "low": float(interval[method][0, t]),
                             "high": float(interval[method][1, t]),
                             "runs": int(array.shape[0] * array.shape[1]), "tasks": len(tasks)})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def metric_curves(scores: pd.DataFrame, runs_dir: Path, layer: str = "all") -> pd.DataFrame:
    """Mean (and std) over runs of every monitored metric at ``layer`` per network and step.

    Each run first contributes its own mean per (network, metric, step); the mean and
    standard deviation are then taken over the scope's runs (seeds and tasks) of a method.
    """
    frames = []
    for row in scores.itertuples():
        frame = RunRecord(Path(runs_dir) / row.run_id).metrics()
        frame = frame[frame["layer"] == layer]
        if frame.empty:
            continue
        frame = frame.groupby(["network", "metric", "step"], as_index=False)["value"].mean()
        for column in RUN_COLUMNS:
            frame[column] = getattr(row, column)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=METRIC_CURVE_COLUMNS)
    long = pd.concat(frames)
    grouped = long.groupby(SCOPE + ["method", "network", "metric", "step"], sort=True)["value"]
    out = grouped.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                      runs="count").reset_index()
    out["step"] = out["step"].astype(int)
    return out[METRIC_CURVE_COLUMNS]


# ----------------------------------------------------------------------------- pipeline


@dataclass
class Aggregate:
    """Everything ``aggregate`` computes; each table is one CSV of the aggregate dir."""

    scores: pd.DataFrame
    missing: pd.DataFrame
    interval_estimates: pd.DataFrame
    probability_of_improvement: pd.DataFrame
    sample_efficiency: pd.DataFrame
    metric_curves: pd.DataFrame
    performance_profiles: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in FILES}


def aggregate(
    matrix: Mapping,
    runs_dir: Path,
    out_dir: Path | None = None,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    allow_missing: bool = False,
    last_n: int = DEFAULT_LAST_N,
    normaliser: Normaliser | None = None,
) -> Aggregate:
    """Collect, check for missing runs, compute every statistic, write ``out_dir`` if given.

    Raises:
      MissingRunsError: expected runs are missing and ``allow_missing`` is False (nothing
        is written then).
      StatsError: no run at all can be scored, or the inputs are malformed.
    """
    normaliser = normaliser or suite_normaliser()
    scores, missing = collect(matrix, runs_dir, last_n=last_n, normaliser=normaliser)
    if len(missing) and not allow_missing:
        raise MissingRunsError(missing)
    if scores.empty:
        raise StatsError(f"none of the {len(matrix['runs'])} expected runs can be scored")
    scores, unbalanced = balance(scores)
    if len(unbalanced):
        missing = _sorted(pd.concat([missing, unbalanced]) if len(missing) else unbalanced)
    options = dict(reps=reps, seed=seed, confidence=confidence)
    overall, overall_summary = overall_scores(scores)
    # The overall scope is one more scope of the score-based statistics (not of the curves).
    scoped = pd.concat([scores, overall]) if len(overall) else scores
    intervals = interval_estimates(scoped, **options)
    pairs = comparisons(scoped, best_baselines(intervals))
    result = Aggregate(
        scores=scores,
        missing=missing,
        interval_estimates=intervals,
        probability_of_improvement=probability_of_improvement(scoped, pairs=pairs, **options),
        sample_efficiency=sample_efficiency(eval_curves(scores, runs_dir, normaliser), scores, **options),
        metric_curves=metric_curves(scores, runs_dir),
        performance_profiles=performance_profiles(scoped, **options),
        summary={
            "overall": overall_summary,
            "builtin_methods": sorted(builtin_methods()),
            "config_hash": matrix.get("config_hash"),
            "config": matrix.get("config"),
            "reps": reps, "seed": seed, "confidence": confidence, "last_n": last_n,
            "allow_missing": allow_missing, "baseline": BASELINE,
            "expected_runs": len(matrix["runs"]), "scored_runs": len(scores),
            "missing_runs": len(missing),
            "run_ids": scores["run_id"].tolist(),
            "dropped": matrix.get("dropped", []),
            "rliable": _version("rliable"),
        },
    )
    if out_dir is not None:
        write_aggregate(result, out_dir)
    return result


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def write_aggregate(result: Aggregate, out_dir: Path) -> dict[str, Path]:
    """Write every table as CSV (each atomically) and ``aggregate.json`` last.

    ``aggregate.json`` is the completion marker: a reader that finds it finds the tables of
    the same aggregation next to it.
    """
    out_dir = Path(out_dir)
    paths = {}
    (out_dir / SUMMARY).unlink(missing_ok=True)
    for name, table in result.tables().items():
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        paths[name] = out_dir / FILES[name]
        atomic_write_bytes(paths[name], buffer.getvalue().encode())
    paths["summary"] = out_dir / SUMMARY
    write_json(paths["summary"], result.summary)
    return paths


def read_aggregate(out_dir: Path) -> Aggregate:
    """Read an aggregate dir written by ``write_aggregate``."""
    out_dir = Path(out_dir)
    if not (out_dir / SUMMARY).exists():
        raise StatsError(f"{out_dir} is not a finished aggregate (no {SUMMARY})")
    tables = {}
    for name, file in FILES.items():
        path = out_dir / file
        if not path.exists():
            raise StatsError(f"aggregate {out_dir} lacks {file}")
        tables[name] = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return Aggregate(**tables, summary=json.loads((out_dir / SUMMARY).read_text()))

