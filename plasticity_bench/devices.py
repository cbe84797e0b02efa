"""Which torch device a training job runs on.

``--device auto`` means CUDA when a GPU is visible, else the CPU; an explicit device is
checked against what this machine has, and a bad one is refused with the valid choices
before a run writes anything.

Spreading local parallel jobs over several GPUs: Snakemake gives a job no slot index, so
each job takes one itself. A job holds an exclusive ``flock`` on the lowest-numbered free
file ``slot-<n>.lock`` of a shared folder (the workflow uses ``results/.gpu_slots``) for
its whole life and runs on GPU ``n % device_count``. The jobs running at any moment hold
slots 0..J-1, so they are spread round robin, and a job that ends (or is killed: the kernel
drops the lock with the process) frees its slot for the next job, which therefore lands
on the GPU that just became less loaded. With one visible GPU (the usual case under SLURM,
which sets CUDA_VISIBLE_DEVICES per job) no slot is taken.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import IO

import torch

AUTO = "auto"
_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")


class DeviceError(ValueError):
    """A requested device this machine cannot provide (the message lists the valid ones)."""


def valid_choices(device_count: int) -> list[str]:
    return [AUTO, "cpu"] + (["cuda"] + [f"cuda:{index}" for index in range(device_count)] if device_count else [])


def device_for_slot(slot: int, device_count: int) -> str:
    """Device of the job holding ``slot``: GPUs round robin, or the CPU without GPUs."""
    if slot < 0:
        raise ValueError(f"slot must be non-negative, got {slot}")
    return f"cuda:{slot % device_count}" if device_count > 0 else "cpu"


def choose_device(requested: str, device_count: int, slot: int | None = None) -> str:
    """The device name for ``requested`` on a machine with ``device_count`` visible GPUs.

    Pure (no torch calls), so the selection logic is testable without a GPU.
    ``auto`` → ``cuda:{slot % device_count}`` with a slot, else ``cuda`` (the current
    device), or ``cpu`` without GPUs. ``cpu`` is always valid; ``cuda`` needs a GPU;
    ``cuda:N`` needs N < device_count.
    """
    name = requested.strip().lower()
    if name == AUTO:
        if device_count == 0:
            return "cpu"
        return device_for_slot(slot, device_count) if slot is not None else "cuda"
    if name == "cpu":
        return "cpu"
    index = _CUDA_INDEX.match(name)
    if name == "cuda" or index:
        if device_count == 0:
            raise DeviceError(f"device {requested!r} is not available: no CUDA GPU is visible "
                              f"(torch.cuda.device_count() is 0); valid choices: {', '.join(valid_choices(0))}")
        if index and int(index.group(1)) >= device_count:
            raise DeviceError(f"device {requested!r} is not available: {device_count} CUDA GPU(s) visible; "
                              f"valid choices: {', '.join(valid_choices(device_count))}")
        return name
    raise DeviceError(f"unknown device {requested!r}; valid choices: {', '.join(valid_choices(device_count))}")


def cuda_device_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(requested: str, slot: int | None = None) -> torch.device:
    """``torch.device`` for ``requested`` ("auto", "cpu", "cuda", "cuda:N") on this machine;
    raises DeviceError naming the valid choices when it cannot be provided."""
    return torch.device(choose_device(requested, cuda_device_count(), slot))


class SlotLock:
    """The lowest free slot of ``directory``, held (flock) until ``release`` or process exit."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.slot, self._handle = self._acquire()

    def _acquire(self) -> tuple[int, IO]:
        slot = 0
        while True:
            handle = open(self.directory / f"slot-{slot}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                slot += 1
                continue
            handle.truncate(0)  # the holder's pid, for whoever wonders which job has it
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return slot, handle

    def release(self) -> None:
        if not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()

    def __enter__(self) -> "SlotLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def select_training_device(requested: str, slots_dir: Path | None) -> tuple[torch.device, SlotLock | None]:
    """The device for one training job, plus the slot lock it must hold while training.

    A slot is taken only for ``auto`` with several visible GPUs and a slots folder; the
    device is validated before any slot file is written.
    """
    count = cuda_device_count()
    device = torch.device(choose_device(requested, count))  # validates before writing anything
    if requested.strip().lower() != AUTO or count < 2 or slots_dir is None:
        return device, None
    lock = SlotLock(slots_dir)
    return torch.device(device_for_slot(lock.slot, count)), lock
