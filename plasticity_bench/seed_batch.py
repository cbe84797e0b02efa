"""Several seeds of one cell trained by one process (seeds as a batch dimension)."""

from __future__ import annotations

from pathlib import Path

import torch

from plasticity_bench.spec import RunSpec
from plasticity_bench.train import RunFailedError, train


def train_seeds(specs: list[RunSpec], run_dirs: list[Path], threads: int = 1, device: str | torch.device = "auto",
                progress: bool = True, restart: bool = False, allow_short_budget: bool = False,
                tensorboard: bool = True, track: bool = False) -> list[dict]:
    """Train the runs ``specs`` (one cell, seeds differing) into ``run_dirs``; return every
    run's final manifest, a failed seed's included (status failed, its reason in ``error``).

    Raises, before anything is trained, what ``train.train`` raises before it trains
    (ShortBudgetError, RunConflictError, RunLockedError, CorruptRecordError).
    """
    manifests = []
    for spec, run_dir in zip(specs, run_dirs):
        try:
            manifests.append(train(spec, run_dir, threads=threads, device=device, progress=progress, restart=restart,
                                   allow_short_budget=allow_short_budget, tensorboard=tensorboard, track=track))
        except RunFailedError:
            from plasticity_bench import results

            manifests.append(results.read_manifest(Path(run_dir)))
    return manifests
