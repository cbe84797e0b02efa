"""`plasticity-bench status`: every run of a workflow at a glance, while it trains.

Reads, per run folder, the manifest (status, budget), ``progress.json`` (step, steps/s,
last evaluation; the trainer rewrites it at every health check and evaluation) and the
folder's lock: a run whose manifest says "running" but whose lock no process holds was
stopped (killed or interrupted) and resumes when its job runs again, from the step its
manifest records (its last checkpoint's). With a results folder that holds ``matrix-*.json``
files, every matrix's runs without a folder are listed as pending. An entry that cannot be
read (a damaged manifest, lock or matrix) is listed as unreadable with the reason; the
others are listed as usual. Never imports torch: it must answer in a moment beside a busy trainer.
"""

from __future__ import annotations

import fcntl
import json
import math
from dataclasses import dataclass
from pathlib import Path

from plasticity_bench.results import LOCK, MANIFEST, PROGRESS, CorruptRecordError, read_json, read_manifest

STATES = ("running", "stopped", "failed", "completed", "pending", "unreadable")


def time_left(steps_left: int, steps_per_second: float) -> str:
    """A rough "1h02m" / "3m10s" / "12s" for the time ``steps_left`` take at this rate."""
    if steps_left <= 0:
        return "0s"
    if not steps_per_second > 0 or not math.isfinite(steps_per_second):
        return "?"
    seconds = round(steps_left / steps_per_second)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def lock_held(run_dir: Path) -> bool:
    """Whether a trainer process holds the run folder now (its flock; released on any exit).
    OSError when the lock cannot be opened (a directory in its place, no permission)."""
    path = run_dir / LOCK
    if not path.exists():
        return False
    with open(path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    state: str  # one of STATES
    step: int | None = None
    steps: int | None = None
    last_return: float | None = None
    steps_per_second: float | None = None
    note: str = ""  # a failed run's reason, why an entry cannot be read, where a stopped run resumes

    def left(self) -> str:
        if self.state != "running" or self.step is None or self.steps is None:
            return ""
        return time_left(self.steps - self.step, self.steps_per_second or 0.0)


def _number(value, kind: type = float):
    """``value`` if it is a number (an int where ``kind`` is int; never a bool), else None:
    a damaged progress file or manifest shows nothing rather than stopping the listing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        return None
    return value


def run_status(run_dir: Path) -> RunStatus:
    """The run's state; "unreadable" with the reason when its manifest or lock cannot be read."""
    try:
        manifest = read_manifest(run_dir)
    except CorruptRecordError as error:
        return RunStatus(run_dir.name, "unreadable", note=str(error))
    except OSError as error:  # a directory where the manifest should be, no permission
        return RunStatus(run_dir.name, "unreadable", note=f"{run_dir / MANIFEST}: {error.strerror or error}")
    try:
        held = lock_held(run_dir)
    except OSError as error:
        return RunStatus(run_dir.name, "unreadable", note=f"lock {run_dir / LOCK}: {error.strerror or error}")
    if manifest is None:
        return RunStatus(run_dir.name, "running" if held else "pending", note="no manifest yet")
    spec = manifest.get("spec", {})
    if not isinstance(spec, dict):
        return RunStatus(run_dir.name, "unreadable", note=f"{run_dir / MANIFEST}: its spec is not an object")
    progress = {}
    if (run_dir / PROGRESS).is_file():
        try:
            progress = read_json(run_dir / PROGRESS)
        except (ValueError, UnicodeDecodeError, OSError):
            progress = {}  # rewritten at the next health check
        if not isinstance(progress, dict):
            progress = {}
    state = manifest.get("status", "running")
    if state == "running" and not held:
        state = "stopped"
    steps = _number(spec.get("steps"), int)
    recorded = _number(manifest.get("step"), int)
    note = str(manifest.get("error") or "")
    if state == "running":
        step = _number(progress.get("step"), int)
        step = recorded if step is None else step
    else:
        # The manifest's step is the last checkpoint's (it is rewritten at every checkpoint):
        # where a stopped run resumes. progress.json may be ahead, from the killed attempt.
        step = recorded
        attempt = _number(progress.get("step"), int)
        if state == "stopped" and attempt is not None and recorded is not None and attempt > recorded:
            note = note or f"stopped at step {attempt}; resumes from step {recorded}"
    return RunStatus(run_dir.name, state if state in STATES else "unreadable", step, steps,
                     _number(progress.get("last_eval_return")), _number(progress.get("steps_per_second")), note)


def planned_runs(folder: Path) -> tuple[list[str], list[RunStatus]]:
    """The run ids every matrix-*.json of ``folder`` plans (in the matrices' order, oldest
    first), and an unreadable entry for each matrix that cannot be read."""
    planned: dict[str, None] = {}
    bad = []
    for path in sorted(folder.glob("matrix-*.json"), key=lambda path: (path.stat().st_mtime, path.name)):
        try:
            runs = json.loads(path.read_text())["runs"]
            ids = [run["run_id"] for run in runs]
            if not all(isinstance(run_id, str) for run_id in ids):
                raise TypeError("a run_id is not a string")
        except json.JSONDecodeError as error:
            bad.append(RunStatus(path.name, "unreadable", note=f"not valid JSON: {error}"))
            continue
        except (OSError, UnicodeDecodeError, KeyError, TypeError) as error:
            bad.append(RunStatus(path.name, "unreadable", note=f"not a matrix: {type(error).__name__}: {error}"))
            continue
        planned.update(dict.fromkeys(ids))
    return list(planned), bad


def workflow_status(folder: Path) -> list[RunStatus]:
    """Every run under ``folder``: a results folder (runs/ inside, matrix-*.json beside), a
    folder of run folders, or one run folder. Pending runs come from every matrix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; give a results folder or a folder of run folders")
    if (folder / MANIFEST).exists() or (folder / LOCK).exists():  # a run folder itself, not its subfolders
        return [run_status(folder)]
    runs_dir = folder / "runs" if (folder / "runs").is_dir() else folder
    statuses = {path.name: run_status(path) for path in sorted(runs_dir.iterdir()) if path.is_dir()}
    planned, bad = planned_runs(folder)
    # the planned runs in their matrices' order, then the folders no matrix plans (another
    # config's runs, a run trained by hand): every run there is is listed
    listed = {run_id: statuses.get(run_id, RunStatus(run_id, "pending")) for run_id in planned}
    listed.update(statuses)
    return list(listed.values()) + bad


def status_table(statuses: list[RunStatus]) -> str:
    """Fixed-width table, then one line of counts per state."""
    header = ("run", "state", "step", "last return", "steps/s", "left", "note")
    rows = [(s.run_id, s.state, "" if s.step is None else f"{s.step}/{s.steps}",
             "" if s.last_return is None else f"{s.last_return:.4g}",
             "" if s.steps_per_second is None or s.state != "running" else f"{s.steps_per_second:.0f}",
             s.left(), s.note[:80]) for s in statuses]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    lines.append(", ".join(f"{count} {state}" for state, count in counts.items() if count) or "no runs")
    return "\n".join(lines)
