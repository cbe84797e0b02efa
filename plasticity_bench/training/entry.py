"""The entry points of training: ``train`` (one run) and ``train_seeds`` (the seeds of one
cell in one process), which the CLI, the workflow, the benches and the tests call. Each opens
its runs (the lock, a completed run's manifest, a restart, a build that fails recorded as a
failed run), then hands the opened seeds to the loop, ``stack.SeedGroup`` (one seed being a
group of one), for RL and supervised runs alike.

Layout of the package (calls go down the list):
- ``entry.py`` (this module): open runs, hand them to the loop;
- ``stack.py``: the one loop (RL and supervised seeds), over seed stacks;
- ``training/supervised.py``: the continual supervised run (algorithm ``sl``): its data and task-end hook;
- ``run.py``: ``Trainer``, one seed's state and steps (env step, update, monitor, probe,
  health check, the state a checkpoint holds), without a loop of its own;
- ``records.py``: every write into a run folder (rows, training log, progress, manifest,
  checkpoint);
- ``health.py``: update statistics summed on the device between health checks;
- ``compiled.py``: the update through torch.compile (hyperparameter ``compile: on``);
- ``graphs.py``: a stack's update captured into CUDA graphs and replayed (``compile: graphs``).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import torch

from plasticity_bench import results
from plasticity_bench.budget import check_budget
from plasticity_bench.devices import resolve_device
from plasticity_bench.spec import RunSpec
from plasticity_bench.training.run import RunConflictError, RunFailedError, Trainer, one_line
from plasticity_bench.training.stack import SeedGroup, ready
from plasticity_bench.training.supervised import SupervisedTrainer
from plasticity_bench.training_log import TrainingLog


def train(spec: RunSpec, run_dir: Path, threads: int = 1, device: str | torch.device = "auto",
          progress: bool = True, restart: bool = False, allow_short_budget: bool = False,
          tensorboard: bool = True, track: bool = False) -> dict:
    """Train ``spec`` into ``run_dir``; resume from its checkpoint; return the final manifest.

    ``device``: a ``torch.device``, or a name for ``devices.resolve_device`` ("auto" = CUDA
    when visible, else CPU); an unavailable one raises DeviceError before anything is written.
    A completed run is returned as it is; a failed one is tried again from its last
    checkpoint (a transient failure passes; a divergence, being seeded, fails again).
    ``restart`` deletes the run's records first and trains from scratch. ``tensorboard`` writes
    event files into ``run_dir/tensorboard``, ``track`` logs to W&B (training_log.py);
    train.parquet is written either way.

    Raises ShortBudgetError, before anything is written, when the budget cannot produce what
    the spec asks for (budget.py), unless ``allow_short_budget``; RunFailedError after
    recording status failed; RunLockedError while another process trains in ``run_dir``;
    CorruptRecordError for a damaged checkpoint or manifest.
    """
    if not allow_short_budget:
        check_budget(spec)
    device = device if isinstance(device, torch.device) else resolve_device(device)
    run_dir = Path(run_dir)
    with results.run_lock(run_dir):
        opened = open_run(spec, run_dir, threads, device, progress, restart, TrainingLog(run_dir, tensorboard, track))
        return opened if isinstance(opened, dict) else run_to_end(opened)


def open_run(spec: RunSpec, run_dir: Path, threads: int, device: torch.device, progress: bool, restart: bool,
             log: TrainingLog) -> Trainer | dict:
    """In the run's lock: the completed run's manifest, or its trainer, built and ready to
    resume (after ``restart`` cleared the records). A build that fails is recorded as a
    failed run and raises RunFailedError; another run's folder raises RunConflictError."""
    results.remove_orphans(run_dir)
    previous = results.read_manifest(run_dir) if not restart else _manifest_or_none(run_dir)
    if previous is not None and previous.get("run_id") != spec.run_id:
        raise RunConflictError(f"{run_dir} holds run {previous.get('run_id')!r}, not {spec.run_id!r}; choose another --out")
    if restart:
        results.clear_run(run_dir)
    elif previous is not None and previous.get("status") == "completed":
        log.close()
        return previous
    try:
        return make_trainer(spec, run_dir, threads, device, progress, log)
    except Exception as error:  # a method's setup, an environment, a network that cannot be built
        if results.is_resource_error(error):  # a full disk or memory: the machine's, not the run's
            raise results.ResourceExhaustedError(f"{spec.run_id}: {one_line(error)}") from error
        reason = one_line(error)
        results.write_json(run_dir / results.MANIFEST, {"run_id": spec.run_id, "spec": spec.to_dict(),
                                                        "seed": spec.seed, "status": "failed", "error": reason,
                                                        "updated": datetime.now(timezone.utc).isoformat()})
        raise RunFailedError(reason) from error


def make_trainer(spec: RunSpec, run_dir: Path, threads: int, device: torch.device, progress: bool,
                 log: TrainingLog | None = None) -> Trainer:
    """The RL Trainer, or for algorithm sl the continual supervised one (training/supervised.py)."""
    if spec.algo == "sl":
        return SupervisedTrainer(spec, run_dir, threads, device, progress, log)
    return Trainer(spec, run_dir, threads, device, progress, log)


def _manifest_or_none(run_dir: Path) -> dict | None:
    """With --restart a damaged manifest is replaced, not read."""
    try:
        return results.read_manifest(run_dir)
    except results.CorruptRecordError:
        return None


def run_to_end(trainer: Trainer) -> dict:
    """Train one opened seed to the end (a group of one, stack.py); return its final
    manifest, or raise RunFailedError after recording why it failed."""
    ready(trainer)
    group = SeedGroup([trainer], trainer.progress)
    manifest = group.run()[0]
    if id(trainer) in group.errors:
        raise group.errors[id(trainer)]
    return manifest


def train_seeds(specs: list[RunSpec], run_dirs: list[Path], threads: int = 1, device: str | torch.device = "auto",
                progress: bool = True, restart: bool = False, allow_short_budget: bool = False,
                tensorboard: bool = True, track: bool = False) -> list[dict]:
    """Train the runs ``specs`` (one cell, seeds differing) into ``run_dirs``; return every
    run's final manifest, a failed seed's included (status failed, its reason in ``error``).

    Raises, before anything is trained, what ``train`` raises before it trains
    (ShortBudgetError, RunConflictError, RunLockedError, CorruptRecordError).
    """
    cells = {json.dumps({key: value for key, value in spec.to_dict().items() if key != "seed"}, sort_keys=True)
             for spec in specs}
    if len(cells) != 1:
        raise ValueError("train_seeds trains the seeds of one cell: the specs differ in more than their seed")
    if not allow_short_budget:
        for spec in specs:
            check_budget(spec)
    device = device if isinstance(device, torch.device) else resolve_device(device)
    with ExitStack() as locks:
        manifests: dict[int, dict] = {}
        trainers: list[Trainer] = []
        for run_dir in run_dirs:
            locks.enter_context(results.run_lock(Path(run_dir)))
        # --restart with several seeds: only the seeds whose records are damaged start again
        # (all of them when none is); the others resume, or stay completed.
        damaged = [restart and (len(specs) == 1 or damaged_records(Path(run_dir))) for run_dir in run_dirs]
        restarts = damaged if any(damaged) else [restart] * len(specs)
        for index, (spec, run_dir) in enumerate(zip(specs, run_dirs)):
            try:
                opened = open_run(spec, Path(run_dir), threads, device, False,
                                  restarts[index], TrainingLog(Path(run_dir), tensorboard, track))
            except RunFailedError:
                manifests[index] = results.read_manifest(Path(run_dir))
                continue
            if isinstance(opened, dict):
                manifests[index] = opened
            else:
                ready(opened)
                trainers.append(opened)
        if trainers:  # none when every seed had completed
            for trainer, manifest in zip(trainers, SeedGroup(trainers, progress).run()):
                manifests[specs.index(trainer.spec)] = manifest
    return [manifests[index] for index in range(len(specs))]


def damaged_records(run_dir: Path) -> bool:
    """Whether the run's manifest or checkpoint cannot be read (so it cannot resume)."""
    try:
        manifest = results.read_manifest(run_dir)
        if manifest is not None and manifest.get("status") == "completed":
            return False  # a completed run is never resumed: its checkpoint is not read
        if (run_dir / results.CHECKPOINT).exists():
            results.load_checkpoint(run_dir / results.CHECKPOINT)
    except results.CorruptRecordError:
        return True
    return False
