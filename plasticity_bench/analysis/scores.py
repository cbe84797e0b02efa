"""Per-run scores and curves, and the score matrices the statistics stand on (numpy and pandas).

Definitions:

- **Final return** of a run: the mean ``return`` of its evaluations in the last
  ``final_window`` fraction of its step budget, i.e. at steps >= last eval step -
  final_window x budget (default 0.1; the last evaluation alone when no other falls in the
  window, and always with ``final_window = 0``). A window of the budget, not a number of
  evaluations: with 10 evaluations per run, "the last 3" would reach back into the learning
  phase (steps 8k-10k of 10k), and with 2 evaluations it is half the run.
- **Normalised score**: ``(return - random) / (reference - random)`` with the suite's
  random and reference returns (``plasticity_bench.environments.suites``).
- **AUC** of a run: the area under its normalised learning curve, divided by the span of
  its eval steps (trapezoid rule over the eval steps, so uneven eval spacing is weighted by
  time): the mean normalised score over training, in score units. A run with one
  evaluation has that evaluation's score.
- **Scope**: the columns ``suite, algo, arch``; statistics are computed per scope and
  method, across the tasks of the scope.
- **Balanced** scores: every (scope, method) has the same number of seeds on each of its
  tasks; ``balance`` keeps, for every task, the first ``k`` seeds where ``k`` is the
  smallest number of completed seeds over the method's tasks (the runs left out are
  reported as missing with the reason ``unbalanced``).
- **Overall scope** (``suite = algo = arch = "all"``): every method's runs pooled across
  scopes into one ``(num_runs, num_tasks)`` matrix whose "tasks" are the *cells*
  ``suite/algo/arch/task`` and whose runs are the seeds. Cells differ in normalisation
  only by construction (every score is normalised per task), so pooling them is what
  rliable does across the games of Atari. A method enters the overall scope only if it
  has every cell that any method has (otherwise its IQM would stand on other tasks than
  its rivals'). Seeds are trimmed to the smallest per-cell count of the method, as
  ``balance`` does per scope. Sample-efficiency and metric curves have no overall scope:
  step budgets differ between suites.
- **Score matrix** of a (scope, method): ``(num_runs, num_tasks)``, tasks in alphabetical
  order as columns, each column the task's runs in ascending seed order (rliable's layout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from plasticity_bench.analysis.runs import read_eval_curves, read_runs
from plasticity_bench.analysis.vocabulary import (MISSING_COLUMNS, OVERALL, RUN_COLUMNS,
                                                  SCOPE, SCORE_COLUMNS, AnalysisError, method_order)

DEFAULT_FINAL_WINDOW = 0.1  # fraction of the step budget the final score averages over

#: ``normaliser(suite, task, returns) -> normalised returns`` (same shape as ``returns``).
Normaliser = Callable[[str, str, np.ndarray], np.ndarray]


def suite_normaliser() -> Normaliser:
    """The default normaliser: each run's suite file (``environments/suites``), cached per suite."""
    from plasticity_bench.environments import suites  # imported late: it is data, not scoring

    cache: dict[str, object] = {}

    def normalise(suite: str, task: str, returns: np.ndarray) -> np.ndarray:
        if suite not in cache:
            try:
                cache[suite] = suites.load_suite(suite)
            except Exception as error:  # unknown suite / unreadable file: a user error
                raise AnalysisError(f"cannot load suite {suite!r}: {error}") from None
        try:
            return np.asarray(cache[suite].normalise(task, returns), dtype=float)
        except Exception as error:
            raise AnalysisError(f"cannot normalise task {task!r} of suite {suite!r}: {error}") from None

    return normalise


def check_final_window(final_window: float) -> None:
    if not 0 <= final_window <= 1:
        raise AnalysisError(f"final_window {final_window!r} is not a fraction of the step budget; valid: 0 to 1 "
                            "(0: the last evaluation alone)")


def mean_returns_by_step(eval_frame: pd.DataFrame) -> pd.Series:
    """The run's eval returns indexed by ascending step (repeated evaluations at a step averaged)."""
    return eval_frame.groupby("step")["return"].mean().sort_index()


def final_window_returns(eval_frame: pd.DataFrame, budget: int, final_window: float) -> pd.Series:
    """The evaluations the final score averages: those at steps >= last step - final_window x budget."""
    returns = mean_returns_by_step(eval_frame)
    return returns[returns.index >= returns.index[-1] - final_window * budget]


def learning_curve_auc(steps: np.ndarray, scores: np.ndarray) -> float:
    """Area under the normalised learning curve over the span of ``steps`` (see the module docstring)."""
    steps, scores = np.asarray(steps, dtype=float), np.asarray(scores, dtype=float)
    if len(steps) == 1:
        return float(scores[0])
    area = np.sum((scores[1:] + scores[:-1]) / 2 * np.diff(steps))  # trapezoid rule (numpy 1.26 lacks trapezoid)
    return float(area / (steps[-1] - steps[0]))


def collect(
    matrix: Mapping,
    runs_dir: Path,
    *,
    final_window: float = DEFAULT_FINAL_WINDOW,
    normaliser: Normaliser | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Final scores and learning-curve areas of the matrix's runs, and the expected runs that cannot be scored.

    Returns:
      scores: one row per scorable run, columns ``SCORE_COLUMNS`` (``final_return`` raw,
        ``score`` normalised by the suite, ``auc`` of the normalised curve, ``final_evals``
        the number of evaluations ``final_return`` averages).
      missing: one row per expected run that cannot be scored (``runs.read_runs``), columns
        ``MISSING_COLUMNS``.
    """
    check_final_window(final_window)
    normaliser = normaliser or suite_normaliser()
    scorable, missing = read_runs(matrix, runs_dir)
    scored = []
    for run in scorable:
        suite, task = run.keys["suite"], run.keys["task"]
        final = final_window_returns(run.evals, run.budget, final_window)
        raw = float(final.mean())
        curve = mean_returns_by_step(run.evals)
        scored.append({**run.keys, "final_return": raw,
                       "score": float(np.asarray(normaliser(suite, task, np.array([raw])))[0]),
                       "auc": learning_curve_auc(curve.index.to_numpy(), normaliser(suite, task, curve.to_numpy(float))),
                       "final_evals": len(final), "num_evals": len(run.evals), "last_step": int(curve.index[-1])})
    return sort_runs(pd.DataFrame(scored, columns=SCORE_COLUMNS)), sort_runs(missing)


def sort_runs(frame: pd.DataFrame) -> pd.DataFrame:
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
    return sort_runs(kept_frame), pd.DataFrame(left_out, columns=MISSING_COLUMNS)


def run_matrix(rows: pd.DataFrame, values: Callable[[pd.DataFrame], np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """rliable's array of one (scope, method): ``(num_runs, num_tasks, ...)`` and the task order.

    ``values(task_rows)`` gives one entry per run of a task (in ascending seed order): a
    number (score matrices) or a vector (curves). ``rows`` must be balanced.
    """
    tasks = sorted(rows["task"].unique())
    columns = [np.asarray(values(rows[rows["task"] == task].sort_values("seed")), dtype=float) for task in tasks]
    if len({len(column) for column in columns}) > 1:
        raise AnalysisError("score matrix is not rectangular; call balance() first")
    return np.stack(columns, axis=1), tasks


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
    summary = {"cells": len(cells), "methods": method_order(kept["method"]),
               "excluded": {m: excluded[m] for m in method_order(excluded)}, "trimmed_runs": len(trimmed)}
    return kept, summary


def eval_curves(scores: pd.DataFrame, runs_dir: Path, normaliser: Normaliser | None = None) -> pd.DataFrame:
    """Normalised eval returns of the scored runs: columns ``RUN_COLUMNS + [step, return, score]``."""
    normaliser = normaliser or suite_normaliser()
    curves = read_eval_curves(scores, runs_dir)
    curves["score"] = np.nan
    for (suite, task), rows in curves.groupby(["suite", "task"]):
        curves.loc[rows.index, "score"] = normaliser(suite, task, rows["return"].to_numpy(float))
    return curves
