"""Names shared by the analysis modules, and the ``Aggregate`` with its reader and writer.

numpy and pandas only: the figures, the report and the workflow read an aggregate through this module
without importing rliable or matplotlib.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Iterable, Iterator

import numpy as np
import pandas as pd

from plasticity_bench.results import atomic_write_bytes, write_json

SCOPE = ["suite", "algo", "arch"]
RUN_COLUMNS = ["run_id", "suite", "algo", "arch", "method", "task", "seed"]
BASELINE = "none"
OVERALL = "all"  # suite, algo and arch of the overall scope
#: The statistics of a score matrix, in table order (``stats.STATISTICS`` computes them).
STATISTIC_NAMES = ("iqm", "mean", "median", "optimality_gap")
#: The statistic name of the IQM of the runs' learning-curve areas in ``interval_estimates``.
AUC_STATISTIC = "auc_iqm"
#: Normalised score that some method's IQM CI upper bound must exceed for a scope to count as
#: learned; below it no method is distinguishable from random at the scope's budget.
LEARNED_ABOVE = 0.05
#: Seeds per task below which a scope's intervals are flagged as too wide to rank on (with 3
#: seeds of 1 task a 95% percentile bootstrap CI is just [min, max] of the runs).
MIN_SEEDS = 5

SCORE_COLUMNS = RUN_COLUMNS + ["final_return", "score", "auc", "final_evals", "num_evals", "last_step"]
#: The aggregate's scores: ``in_overall`` marks the runs the overall scope's statistics stand on.
AGGREGATE_SCORE_COLUMNS = SCORE_COLUMNS + ["in_overall"]
MISSING_COLUMNS = RUN_COLUMNS + ["status", "reason"]
INTERVAL_COLUMNS = SCOPE + ["method", "statistic", "estimate", "low", "high", "runs", "tasks"]
POI_COLUMNS = SCOPE + ["method", "baseline", "best_baseline", "probability", "low", "high", "tasks"]
CURVE_COLUMNS = SCOPE + ["method", "step", "iqm", "low", "high", "runs", "tasks"]
#: ``mean`` over runs with its bootstrap CI [``low``, ``high``] (``stats.mean_intervals``); ``std`` over runs.
METRIC_CURVE_COLUMNS = SCOPE + ["method", "network", "metric", "step", "mean", "low", "high", "std", "runs"]
#: Raw (unnormalised) eval return per task: mean over the task's seeds with its bootstrap CI.
TASK_CURVE_COLUMNS = SCOPE + ["method", "task", "step", "mean", "low", "high", "runs"]
#: Every aggregated run's eval curve: raw return and normalised score per eval step.
RUN_CURVE_COLUMNS = RUN_COLUMNS + ["step", "return", "score"]
PROFILE_COLUMNS = SCOPE + ["method", "tau", "fraction", "low", "high"]
#: One row per claim of the config's ``claims:`` list (analysis.claims).
CLAIM_COLUMNS = ["claim", "source", "statistic", "expected", "measured", "ci_low", "ci_high", "holds", "runs",
                 "detail"]

#: Aggregate table -> its file in the aggregate dir.
FILES = {
    "scores": "scores.csv",
    "missing": "missing.csv",
    "interval_estimates": "interval_estimates.csv",
    "probability_of_improvement": "probability_of_improvement.csv",
    "sample_efficiency": "sample_efficiency.csv",
    "metric_curves": "metric_curves.csv",
    "performance_profiles": "performance_profiles.csv",
    "task_curves": "task_curves.csv",
    "run_curves": "run_curves.csv",
    "claims": "claims.csv",
}
SUMMARY = "aggregate.json"


class AnalysisError(Exception):
    """A user-facing problem with the inputs of aggregation or reporting (bad matrix, unknown task...)."""


def method_order(methods: Iterable[str]) -> list[str]:
    """Baseline first, then alphabetical: the order (and colour) of methods in every table and figure."""
    methods = sorted(set(methods))
    return ([BASELINE] if BASELINE in methods else []) + [m for m in methods if m != BASELINE]


def scopes(frame: pd.DataFrame) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(scope, its rows) for every scope of ``frame``, in sorted order."""
    for scope, group in frame.groupby(SCOPE, sort=True):
        yield scope, group


def in_scopes(frame: pd.DataFrame, chosen: Container[tuple]) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` whose scope tuple is in ``chosen``."""
    return np.array([scope in chosen for scope in frame[SCOPE].itertuples(index=False, name=None)], dtype=bool)


def is_overall(scope: Iterable[str]) -> bool:
    return all(part == OVERALL for part in scope)


def scope_title(scope: Iterable[str]) -> str:
    scope = tuple(scope)
    if is_overall(scope):
        return "Overall (every suite / algo / arch)"
    return " / ".join(str(part) for part in scope)


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
    task_curves: pd.DataFrame
    run_curves: pd.DataFrame
    claims: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CLAIM_COLUMNS))  # none asked: empty
    summary: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in FILES}


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
        raise AnalysisError(f"{out_dir} is not a finished aggregate (no {SUMMARY})")
    tables = {}
    for name, file in FILES.items():
        path = out_dir / file
        if not path.exists():
            raise AnalysisError(f"aggregate {out_dir} lacks {file}")
        tables[name] = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return Aggregate(**tables, summary=json.loads((out_dir / SUMMARY).read_text()))
