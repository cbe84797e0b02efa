"""rliable interval estimates of balanced scores (the only module that calls rliable), and the
bootstrap CIs of the curves' means (``mean_intervals``).

Every estimate goes through ``bootstrap_each_method``: per scope, per method (or per
compared pair), the method's rliable array (``(num_runs, num_tasks)`` score matrix, or
``(num_runs, num_tasks, num_steps)`` for curves; see ``scores.run_matrix``), then one
``rliable.library.get_interval_estimates`` call with a stratified bootstrap and percentile CIs.

Bootstrap reproducibility: rliable 1.2.0 draws its bootstrap indices from numpy's
*global* RNG and ignores ``random_state``; ``bootstrap_each_method`` calls
``np.random.seed(seed)`` right before every rliable call, once per (scope, method, kind of
estimate), so a method's numbers do not depend on which other methods are aggregated
alongside it, and a reader reproduces any row with::

    np.random.seed(seed)
    rliable.library.get_interval_estimates({method: matrix}, statistic, reps=reps,
                                           confidence_interval_size=confidence)

The resampled indices depend only on the matrix's shape and the seed, so the IQM's
interval is the same whether the statistic returns the IQM alone or with the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import scipy.stats
from rliable import library as rly
from rliable import metrics as rly_metrics

from plasticity_bench.analysis.baselines import comparisons
from plasticity_bench.analysis.scores import run_matrix
from plasticity_bench.analysis.vocabulary import (AUC_STATISTIC, BASELINE, CURVE_COLUMNS, INTERVAL_COLUMNS,
                                                  METRIC_CURVE_COLUMNS, POI_COLUMNS, PROFILE_COLUMNS, SCOPE,
                                                  STATISTIC_NAMES, TASK_CURVE_COLUMNS, in_scopes, method_order,
                                                  scopes)

DEFAULT_REPS = 2000
DEFAULT_CONFIDENCE = 0.95

#: name (``vocabulary.STATISTIC_NAMES``) -> function of a ``(num_runs, num_tasks)`` matrix returning a scalar.
#: P(a run of x beats a run of y), averaged over tasks (rliable's, for two run arrays).
IMPROVEMENT_PROBABILITY: Callable[[np.ndarray, np.ndarray], float] = rly_metrics.probability_of_improvement
STATISTICS: dict[str, Callable[[np.ndarray], float]] = dict(zip(STATISTIC_NAMES, (
    rly_metrics.aggregate_iqm, rly_metrics.aggregate_mean, rly_metrics.aggregate_median,
    rly_metrics.aggregate_optimality_gap)))


def final_scores(task_rows: pd.DataFrame) -> np.ndarray:
    """The runs' normalised final scores: the default entries of a score matrix."""
    return task_rows["score"].to_numpy(float)


@dataclass(frozen=True)
class Estimate:
    """One rliable call's result: ``point``, ``low`` and ``high`` have the statistic's shape (a vector)."""

    scope: tuple
    method: str
    baseline: str | None  # the method compared with (probability of improvement), else None
    tasks: list[str]
    runs: int  # num_runs x num_tasks of the method's array
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bootstrap_each_method(
    scores: pd.DataFrame,
    statistic: Callable[[tuple, pd.DataFrame], Callable[..., np.ndarray]],
    *,
    reps: int,
    seed: int,
    confidence: float,
    values: Callable[[pd.DataFrame], np.ndarray] = final_scores,
    pairs: pd.DataFrame | None = None,
) -> Iterator[Estimate]:
    """The one loop behind every estimate: each scope, each method, one seeded rliable call.

    Args:
      scores: balanced runs (``RUN_COLUMNS`` and whatever ``values`` reads).
      statistic: ``statistic(scope, scope_rows)`` returns the function of the rliable array
        (or of the pair of arrays, with ``pairs``) to estimate in that scope.
      values: the entries of the array per task (``scores.run_matrix``); default the final scores.
      pairs: ``SCOPE + [method, baseline]`` rows: estimate the statistic of the pair of
        arrays (method, baseline) on the tasks both have, each resampled independently.
        Default: every method of a scope alone, in ``method_order``.
    """
    for scope, group in scopes(scores):
        function = statistic(scope, group)
        if pairs is None:
            units = [(method, None) for method in method_order(group["method"])]
        else:
            in_scope = (pairs[SCOPE] == pd.Series(scope, index=SCOPE)).all(axis=1)
            units = list(pairs.loc[in_scope, ["method", "baseline"]].itertuples(index=False, name=None))
        for method, baseline in units:
            rows = group[group["method"] == method]
            if baseline is None:
                data, tasks = run_matrix(rows, values)
                shape = data.shape
            else:
                other = group[group["method"] == baseline]
                tasks = sorted(set(rows["task"]) & set(other["task"]))
                if not tasks:
                    continue
                x, _ = run_matrix(rows[rows["task"].isin(tasks)], values)
                y, _ = run_matrix(other[other["task"].isin(tasks)], values)
                data, shape = (x, y), x.shape
            point, low, high = seeded_interval(data, function, reps=reps, seed=seed, confidence=confidence)
            yield Estimate(scope, method, baseline, tasks, int(shape[0] * shape[1]), point, low, high)


def seeded_interval(data: np.ndarray | list[np.ndarray], function: Callable[..., np.ndarray], *, reps: int,
                    seed: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, low, high) of ``function`` of one rliable array (or of a list of arrays, each
    resampled independently): the single rliable call every estimate makes, numpy's global
    RNG seeded right before it (see the module docstring)."""
    np.random.seed(seed)
    point, interval = rly.get_interval_estimates({"x": data}, function, reps=reps,
                                                 confidence_interval_size=confidence)
    return point["x"], interval["x"][0], interval["x"][1]


def _scope_columns(scope: tuple) -> dict:
    return dict(zip(SCOPE, scope))


def interval_estimates(scores: pd.DataFrame, *, reps: int = DEFAULT_REPS, seed: int = 0,
                       confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """IQM, mean, median and optimality gap with stratified-bootstrap percentile CIs.

    Returns one row per (scope, method, statistic), columns ``INTERVAL_COLUMNS``; ``runs`` is
    the number of runs times tasks, ``tasks`` the number of tasks of the score matrix.
    """
    names = list(STATISTICS)

    def all_statistics(x: np.ndarray) -> np.ndarray:
        # One bootstrap for the four statistics (rliable's usual pattern): same resamples.
        return np.array([STATISTICS[name](x) for name in names])

    rows = []
    for estimate in bootstrap_each_method(scores, lambda scope, group: all_statistics,
                                          reps=reps, seed=seed, confidence=confidence):
        for i, name in enumerate(names):
            rows.append({**_scope_columns(estimate.scope), "method": estimate.method, "statistic": name,
                         "estimate": float(estimate.point[i]), "low": float(estimate.low[i]),
                         "high": float(estimate.high[i]), "runs": estimate.runs, "tasks": len(estimate.tasks)})
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


def auc_interval_estimates(scores: pd.DataFrame, *, reps: int = DEFAULT_REPS, seed: int = 0,
                           confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """IQM of the runs' learning-curve areas (column ``auc``) with its CI: ``INTERVAL_COLUMNS``
    rows whose statistic is ``AUC_STATISTIC``."""
    rows = []
    def iqm(x: np.ndarray) -> np.ndarray:
        return np.array([STATISTICS["iqm"](x)])

    for estimate in bootstrap_each_method(scores, lambda scope, group: iqm,
                                          values=lambda task_rows: task_rows["auc"].to_numpy(float),
                                          reps=reps, seed=seed, confidence=confidence):
        rows.append({**_scope_columns(estimate.scope), "method": estimate.method, "statistic": AUC_STATISTIC,
                     "estimate": float(estimate.point[0]), "low": float(estimate.low[0]),
                     "high": float(estimate.high[0]), "runs": estimate.runs, "tasks": len(estimate.tasks)})
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


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
      pairs: the pairs to compare (``baselines.comparisons``); default every method against
        ``baseline`` (scopes without it produce no rows).
    """
    pairs = comparisons(scores, baseline=baseline) if pairs is None else pairs
    best = {tuple(key): flag for *key, flag in
            pairs[SCOPE + ["method", "baseline", "best_baseline"]].itertuples(index=False, name=None)}

    def probability(scope: tuple, group: pd.DataFrame):
        return lambda x, y: np.array([IMPROVEMENT_PROBABILITY(x, y)])

    rows = []
    for estimate in bootstrap_each_method(scores, probability, reps=reps, seed=seed, confidence=confidence,
                                          pairs=pairs):
        rows.append({**_scope_columns(estimate.scope), "method": estimate.method, "baseline": estimate.baseline,
                     "best_baseline": bool(best[(*estimate.scope, estimate.method, estimate.baseline)]),
                     "probability": float(estimate.point[0]), "low": float(estimate.low[0]),
                     "high": float(estimate.high[0]), "tasks": len(estimate.tasks)})
    return pd.DataFrame(rows, columns=POI_COLUMNS)


def performance_profiles(scores: pd.DataFrame, *, num_taus: int = 51, reps: int = DEFAULT_REPS, seed: int = 0,
                         confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Run-score distributions: fraction of runs with normalised score > tau, with CIs.

    The tau grid is shared by the methods of a scope: ``num_taus`` points from
    ``min(0, lowest score)`` to ``max(1, highest score)``. The statistic is rliable's
    ``score_distributions``, as ``rliable.library.create_performance_profile`` computes it.
    """
    taus = {scope: np.linspace(min(0.0, float(group["score"].min())), max(1.0, float(group["score"].max())),
                               num_taus) for scope, group in scopes(scores)}

    def profile(scope: tuple, group: pd.DataFrame):
        return lambda x: rly.score_distributions(x, taus[scope])

    rows = []
    for estimate in bootstrap_each_method(scores, profile, reps=reps, seed=seed, confidence=confidence):
        for i, tau in enumerate(taus[estimate.scope]):
            rows.append({**_scope_columns(estimate.scope), "method": estimate.method, "tau": float(tau),
                         "fraction": float(estimate.point[i]), "low": float(estimate.low[i]),
                         "high": float(estimate.high[i])})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def _iqm_per_step(x: np.ndarray) -> np.ndarray:
    # rliable's aggregate_iqm (scipy trim_mean over all runs and tasks) of every step of a
    # (num_runs, num_tasks, num_steps) array, in one vectorised call instead of one per step.
    return scipy.stats.trim_mean(x.reshape(-1, x.shape[-1]), proportiontocut=0.25, axis=0)


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
    curves = curves[curves["run_id"].isin(scores["run_id"])]
    wide, steps = {}, {}  # per scope: run_id x shared step table, and those steps
    for scope, group in scopes(scores):
        runs = curves[curves["run_id"].isin(group["run_id"])]
        step_sets = [set(frame["step"]) for _, frame in runs.groupby("run_id")]
        shared = sorted(set.intersection(*step_sets)) if step_sets else []
        if not shared:
            warnings.warn(f"scope {'/'.join(map(str, scope))}: its runs share no eval step; "
                          "no sample-efficiency curve", stacklevel=2)
            continue
        steps[scope] = shared
        wide[scope] = runs.pivot_table(index="run_id", columns="step", values="score")[shared]

    def curve_of_runs(task_rows: pd.DataFrame) -> np.ndarray:
        scope = tuple(task_rows.iloc[0][SCOPE])
        return wide[scope].loc[task_rows["run_id"]].to_numpy(float)

    with_curves = scores[in_scopes(scores, wide)]
    rows = []
    for estimate in bootstrap_each_method(with_curves, lambda scope, group: _iqm_per_step, values=curve_of_runs,
                                          reps=reps, seed=seed, confidence=confidence):
        for t, step in enumerate(steps[estimate.scope]):
            rows.append({**_scope_columns(estimate.scope), "method": estimate.method, "step": int(step),
                         "iqm": float(estimate.point[t]), "low": float(estimate.low[t]),
                         "high": float(estimate.high[t]), "runs": estimate.runs, "tasks": len(estimate.tasks)})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


#: Bootstrap means computed at once per chunk of curve points: bounds memory to reps x runs x this.
_POINTS_PER_CHUNK = 256


def _stratified_indices(strata: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, runs) resampled run indices: each stratum's runs drawn with replacement among
    themselves, as rliable's stratified bootstrap resamples each task's runs."""
    columns = []
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        columns.append(members[rng.integers(0, len(members), size=(reps, len(members)))])
    return np.concatenate(columns, axis=1)


def mean_intervals(long: pd.DataFrame, groups: list[str], points: list[str], *, value: str = "value",
                   reps: int = DEFAULT_REPS, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Mean over runs of ``value`` at every point of a curve, with a percentile bootstrap CI.

    Per ``groups`` (e.g. scope and method) the runs' values form a (runs x points) array
    (``points`` e.g. network, metric, step; a run without a point is left out of that point's
    mean). Each group draws ``reps`` stratified resamples of its runs (strata: tasks, as
    rliable's ``StratifiedBootstrap``) from ``numpy.random.default_rng(seed)``, so a group's
    interval does not depend on the other groups, and the interval is the percentile
    interval of the resampled means. This is a vectorised numpy bootstrap rather than
    rliable's: rliable needs a rectangular (runs, tasks, points) array, while curve points
    differ between runs, and its per-replicate Python loop would cost minutes for ~40
    metrics x ~10 steps x ~80 runs.

    Returns ``groups + points + [mean, low, high, std, runs]`` (``std`` over runs, ddof 1;
    ``runs`` the number of runs at the point).
    """
    rows = []
    tail = (1 - confidence) / 2 * 100
    for key, frame in long.groupby(groups, sort=True):
        wide = frame.pivot_table(index=["run_id", "task"], columns=points, values=value, aggfunc="mean",
                                 dropna=False)
        values = wide.to_numpy(float)
        present = ~np.isnan(values)
        filled = np.where(present, values, 0.0)
        indices = _stratified_indices(wide.index.get_level_values("task").to_numpy(), reps,
                                      np.random.default_rng(seed))
        low, high = np.empty(values.shape[1]), np.empty(values.shape[1])
        # A resample may hold none of a point's runs (NaN mean, skipped by nanpercentile).
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for start in range(0, values.shape[1], _POINTS_PER_CHUNK):
                chunk = slice(start, start + _POINTS_PER_CHUNK)
                means = filled[indices, chunk].sum(axis=1) / present[indices, chunk].sum(axis=1)
                low[chunk], high[chunk] = np.nanpercentile(means, [tail, 100 - tail], axis=0)
            counts = present.sum(axis=0)
            mean = filled.sum(axis=0) / counts
            std = np.nanstd(values, axis=0, ddof=1)
        point_keys = wide.columns.to_flat_index()
        for i, point in enumerate(point_keys):
            if counts[i] == 0:
                continue
            point = point if isinstance(point, tuple) else (point,)
            rows.append({**dict(zip(groups, key)), **dict(zip(points, point)), "mean": float(mean[i]),
                         "low": float(low[i]), "high": float(high[i]),
                         "std": float(std[i]) if counts[i] > 1 else 0.0, "runs": int(counts[i])})
    return pd.DataFrame(rows, columns=groups + points + ["mean", "low", "high", "std", "runs"])


def metric_curves(long: pd.DataFrame, *, reps: int = DEFAULT_REPS, seed: int = 0,
                  confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Every monitored metric per (scope, method, network, step): mean over runs with its CI.

    ``long``: each run's value per (network, metric, step) (``runs.read_metric_curves``).
    """
    if long.empty:
        return pd.DataFrame(columns=METRIC_CURVE_COLUMNS)
    out = mean_intervals(long, SCOPE + ["method"], ["network", "metric", "step"], reps=reps, seed=seed,
                         confidence=confidence)
    out["step"] = out["step"].astype(int)
    return out[METRIC_CURVE_COLUMNS]


def task_curves(run_curves: pd.DataFrame, *, reps: int = DEFAULT_REPS, seed: int = 0,
                confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Raw eval return per (scope, method, task, step): mean over the task's seeds with its CI.

    ``run_curves``: one row per run and eval step (``scores.eval_curves``).
    """
    if run_curves.empty:
        return pd.DataFrame(columns=TASK_CURVE_COLUMNS)
    out = mean_intervals(run_curves, SCOPE + ["method", "task"], ["step"], value="return", reps=reps, seed=seed,
                         confidence=confidence)
    out["step"] = out["step"].astype(int)
    return out[TASK_CURVE_COLUMNS]
