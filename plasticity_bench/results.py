"""Run records on disk: atomic writers and readers.

One folder per run (DESIGN.md): manifest.json, eval.parquet, metrics.parquet,
checkpoint.pt. Every file is written to a temporary sibling, fsynced and renamed, so a
kill at any moment leaves either the old or the new version, never a torn file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

MANIFEST = "manifest.json"
EVAL = "eval.parquet"
METRICS = "metrics.parquet"
CHECKPOINT = "checkpoint.pt"

EVAL_COLUMNS = ["step", "return", "episodes"]
METRIC_COLUMNS = ["step", "network", "layer", "metric", "value"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory entry is synced.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    # Checkpoints hold numpy/python RNG states as well as tensors, so full unpickling is
    # needed; they are only ever read from the run's own folder.
    return torch.load(path, map_location="cpu", weights_only=False)


class RunRecord:
    """Read access to one run folder (used by aggregation and reports)."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)

    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def exists(self) -> bool:
        return (self.dir / MANIFEST).exists()

    def manifest(self) -> dict:
        return read_json(self.dir / MANIFEST)

    @property
    def status(self) -> str | None:
        return self.manifest().get("status") if self.exists else None

    def eval(self) -> pd.DataFrame:
        path = self.dir / EVAL
        return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=EVAL_COLUMNS)

    def metrics(self) -> pd.DataFrame:
        path = self.dir / METRICS
        return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=METRIC_COLUMNS)
