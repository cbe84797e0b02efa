"""``plasticity-bench aggregate``: run folders -> scores -> rliable statistics -> the aggregate dir.

- **Missing run**: a run the matrix expects that cannot be scored (``runs.read_runs``
  names why). Missing runs are an error unless ``allow_missing=True`` (never a silent
  average over fewer seeds); with it, scores are balanced (``scores.balance``) and the
  runs left out are listed in ``missing.csv``. A task with no completed run of a method is
  left out of that method's matrix (the ``tasks`` column shows it).
- The overall scope (``scores.overall_scores``) is one more scope of the score-based
  statistics; the methods it leaves out and the cells they lack are listed in
  ``aggregate.json`` under ``overall``.
- Probability of improvement holds one row per compared pair (``baselines``); the column
  ``best_baseline`` is true where ``baseline`` is the method's best baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from plasticity_bench.analysis.baselines import best_baselines, builtin_methods, comparisons
from plasticity_bench.analysis.scores import (DEFAULT_LAST_N, Normaliser, balance, collect, eval_curves,
                                              metric_curves, overall_scores, sort_runs, suite_normaliser)
from plasticity_bench.analysis.stats import (DEFAULT_CONFIDENCE, DEFAULT_REPS, interval_estimates,
                                             performance_profiles, probability_of_improvement, sample_efficiency)
from plasticity_bench.analysis.vocabulary import BASELINE, Aggregate, AnalysisError, write_aggregate

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
    last_n: int = DEFAULT_LAST_N,
    normaliser: Normaliser | None = None,
) -> Aggregate:
    """Collect, check for missing runs, compute every statistic, write ``out_dir`` if given.

    Raises:
      MissingRunsError: expected runs are missing and ``allow_missing`` is False (nothing
        is written then).
      AnalysisError: no run at all can be scored, or the inputs are malformed.
    """
    normaliser = normaliser or suite_normaliser()
    scores, missing = collect(matrix, runs_dir, last_n=last_n, normaliser=normaliser)
    if len(missing) and not allow_missing:
        raise MissingRunsError(missing)
    if scores.empty:
        raise AnalysisError(f"none of the {len(matrix['runs'])} expected runs can be scored")
    scores, unbalanced = balance(scores)
    if len(unbalanced):
        missing = sort_runs(pd.concat([missing, unbalanced]) if len(missing) else unbalanced)
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
