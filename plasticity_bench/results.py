"""Run records on disk: atomic writers, the manifest reader and the run-folder lock.

One folder per run (docs/architecture.md): manifest.json, eval.parquet, metrics.parquet,
train.parquet, checkpoint.pt, and TensorBoard event files in tensorboard/ (appended to, not
replaced; see training_log.py). Every file is written to a temporary sibling, fsynced and renamed, so a
kill at any moment leaves either the old or the new version, never a torn file (only an
orphan temporary, which ``remove_orphans`` deletes at the next start). Files are written
0644 and folders 0755 whatever the umask: records and reports are meant to be shared.
A checkpoint carries the SHA-256 of its payload, so a damaged one is recognised as such.
The analysis reads run folders with ``plasticity_bench.analysis.runs``, which uses the names
and the manifest reader defined here; importing this module does not import torch.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

MANIFEST = "manifest.json"
EVAL = "eval.parquet"
METRICS = "metrics.parquet"
TRAIN = "train.parquet"
# Live progress of a training run (step, steps/s, last return), rewritten at every health
# check; `plasticity-bench status` reads it. Not a record: nothing is computed from it.
PROGRESS = "progress.json"
CHECKPOINT = "checkpoint.pt"
TENSORBOARD = "tensorboard"
LOCK = ".train.lock"
RECORD_FILES = (MANIFEST, EVAL, METRICS, TRAIN, CHECKPOINT)
TMP_SUFFIX = ".tmp"
FILE_MODE, DIR_MODE = 0o644, 0o755
CHECKPOINT_MAGIC = b"plasticity-bench checkpoint sha256\n"


class ResourceExhaustedError(Exception):
    """The machine ran out of disk or memory while runs trained: not the runs' verdict. Their
    manifests stay ``running`` and the next start resumes them from their checkpoints."""


# A full disk or quota, exhausted memory: the machine's state, not the run's.
RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM})


def is_resource_error(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) is a full disk or exhausted memory (host or
    CUDA: torch's OutOfMemoryError, matched by name so that this module needs no torch)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (MemoryError, ResourceExhaustedError)) or type(error).__name__ == "OutOfMemoryError":
            return True
        if isinstance(error, OSError) and error.errno in RESOURCE_ERRNOS:
            return True
        error = error.__cause__ or error.__context__
    return False


class CorruptRecordError(Exception):
    """A record file that cannot be read back (truncated, overwritten, damaged)."""


class RunLockedError(Exception):
    """Another process holds the run folder."""


EVAL_COLUMNS = ["step", "return", "episodes"]
#: A continual run's eval rows add the segment evaluated and its task (environments/continual.py).
SEGMENT_COLUMNS = ["segment", "segment_task"]
METRIC_COLUMNS = ["step", "network", "layer", "metric", "value"]
TRAIN_COLUMNS = ["step", "name", "value"]


def make_dirs(path: Path) -> None:
    """``mkdir -p`` whose new folders are DIR_MODE whatever the umask."""
    path = Path(path)
    if path.is_dir():
        return
    make_dirs(path.parent)
    path.mkdir(exist_ok=True)
    os.chmod(path, DIR_MODE)


def atomic_write_bytes(path: Path, *chunks: bytes | memoryview) -> None:
    """Write the concatenated ``chunks`` to ``path`` (FILE_MODE) atomically."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes it private
            for chunk in chunks:
                f.write(chunk)
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
    import torch  # here, not at the top: the analysis reads records with this module and never needs torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    atomic_write_bytes(path, CHECKPOINT_MAGIC, hashlib.sha256(payload).digest(), payload)


def load_checkpoint(path: Path) -> dict:
    """The state ``save_checkpoint`` wrote; CorruptRecordError when the file is damaged."""
    import torch  # see save_checkpoint

    data = memoryview(Path(path).read_bytes())
    header = len(CHECKPOINT_MAGIC)
    if bytes(data[:header]) != CHECKPOINT_MAGIC:
        raise CorruptRecordError(f"{path} is not a plasticity-bench checkpoint ({len(data)} bytes, no header)")
    digest, payload = bytes(data[header:header + 32]), data[header + 32:]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptRecordError(f"{path} is damaged (its content does not match its SHA-256)")
    # Checkpoints hold numpy/python RNG states as well as tensors, so full unpickling is
    # needed; they are only ever read from the run's own folder.
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception as error:
        raise CorruptRecordError(f"{path} cannot be unpickled: {type(error).__name__}: {error}") from None


def read_manifest(run_dir: Path) -> dict | None:
    """The run's manifest (None when absent); CorruptRecordError when unreadable."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = read_json(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptRecordError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise CorruptRecordError(f"{path} holds no JSON object")
    return manifest


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for one process (an advisory flock, released even on SIGKILL)."""
    make_dirs(run_dir)
    path = Path(run_dir) / LOCK
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise RunLockedError(f"{run_dir} is being written by another plasticity-bench train process "
                                 f"(pid {holder}); wait for it to finish or stop it") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def remove_orphans(run_dir: Path) -> list[Path]:
    """Delete temporaries left by a writer killed mid-write (call with the run lock held)."""
    orphans = sorted(Path(run_dir).glob(f".*{TMP_SUFFIX}"))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


def clear_run(run_dir: Path) -> None:
    """Delete a run's records (``train --restart``); other files in the folder stay."""
    for name in RECORD_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)
    shutil.rmtree(Path(run_dir) / TENSORBOARD, ignore_errors=True)
