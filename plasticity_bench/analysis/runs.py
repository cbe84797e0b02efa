"""Reading run folders: the matrix of expected runs, each run's manifest, eval and metrics tables.

A run folder (written by the trainer through ``plasticity_bench.results``) holds
``manifest.json``, ``eval.parquet`` and ``metrics.parquet``. A run the matrix expects can
be scored only if its folder exists, its status is ``completed``, its manifest names the
matrix's run id (a hash of the full spec: budget, hyperparameters, options) and its eval
table is non-empty and finite; otherwise it is *missing*, with the reason.

pandas and pyarrow only: this module never imports torch (a test checks it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from plasticity_bench.analysis.vocabulary import MISSING_COLUMNS, RUN_COLUMNS, AnalysisError
from plasticity_bench.results import (EVAL, EVAL_COLUMNS, MANIFEST, METRIC_COLUMNS, METRICS, CorruptRecordError,
                                      read_manifest)

#: Spec fields compared with the matrix to name what differs in a refused record.
COMPARED_FIELDS = ("algo", "arch", "method", "task", "seed", "steps")


class RunRecord:
    """Read access to one run folder."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)

    @property
    def exists(self) -> bool:
        return (self.dir / MANIFEST).exists()

    def manifest(self) -> dict:
        manifest = read_manifest(self.dir)
        if manifest is None:
            raise CorruptRecordError(f"{self.dir / MANIFEST} does not exist")
        return manifest

    def eval(self) -> pd.DataFrame:
        return self._table(EVAL, EVAL_COLUMNS)

    def metrics(self) -> pd.DataFrame:
        return self._table(METRICS, METRIC_COLUMNS)

    def _table(self, name: str, columns: list[str]) -> pd.DataFrame:
        path = self.dir / name
        if not path.exists():
            return pd.DataFrame(columns=columns)
        try:
            return pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise CorruptRecordError(f"{path} is unreadable: {type(error).__name__}: {error}") from None


# ----------------------------------------------------------------------------- the matrix


def load_matrix(path: Path) -> dict:
    """Read and check ``matrix.json`` (``{"runs": [...], "dropped": [...], "config", "config_hash"}``)."""
    path = Path(path)
    try:
        matrix = json.loads(path.read_text())
    except FileNotFoundError:
        raise AnalysisError(f"matrix file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise AnalysisError(f"matrix file {path} is not valid JSON: {error}") from None
    check_matrix(matrix, source=str(path))
    return matrix


def check_matrix(matrix: Mapping, source: str = "matrix") -> None:
    if not isinstance(matrix, Mapping) or not isinstance(matrix.get("runs"), list):
        raise AnalysisError(f"{source}: expected an object with a 'runs' list")
    for index, run in enumerate(matrix["runs"]):
        absent = [key for key in RUN_COLUMNS if key not in run]
        if absent:
            raise AnalysisError(f"{source}: run #{index} lacks {', '.join(absent)}")
    ids = [run["run_id"] for run in matrix["runs"]]
    if len(set(ids)) != len(ids):
        raise AnalysisError(f"{source}: run ids are not unique")


# ----------------------------------------------------------------------------- one run


def check_run(record: RunRecord, expected: Mapping) -> tuple[str | None, str]:
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
        differ = [f"{key} {spec[key]!r}, matrix {expected[key]!r}" for key in COMPARED_FIELDS
                  if key in spec and key in expected and spec[key] != expected[key]]
        return status, (f"manifest run_id {manifest.get('run_id')!r} but matrix expects {expected['run_id']!r} ("
                        + ("; ".join(differ) or "other hyperparameters or options") + ")")
    if status != "completed":
        error = manifest.get("error")
        return status, f"status {status}" + (f": {error}" if error else "")
    for key in COMPARED_FIELDS:
        if key in spec and key in expected and spec[key] != expected[key]:
            return status, f"manifest {key}={spec[key]!r} but matrix expects {expected[key]!r}"
    if "steps" not in spec:
        return status, f"{MANIFEST} names no step budget (spec.steps)"
    return status, ""


def read_scorable_eval(record: RunRecord) -> tuple[pd.DataFrame | None, str]:
    """(eval table, '') of a checked run, or (None, reason); the metrics table must be
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


# ----------------------------------------------------------------------------- the matrix's runs


@dataclass(frozen=True)
class ScorableRun:
    """An expected run whose records can be scored."""

    keys: dict  # RUN_COLUMNS -> value, from the matrix
    budget: int  # the run's step budget (its spec's ``steps``)
    evals: pd.DataFrame  # EVAL_COLUMNS


def read_runs(matrix: Mapping, runs_dir: Path) -> tuple[list[ScorableRun], pd.DataFrame]:
    """The matrix's runs that can be scored, and the missing ones (``MISSING_COLUMNS``, with reasons)."""
    check_matrix(matrix)
    runs_dir = Path(runs_dir)
    scorable, missing = [], []
    for run in matrix["runs"]:
        # A method entry with options or a variant ("regrama[tau=0.1]", "none[rr1]") is a
        # method of its own in every table: its matrix label replaces the method name.
        keys = {**{key: run[key] for key in RUN_COLUMNS}, "method": run.get("label", run["method"])}
        record = RunRecord(runs_dir / run["run_id"])
        status, reason = check_run(record, run)
        if not reason:
            evals, reason = read_scorable_eval(record)
        if reason:
            missing.append({**keys, "status": status, "reason": reason})
            continue
        scorable.append(ScorableRun(keys, int(record.manifest()["spec"]["steps"]), evals))
    return scorable, pd.DataFrame(missing, columns=MISSING_COLUMNS)


def read_eval_curves(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """Eval returns of ``runs`` (rows with ``RUN_COLUMNS``), one row per run and eval step
    (repeated evaluations at a step averaged): columns ``RUN_COLUMNS + [step, return]``."""
    frames = []
    for row in runs.itertuples():
        evals = RunRecord(Path(runs_dir) / row.run_id).eval()[["step", "return"]]
        evals = evals.groupby("step", as_index=False)["return"].mean()
        for column in RUN_COLUMNS:
            evals[column] = getattr(row, column)
        frames.append(evals)
    columns = RUN_COLUMNS + ["step", "return"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def read_metric_curves(runs: pd.DataFrame, runs_dir: Path, layer: str = "all") -> pd.DataFrame:
    """Each run's mean of every monitored metric at ``layer`` per (network, metric, step):
    columns ``RUN_COLUMNS + [network, metric, step, value]``."""
    frames = []
    for row in runs.itertuples():
        frame = RunRecord(Path(runs_dir) / row.run_id).metrics()
        frame = frame[frame["layer"] == layer]
        if frame.empty:
            continue
        frame = frame.groupby(["network", "metric", "step"], as_index=False)["value"].mean()
        for column in RUN_COLUMNS:
            frame[column] = getattr(row, column)
        frames.append(frame)
    columns = RUN_COLUMNS + ["network", "metric", "step", "value"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
