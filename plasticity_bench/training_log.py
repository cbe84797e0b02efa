"""Training-time logging: what a run shows while it trains, and keeps in ``train.parquet``.

Tags follow CleanRL's where it has one: ``charts/episodic_return``, ``charts/episodic_length``
and ``charts/SPS`` (env steps per second since the previous point), ``losses/<name>`` for
what the agent's update returns (each role's training loss ``losses/<role>_loss`` with the
methods' terms, and CleanRL's ``losses/td_loss``, ``losses/q_values``, ``losses/qf1_loss``,
``losses/qf1_values``, ``losses/qf_loss``, ``losses/actor_loss``, ``losses/alpha``,
``losses/alpha_loss``; SAC adds ``losses/entropy``). Every such point is a row of
``train.parquet`` (step, name, value; step = env steps). The TensorBoard event files in
``<run>/tensorboard/`` and W&B (``--track``) also show the evaluation returns
(``charts/eval_return``) and every row of metrics.parquet (monitor, probe, resets and other
method statistics) as ``metrics/<metric>/<network>[/<layer>]``; those stay in eval.parquet
and metrics.parquet, so the three files together hold everything the event files hold.

Cost: the update's statistics are summed on the device (the trainer's health-check sums)
and their means are logged when the trainer checks health, i.e. every ``monitor_every_updates``
updates, at every evaluation and checkpoint, and at the end; that check synchronises with
the device once anyway, so logging adds no host sync (bench/logging_overhead.py measures it).

Resume: the rows live in the checkpoint like eval and metric rows, so ``train.parquet`` is
rewritten from it; the event files cannot be rewritten, so a resumed run opens a new one
with ``purge_step`` just after the checkpoint, and TensorBoard hides what the killed attempt
wrote after it. Event files are flushed before every checkpoint.
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from plasticity_bench import results

WANDB_PROJECT = "plasticity-bench"  # unless WANDB_PROJECT says otherwise


class TrackingUnavailableError(RuntimeError):
    """--track without wandb installed."""


def check_tracking_available() -> None:
    """Raise TrackingUnavailableError when wandb cannot be imported (only called with --track,
    before training: the extra is optional, and a broken install fails here, not mid-run)."""
    try:
        import wandb  # noqa: F401
    except ImportError as error:
        raise TrackingUnavailableError("--track logs to Weights & Biases, but wandb is not installed "
                                       f"({error}); install it with: pip install 'plasticity-bench[wandb]'") from None


def metric_tag(row: dict[str, Any]) -> str:
    """A metrics.parquet row's tag: ``metrics/<metric>/<network>`` plus ``/<layer>`` for a layer."""
    layer = "" if row["layer"] == "all" else f"/{row['layer']}"
    return f"metrics/{row['metric']}/{row['network']}{layer}"


def start_after_earlier_attempts(folder: Path) -> None:
    """Wait, if needed, until the clock's second is past every event file in ``folder``.
    TensorBoard reads a folder's event files in name order, and a file's name starts with
    the second its writer opened, then host, pid and a per-process counter: two attempts
    opened within one second could be read in the wrong order (the counter's "10" sorts
    before "9"; another process's pid may sort first), and the later attempt's purge of
    the earlier one's orphaned points would be applied before those points are read."""
    stamps = [int(match[1]) for path in folder.glob("events.out.tfevents.*")
              if (match := re.match(r"events\.out\.tfevents\.(\d+)\.", path.name))]
    if stamps:
        wait = max(stamps) + 1 - time.time()
        if wait > 0:
            time.sleep(wait)


class TrainingLog:
    """The run's training scalars (``rows``, for train.parquet) and the live views of them:
    TensorBoard event files when ``tensorboard``, a W&B run when ``track``."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, track: bool = False):
        self.run_dir = Path(run_dir)
        self.tensorboard, self.track = tensorboard, track
        self.rows: list[dict[str, Any]] = []
        self.writer = None
        self.wandb_run = None

    def open(self, resumed_at: int, run_id: str, config: dict[str, Any]) -> None:
        """Start the live views for a run at env step ``resumed_at`` (0 for a new run):
        anything an earlier attempt logged after it is hidden, so no point appears twice."""
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used

            start_after_earlier_attempts(self.run_dir / results.TENSORBOARD)
            self.writer = SummaryWriter(str(self.run_dir / results.TENSORBOARD), purge_step=resumed_at + 1)
        if self.track:
            check_tracking_available()
            import wandb  # only with --track: the extra is optional

            self.wandb_run = wandb.init(project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), name=run_id,
                                        id=re.sub(r"[^A-Za-z0-9_-]", "_", run_id), resume="allow", config=config,
                                        dir=str(self.run_dir))

    def record(self, step: int, scalars: dict[str, float]) -> None:
        """Scalars of the training itself: rows of train.parquet and points of the views."""
        self.rows += [{"step": step, "name": name, "value": float(value)} for name, value in scalars.items()]
        self.show([(step, scalars)])

    def show(self, points: Iterable[tuple[int, dict[str, float]]]) -> None:
        """Points for the views only (their rows are in eval.parquet or metrics.parquet),
        merged per step and in step order, as W&B requires."""
        by_step: dict[int, dict[str, float]] = defaultdict(dict)
        for step, scalars in points:
            by_step[step].update(scalars)
        for step in sorted(by_step):
            if self.writer is not None:
                for name, value in by_step[step].items():
                    self.writer.add_scalar(name, value, step)
            if self.wandb_run is not None:
                self.wandb_run.log(by_step[step], step=step)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=results.TRAIN_COLUMNS)

    def flush(self) -> None:
        """Make the event files hold everything shown so far (before a checkpoint)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None
