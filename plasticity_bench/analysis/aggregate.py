"""``plasticity-bench aggregate``: run folders -> scores -> rliable statistics -> the aggregate dir.

- **Missing run**: a run the matrix expects that cannot be scored (``runs.read_runs``
  names why). Missing runs are an error unless ``allow_missing=True`` (never a silent
  average over fewer seeds); with it, scores are balanced (``scores.balance``) and the
  runs left out are listed in ``missing.csv``. A task with no completed run of a method is
  left out of that method's matrix (the ``tasks`` column shows it).
- **Unlearned scope**: a scope where no method's IQM CI upper bound is above
  ``learned_above`` (default ``vocabulary.LEARNED_ABOVE`` = 0.05 normalised): at this budget no method
  is distinguishable from random there. Its rows stay, flagged in ``aggregate.json`` under
  ``unlearned_scopes``; its runs are left out of the overall scope, where they would only
  pull every method towards 0.
- The overall scope (``scores.overall_scores`` of the learned scopes' runs) is one more
  scope of the score-based statistics; the methods it leaves out and the cells they lack
  are listed in ``aggregate.json`` under ``overall``, and the ``in_overall`` column of
  ``scores.csv`` marks the runs it stands on.
- Curves: ``sample_efficiency`` (IQM normalised score per eval step, rliable), ``task_curves``
  (mean raw return per task and eval step) and ``metric_curves`` (mean of each monitored
  metric per network and step), each with a bootstrap CI (``stats``); ``run_curves`` keeps
  every run's eval curve, for spotting broken runs.
- Probability of improvement holds one row per compared pair (``baselines``); the column
  ``best_baseline`` is true where ``baseline`` is the method's best baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from plasticity_bench.results import atomic_write_bytes

from plasticity_bench.analysis.baselines import best_baselines, builtin_methods, comparisons
from plasticity_bench.analysis.claims import measure_claims
from plasticity_bench.analysis.continual import (CONTINUAL_SEGMENTS_FILE, continual_scores, continual_summary,
                                                 ordinary_ids, split_matrix)
from plasticity_bench.analysis.runs import read_metric_curves
from plasticity_bench.analysis.scores import (DEFAULT_FINAL_WINDOW, Normaliser, balance, collect, eval_curves,
                                              overall_scores, sort_runs, suite_normaliser)
from plasticity_bench.analysis.stats import (DEFAULT_CONFIDENCE, DEFAULT_REPS, auc_interval_estimates,
                                             interval_estimates, metric_curves, performance_profiles,
                                             probability_of_improvement, sample_efficiency, task_curves)
from plasticity_bench.analysis.vocabulary import (BASELINE, LEARNED_ABOVE, RUN_CURVE_COLUMNS, SCOPE, Aggregate,
                                                  AnalysisError, in_scopes, scopes, write_aggregate)

MISSING_LISTED = 10


class MissingRunsError(AnalysisError):
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


def aggregate(
    matrix: Mapping,
    runs_dir: Path,
    out_dir: Path | None = None,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    allow_missing: bool = False,
    final_window: float = DEFAULT_FINAL_WINDOW,
    learned_above: float = LEARNED_ABOVE,
    normaliser: Normaliser | None = None,
) -> Aggregate:
    """Collect, check for missing runs, compute every statistic, write ``out_dir`` if given.

    Raises:
      MissingRunsError: expected runs are missing and ``allow_missing`` is False (nothing
        is written then).
      AnalysisError: no run at all can be scored, or the inputs are malformed.
    """
    normaliser = normaliser or suite_normaliser()
    ordinary, _, _ = split_matrix(matrix)
    scores, missing = collect(ordinary, runs_dir, final_window=final_window, normaliser=normaliser)
    # Continual runs: one score per segment after the first; references scored apart (analysis/continual.py).
    continual = continual_scores(matrix, runs_dir, normaliser)
    if len(continual["scores"]):
        scores = sort_runs(pd.concat([scores, continual["scores"]], ignore_index=True) if len(scores)
                           else continual["scores"])
    if len(continual["missing"]):
        missing = sort_runs(pd.concat([missing, continual["missing"]], ignore_index=True) if len(missing)
                            else continual["missing"])
    if len(missing) and not allow_missing:
        raise MissingRunsError(missing)
    if scores.empty:
        raise AnalysisError(f"none of the {len(matrix['runs'])} expected runs can be scored")
    scores, unbalanced = balance(scores)
    if len(unbalanced):
        missing = sort_runs(pd.concat([missing, unbalanced]) if len(missing) else unbalanced)
    options = dict(reps=reps, seed=seed, confidence=confidence)
    intervals = interval_estimates(scores, **options)
    unlearned = unlearned_scopes(intervals, learned_above)
    learned = scores[~in_scopes(scores, unlearned)]
    overall, overall_summary = overall_scores(learned)
    # The overall scope is one more scope of the score-based statistics (not of the curves).
    scoped = pd.concat([scores, overall]) if len(overall) else scores
    if len(overall):
        intervals = pd.concat([intervals, interval_estimates(overall, **options)])
    intervals = pd.concat([intervals, auc_interval_estimates(scoped, **options)])
    intervals = intervals.sort_values(SCOPE, kind="stable").reset_index(drop=True)
    pairs = comparisons(scoped, best_baselines(intervals))
    run_curves = eval_curves(scores[scores["run_id"].isin(ordinary_ids(ordinary))], runs_dir, normaliser)
    if len(continual["curves"]):  # a continual run's whole sequence, each segment normalised with its task
        run_curves = pd.concat([run_curves, continual["curves"]], ignore_index=True) if len(run_curves) \
            else continual["curves"]
    run_curves = run_curves[RUN_CURVE_COLUMNS]
    segments = continual["segments"]
    segments = segments[segments["run_id"].isin(scores["run_id"])]  # balanced with the leaderboard's runs
    result = Aggregate(
        scores=scores.assign(in_overall=scores["run_id"].isin(overall["run_id"])),
        missing=missing,
        interval_estimates=intervals,
        probability_of_improvement=probability_of_improvement(scoped, pairs=pairs, **options),
        sample_efficiency=sample_efficiency(run_curves, scores, **options),
        metric_curves=metric_curves(read_metric_curves(scores.drop_duplicates("run_id"), runs_dir), **options),
        performance_profiles=performance_profiles(scoped, **options),
        task_curves=task_curves(run_curves, **options),
        run_curves=run_curves,
        # The config's claims, on every planned run that has a record (its own checks).
        claims=measure_claims((matrix.get("config") or {}).get("claims", []), matrix["runs"], Path(runs_dir),
                              scores, reps=reps, seed=seed, segments=segments),
        summary={
            "overall": overall_summary,
            "builtin_methods": sorted(builtin_methods()),
            "config_hash": matrix.get("config_hash"),
            "config": matrix.get("config"),
            "unlearned_scopes": [{**dict(zip(SCOPE, scope)), "highest_iqm_high": high}
                                 for scope, high in unlearned.items()],
            "reps": reps, "seed": seed, "confidence": confidence, "final_window": final_window,
            "learned_above": learned_above,
            "allow_missing": allow_missing, "baseline": BASELINE,
            "expected_runs": len(matrix["runs"]), "scored_runs": len(scores),
            "missing_runs": len(missing),
            "run_ids": scores["run_id"].tolist(),
            "dropped": matrix.get("dropped", []),
            "rliable": _version("rliable"),
            "continual": continual_summary(segments, **options),
        },
    )
    if out_dir is not None:
        if len(segments):
            atomic_write_bytes(Path(out_dir) / CONTINUAL_SEGMENTS_FILE, segments.to_csv(index=False).encode())
        write_aggregate(result, out_dir)
    return result


def unlearned_scopes(intervals: pd.DataFrame, learned_above: float = LEARNED_ABOVE) -> dict[tuple, float]:
    """Scopes where no method's IQM CI upper bound is above ``learned_above`` -> that highest bound."""
    iqm = intervals[intervals["statistic"] == "iqm"]
    highest = {scope: float(group["high"].max()) for scope, group in scopes(iqm)}
    return {scope: high for scope, high in highest.items() if not high > learned_above}


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
