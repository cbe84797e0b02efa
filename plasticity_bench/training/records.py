"""A run's records, written in one place: the rows it measures (evaluations, metrics), its
training log (train.parquet, TensorBoard, W&B: training_log.py), progress.json, the manifest
and the checkpoint file. The trainer (training/run.py) adds rows and hands over what only it
knows (its counters, the state a checkpoint holds); every write into the run folder happens
here, each atomic (results.py).

Files of a run folder (results.py names them):
- ``eval.parquet``: one row per evaluation (step, mean return, episodes; a continual run's
  segment and segment task);
- ``metrics.parquet``: the monitor's, the probe's and the methods' rows (step, network,
  layer, metric, value);
- ``train.parquet`` and TensorBoard event files: the update statistics' means, episode
  returns and steps per second;
- ``progress.json``: where the run is, for ``plasticity-bench status``;
- ``manifest.json``: the run's spec, status, counters, provenance;
- ``checkpoint.pt``: everything a resumed run continues from.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from plasticity_bench import results
from plasticity_bench.spec import RunSpec
from plasticity_bench.status import time_left
from plasticity_bench.training_log import TrainingLog, metric_tag


class RunRecords:
    """The rows of one run and the files they go to. ``about`` is what the manifest says of
    the run besides its counters (network, provenance, device, threads); ``continual``: eval
    rows carry their segment; ``progress``: a progress bar shows the run (else a line per
    evaluation goes to the job's log)."""

    def __init__(self, spec: RunSpec, run_dir: Path, log: TrainingLog, about: dict, continual: bool,
                 progress: bool):
        self.spec, self.run_dir, self.log = spec, Path(run_dir), log
        self.about, self.continual, self.progress = about, continual, progress
        self.eval_rows: list[dict] = []
        self.metric_rows: list[dict] = []
        self.shown_evals = self.shown_metrics = 0  # eval and metric rows already in the live views
        self.rate_mark = (0, time.perf_counter())  # (env steps, time) of the last steps/s point
        self.attempt_mark = self.rate_mark  # (env steps, time) when this process started training

    def open(self, env_steps: int) -> None:
        """Open the live views for this process's training, from ``env_steps`` on."""
        self.log.open(env_steps, self.spec.run_id, self.spec.to_dict())
        self.rate_mark = self.attempt_mark = (env_steps, time.perf_counter())

    # ---- rows -----------------------------------------------------------------------
    def add_evaluation(self, step: int, returns: list[float], segment: dict | None = None) -> None:
        self.eval_rows.append({"step": step, "return": float(np.mean(returns)), "episodes": len(returns),
                               **(segment or {})})

    def add_metrics(self, step: int, rows: list[dict]) -> None:
        self.metric_rows += [{"step": step, **row} for row in rows]

    def add_method_stats(self, step: int, stats: dict[str, float]) -> None:
        """Keys are ``metric``, ``metric/network`` or ``metric/network/layer``."""
        for key, value in stats.items():
            metric, _, where = key.partition("/")
            network, _, layer = where.partition("/")
            self.metric_rows.append({"step": step, "network": network or "all", "layer": layer or "all",
                                     "metric": metric, "value": float(value)})

    def last_return(self) -> float:
        return self.eval_rows[-1]["return"]

    # ---- files ----------------------------------------------------------------------
    def write_tables(self) -> None:
        eval_columns = results.EVAL_COLUMNS + (results.SEGMENT_COLUMNS if self.continual else [])
        results.write_parquet(self.run_dir / results.EVAL, pd.DataFrame(self.eval_rows, columns=eval_columns))
        results.write_parquet(self.run_dir / results.METRICS, pd.DataFrame(self.metric_rows, columns=results.METRIC_COLUMNS))
        results.write_parquet(self.run_dir / results.TRAIN, self.log.frame())

    def show_new(self) -> None:
        """Eval and metric rows not yet in the live views (they are in their own parquet files)."""
        evals = [(row["step"], {"charts/eval_return": row["return"]}) for row in self.eval_rows[self.shown_evals:]]
        metrics = [(row["step"], {metric_tag(row): row["value"]}) for row in self.metric_rows[self.shown_metrics:]]
        self.log.show(evals + metrics)
        self.shown_evals, self.shown_metrics = len(self.eval_rows), len(self.metric_rows)

    def log_progress(self, env_steps: int, updates: int, loss_means: dict[str, float]) -> None:
        """Log the update statistics' means and the steps per second at this step, show the
        rows added since the last call, write progress.json."""
        steps, since = self.rate_mark
        now = time.perf_counter()
        scalars = dict(loss_means)
        if env_steps > steps:
            scalars["charts/SPS"] = (env_steps - steps) / max(now - since, 1e-9)
            self.rate_mark = (env_steps, now)
        if scalars:
            self.log.record(env_steps, scalars)
        self.show_new()
        self.write_progress(env_steps, updates)

    def record_evaluation(self, env_steps: int, updates: int) -> None:
        """After an evaluation row: the tables, the live views, progress.json, the log line."""
        self.write_tables()
        self.show_new()
        self.write_progress(env_steps, updates)
        self.log_evaluation(env_steps)

    def steps_per_second(self, env_steps: int) -> float:
        """Env steps per second of this process's training so far (updates, evaluations and
        monitoring included): what the time left is estimated from."""
        steps, since = self.attempt_mark
        return (env_steps - steps) / max(time.perf_counter() - since, 1e-9)

    def write_progress(self, env_steps: int, updates: int) -> None:
        """progress.json, for `plasticity-bench status` (one small atomic write per health check)."""
        results.write_json(self.run_dir / results.PROGRESS, {
            "step": env_steps, "steps": self.spec.steps, "updates": updates,
            "steps_per_second": round(self.steps_per_second(env_steps), 2),
            "last_eval_return": self.eval_rows[-1]["return"] if self.eval_rows else None,
            "eval_step": self.eval_rows[-1]["step"] if self.eval_rows else None,
            "updated": datetime.now(timezone.utc).isoformat()})

    def log_evaluation(self, env_steps: int) -> None:
        """Without a progress bar (workflow jobs), one line per evaluation in the job's log."""
        if self.progress:
            return
        rate = self.steps_per_second(env_steps)
        print(f"{self.spec.run_id}: step {env_steps}/{self.spec.steps} "
              f"({100 * env_steps / self.spec.steps:.0f}%), eval return {self.eval_rows[-1]['return']:.4g}, "
              f"{rate:.0f} steps/s, {time_left(self.spec.steps - env_steps, rate)} left",
              file=sys.stderr, flush=True)

    def write_manifest(self, status: str, counters: dict, error: str | None = None) -> dict:
        manifest = {
            "run_id": self.spec.run_id,
            "spec": self.spec.to_dict(),
            "seed": self.spec.seed,
            "status": status,
            "error": error,
            "step": counters["env_steps"],
            "updates": counters["updates"],
            **self.about,
            "wall_time_s": round(counters["wall_time"], 3),
            "resumes": counters["resumes"],
            "trained_with": counters["trained_with"],
            "started": counters["started"],
            "updated": datetime.now(timezone.utc).isoformat(),
        }
        results.write_json(self.run_dir / results.MANIFEST, manifest)
        return manifest

    # ---- checkpoints ----------------------------------------------------------------
    def write_checkpoint(self, state: dict) -> None:
        """The run's state (the trainer's part) with the rows, after the tables: a resumed
        run finds every record up to its checkpoint."""
        self.log.flush()  # the event files hold everything up to the checkpoint
        state = {**state, "eval_rows": self.eval_rows, "metric_rows": self.metric_rows, "train_rows": self.log.rows}
        self.write_tables()
        results.save_checkpoint(self.run_dir / results.CHECKPOINT, state)

    def restore(self, state: dict) -> None:
        """The rows a checkpoint holds; records written after it belong to the lost future and
        are rewritten. A checkpoint from before training-time logging has no train rows."""
        self.eval_rows, self.metric_rows = state["eval_rows"], state["metric_rows"]
        self.log.rows = state.get("train_rows", [])
        self.shown_evals, self.shown_metrics = len(self.eval_rows), len(self.metric_rows)  # shown before the checkpoint
        self.write_tables()

