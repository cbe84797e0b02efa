"""`plasticity-bench status`: every run of a workflow at a glance, while it trains.

Reads, per run folder, the manifest (status, budget), ``progress.json`` (step, steps/s,
last evaluation; the trainer rewrites it at every health check and evaluation) and the
folder's lock: a run whose manifest says "running" but whose lock no process holds was
stopped (killed or interrupted) and resumes when its job runs again. With a results
folder that holds ``matrix-*.json`` files, the newest matrix's runs without a folder are
listed as pending. Never imports torch: it must answer in a moment beside a busy trainer.
"""

from __future__ import annotations

import fcntl
import json
import math
from dataclasses import dataclass
from pathlib import Path

from plasticity_bench.results import LOCK, PROGRESS, CorruptRecordError, read_json, read_manifest

STATES = ("running", "stopped", "failed", "completed", "pending")


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
    """Whether a trainer process holds the run folder now (its flock; released on any exit)."""
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
    note: str = ""  # a failed run's reason, or why a folder cannot be read

    def left(self) -> str:
        if self.state != "running" or self.step is None or self.steps is None:
            return ""
        return time_left(self.steps - self.step, self.steps_per_second or 0.0)


def run_status(run_dir: Path) -> RunStatus:
    try:
        manifest = read_manifest(run_dir)
    except CorruptRecordError as error:
        return RunStatus(run_dir.name, "failed", note=str(error))
    if manifest is None:
        return RunStatus(run_dir.name, "running" if lock_held(run_dir) else "pending", note="no manifest yet")
    progress = {}
    if (run_dir / PROGRESS).exists():
        try:
            progress = read_json(run_dir / PROGRESS)
        except (ValueError, UnicodeDecodeError):
            progress = {}  # rewritten at the next health check
    state = manifest.get("status", "running")
    if state == "running" and not lock_held(run_dir):
        state = "stopped"
    steps = (manifest.get("spec") or {}).get("steps")
    step = manifest.get("step") if state in ("completed", "failed") else progress.get("step", manifest.get("step"))
    return RunStatus(run_dir.name, state if state in STATES else "failed", step, steps,
                     progress.get("last_eval_return"), progress.get("steps_per_second"),
                     manifest.get("error") or "")


def workflow_status(folder: Path) -> list[RunStatus]:
    """Every run under ``folder``: a results folder (runs/ inside, matrix-*.json beside) or a
    folder of run folders. Pending runs come from the newest matrix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; give a results folder or a folder of run folders")
    runs_dir = folder / "runs" if (folder / "runs").is_dir() else folder
    statuses = {path.name: run_status(path) for path in sorted(runs_dir.iterdir()) if path.is_dir()}
    matrices = sorted(folder.glob("matrix-*.json"), key=lambda path: path.stat().st_mtime)
    if matrices:
        planned = [run["run_id"] for run in json.loads(matrices[-1].read_text())["runs"]]
        statuses = {run_id: statuses.get(run_id, RunStatus(run_id, "pending")) for run_id in planned}
    return list(statuses.values())


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
