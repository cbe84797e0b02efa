"""Scores of continual runs (``continual:<sequence>`` tasks, environments/continual.py).

Definitions:

- **End-of-segment score** of a run and segment ``k``: the normalised return of its
  evaluation at step ``(k + 1) * segment_steps``, the segment's nominal end (the switch
  happens at the next episode boundary, so that evaluation always plays segment ``k``;
  its eval row says so in ``segment``). It is normalised with the suite's random and
  reference returns of the segment's base task.
- **Plasticity ratio** of a run and segment: its end-of-segment score over the score of
  the segment's **fresh-agent reference** (same algorithm, architecture, seed and
  hyperparameters, method ``none``, a new network trained ``segment_steps`` steps on the
  segment's task alone; the matrix plans it, ``matrix.with_references``), that reference's
  last evaluation, normalised the same way. 1: the run learns segment ``k`` as well as a
  new network would; below 1: it lost plasticity (or the earlier segments interfere).
  A ratio whose reference scores at most ``MIN_REFERENCE_SCORE`` is left out (NaN): a
  denominator near 0 makes any ratio meaningless, and the row says why.
- The segment scores of a continual run enter the leaderboard as one "task" per segment
  after the first (``<task>[k]``), so the scope's IQM is the IQM of end-of-segment scores
  over seeds and segments ``k >= 1`` (segment 0 is a fresh agent's task for every method)
  and every statistic, rank group and probability of improvement of the leaderboard applies
  unchanged. The plasticity ratio column is the IQM of the ratios over the same
  (run, segment) cells, with its stratified-bootstrap CI.

A continual run's segment 0 and its whole-sequence curve stay in ``continual_segments``
and ``run_curves`` (each eval normalised with its segment's base task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.analysis.scores import Normaliser, learning_curve_auc
from plasticity_bench.analysis.vocabulary import RUN_COLUMNS, SCOPE, SCORE_COLUMNS, AnalysisError

FAMILY = "continual:"
#: The start of a missing reference's reason in the aggregate's missing table.
REFERENCE_REASON = "fresh-agent reference: "
#: A reference normalised score at or below this leaves the plasticity ratio undefined.
MIN_REFERENCE_SCORE = 0.05
SEGMENT_COLUMNS = RUN_COLUMNS + ["segment", "segment_task", "base_task", "step", "return", "score",
                                 "reference_run_id", "reference_return", "reference_score", "plasticity_ratio",
                                 "ratio_note"]
RATIO_COLUMNS = SCOPE + ["method", "task", "segment", "mean", "low", "high", "runs"]
LEADERBOARD_RATIO_COLUMNS = SCOPE + ["method", "plasticity_ratio", "plasticity_ratio_low", "plasticity_ratio_high",
                                     "ratio_cells"]


def is_continual_row(run: Mapping) -> bool:
    """A continual run of the leaderboard (not a reference, not a segment trained alone)."""
    task = str(run.get("task", ""))
    return task.startswith(FAMILY) and "/" not in task and not run.get("reference")


def split_matrix(matrix: Mapping) -> tuple[dict, dict, dict]:
    """(ordinary runs, continual runs, references) as three matrices of the same config."""
    runs = matrix["runs"]
    parts = ([r for r in runs if not r.get("reference") and not is_continual_row(r)],
             [r for r in runs if is_continual_row(r)],
             [r for r in runs if r.get("reference")])
    return tuple({**matrix, "runs": part} for part in parts)


def segment_label(task: str, segment: int) -> str:
    """The leaderboard's task name of a continual run's segment."""
    return f"{task}[{segment}]"


def _sequence(record: RunRecord) -> dict:
    sequence = (record.manifest().get("spec") or {}).get("hyperparams", {}).get("sequence")
    if not sequence:
        raise AnalysisError(f"{record.dir}: a continual run whose manifest holds no sequence")
    return sequence


def end_of_segment_rows(run, runs_dir: Path, normaliser: Normaliser) -> list[dict]:
    """One row per segment the run trained: the evaluation at the segment's nominal end."""
    record = RunRecord(Path(runs_dir) / run.keys["run_id"])
    sequence = _sequence(record)
    length, tasks = int(sequence["segment_steps"]), sequence["tasks"]
    evals = run.evals
    if "segment" not in evals.columns:
        raise AnalysisError(f"{record.dir}: eval rows of a continual run lack the segment column")
    rows = []
    for k in range(run.budget // length):
        end = evals[evals["step"] == (k + 1) * length]
        if end.empty or int(end["segment"].iloc[-1]) != k:
            raise AnalysisError(f"{record.dir}: no evaluation of segment {k} at its end, step {(k + 1) * length}")
        within = evals[(evals["segment"] == k) & (evals["step"] <= (k + 1) * length)].groupby("step")["return"].mean()
        raw = float(end["return"].mean())
        rows.append({**run.keys, "segment": k, "segment_task": str(end["segment_task"].iloc[-1]), "base_task": tasks[k],
                     "step": (k + 1) * length, "return": raw,
                     "score": float(np.asarray(normaliser(run.keys["suite"], tasks[k], np.array([raw])))[0]),
                     "auc": learning_curve_auc(within.index.to_numpy(),
                                               normaliser(run.keys["suite"], tasks[k], within.to_numpy(float))),
                     "evals": len(within)})
    return rows


def segment_table(continual_runs: list, references: list, runs_dir: Path, normaliser: Normaliser,
                  matrix_rows: Mapping[str, Mapping]) -> pd.DataFrame:
    """``SEGMENT_COLUMNS`` (+ the segment's ``auc`` and number of ``evals``) per continual
    run and segment, with its plasticity ratio; ``ratio_note`` says why a ratio is missing."""
    reference_final = {}
    for ref in references:
        final = ref.evals.groupby("step")["return"].mean().sort_index()
        reference_final[ref.keys["run_id"]] = float(final.iloc[-1])
    rows = []
    for run in continual_runs:
        ids = list(matrix_rows[run.keys["run_id"]].get("references", []))
        for row in end_of_segment_rows(run, runs_dir, normaliser):
            k = row["segment"]
            ref_id = ids[k] if k < len(ids) else None
            ref_return = reference_final.get(ref_id)
            ref_score, ratio, note = np.nan, np.nan, ""
            if ref_return is None:
                note = f"reference {ref_id} missing" if ref_id else "no reference planned"
            else:
                ref_score = float(np.asarray(normaliser(row["suite"], row["base_task"], np.array([ref_return])))[0])
                if ref_score > MIN_REFERENCE_SCORE:
                    ratio = row["score"] / ref_score
                else:
                    note = f"reference score {ref_score:.3f} <= {MIN_REFERENCE_SCORE}: the fresh agent did not learn"
            rows.append({**row, "reference_run_id": ref_id, "reference_return": ref_return if ref_return is not None
                         else np.nan, "reference_score": ref_score, "plasticity_ratio": ratio, "ratio_note": note})
    frame = pd.DataFrame(rows, columns=SEGMENT_COLUMNS + ["auc", "evals"])
    return frame.sort_values(RUN_COLUMNS[1:] + ["segment"], kind="stable").reset_index(drop=True)


def continual_scores(matrix: Mapping, runs_dir: Path, normaliser: Normaliser) -> dict:
    """Everything the aggregate needs of the matrix's continual runs and references:
    ``segments`` (``segment_table``), ``scores`` (leaderboard rows), ``curves``
    (``sequence_curves``), ``missing`` (``MISSING_COLUMNS``: continual runs and references
    that cannot be scored)."""
    from plasticity_bench.analysis.runs import read_runs

    _, continual_matrix, reference_matrix = split_matrix(matrix)
    runs, missing = read_runs(continual_matrix, runs_dir)
    references, missing_references = read_runs(reference_matrix, runs_dir)
    if len(missing_references):
        missing_references = missing_references.assign(reason=REFERENCE_REASON + missing_references["reason"])
    rows = {run["run_id"]: run for run in matrix["runs"]}
    segments = segment_table(runs, references, runs_dir, normaliser, rows)
    return {"segments": segments, "scores": leaderboard_scores(segments),
            "curves": sequence_curves(runs, runs_dir, normaliser),
            "missing": pd.concat([frame for frame in (missing, missing_references) if len(frame)] or [missing],
                                 ignore_index=True)}


def leaderboard_scores(segments: pd.DataFrame) -> pd.DataFrame:
    """``SCORE_COLUMNS`` rows of the segments after the first: one leaderboard "task" per segment."""
    late = segments[segments["segment"] >= 1]
    scores = pd.DataFrame({
        **{column: late[column] for column in RUN_COLUMNS},
        "task": [segment_label(task, k) for task, k in zip(late["task"], late["segment"])],
        "final_return": late["return"], "score": late["score"], "auc": late["auc"],
        "final_evals": 1, "num_evals": late["evals"], "last_step": late["step"],
    })
    return scores[SCORE_COLUMNS].reset_index(drop=True)


def sequence_curves(continual_runs: list, runs_dir: Path, normaliser: Normaliser) -> pd.DataFrame:
    """Each continual run's whole eval curve, every evaluation normalised with its segment's
    base task: ``RUN_COLUMNS + [step, return, score, segment]``."""
    frames = []
    for run in continual_runs:
        tasks = _sequence(RunRecord(Path(runs_dir) / run.keys["run_id"]))["tasks"]
        curve = run.evals.groupby("step", as_index=False).agg({"return": "mean", "segment": "last"})
        curve["score"] = [float(np.asarray(normaliser(run.keys["suite"], tasks[int(k)], np.array([r])))[0])
                          for r, k in zip(curve["return"], curve["segment"])]
        for column in RUN_COLUMNS:
            curve[column] = run.keys[column]
        frames.append(curve)
    columns = RUN_COLUMNS + ["step", "return", "score", "segment"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def ratio_intervals(segments: pd.DataFrame, *, reps: int, seed: int, confidence: float) -> pd.DataFrame:
    """Mean plasticity ratio per (scope, method, task, segment) over its seeds, with a
    bootstrap CI (``RATIO_COLUMNS``); rows without a ratio are left out."""
    from plasticity_bench.analysis.stats import mean_intervals

    defined = segments.dropna(subset=["plasticity_ratio"])
    if defined.empty:
        return pd.DataFrame(columns=RATIO_COLUMNS)
    out = mean_intervals(defined, SCOPE + ["method", "task"], ["segment"], value="plasticity_ratio", reps=reps,
                         seed=seed, confidence=confidence)
    out["segment"] = out["segment"].astype(int)
    return out[RATIO_COLUMNS]


def leaderboard_ratios(segments: pd.DataFrame, *, reps: int, seed: int, confidence: float) -> pd.DataFrame:
    """Per (scope, method): IQM of the plasticity ratios of segments >= 1 (stratified over
    the segments as tasks, seeds as runs) and its CI (``LEADERBOARD_RATIO_COLUMNS``)."""
    from plasticity_bench.analysis.scores import balance
    from plasticity_bench.analysis.stats import interval_estimates

    late = segments[(segments["segment"] >= 1)].dropna(subset=["plasticity_ratio"])
    if late.empty:
        return pd.DataFrame(columns=LEADERBOARD_RATIO_COLUMNS)
    frame = leaderboard_scores(late.assign(score=late["plasticity_ratio"]))
    frame, _ = balance(frame)
    intervals = interval_estimates(frame, reps=reps, seed=seed, confidence=confidence)
    iqm = intervals[intervals["statistic"] == "iqm"]
    return pd.DataFrame({**{column: iqm[column] for column in SCOPE + ["method"]},
                         "plasticity_ratio": iqm["estimate"], "plasticity_ratio_low": iqm["low"],
                         "plasticity_ratio_high": iqm["high"], "ratio_cells": iqm["runs"]}
                        )[LEADERBOARD_RATIO_COLUMNS].reset_index(drop=True)


#: Per continual run and segment (``SEGMENT_COLUMNS``), written next to the aggregate's tables.
CONTINUAL_SEGMENTS_FILE = "continual_segments.csv"


def ordinary_ids(matrix: Mapping) -> set[str]:
    return {run["run_id"] for run in matrix["runs"]}


def continual_summary(segments: pd.DataFrame, *, reps: int, seed: int, confidence: float) -> dict:
    """The aggregate summary's ``continual`` entry: per-segment mean plasticity ratios
    (``RATIO_COLUMNS``) and the leaderboard's ratio column (``LEADERBOARD_RATIO_COLUMNS``),
    as records; empty without continual runs."""
    if segments.empty:
        return {}
    options = dict(reps=reps, seed=seed, confidence=confidence)
    undefined = segments[segments["plasticity_ratio"].isna()]
    return {"ratios": ratio_intervals(segments, **options).to_dict("records"),
            "leaderboard": leaderboard_ratios(segments, **options).to_dict("records"),
            "segments_file": CONTINUAL_SEGMENTS_FILE, "min_reference_score": MIN_REFERENCE_SCORE,
            "segment_steps": [{**dict(zip(SCOPE + ["task"], key)), "segment_steps": int(rows["step"].min())}
                              for key, rows in segments[segments["segment"] == 0].groupby(SCOPE + ["task"])],
            "undefined_ratios": [{"run_id": row.run_id, "segment": int(row.segment), "reason": row.ratio_note}
                                 for row in undefined.itertuples()]}
