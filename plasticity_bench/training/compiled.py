"""The update through torch.compile (hyperparameter ``compile: on``).

What is compiled: an agent's ``update`` (losses, backward, the optimizer step, the target
update), for a seed stack or a seed training alone. What is not: acting, evaluation, the
monitor, the probe and the methods, which keep acting on the ordinary modules outside the
compiled region between updates (a method's in-place edit of a parameter is read by the
next compiled call like any input).

Exactness: inductor fuses and reorders floating-point work, so a compiled run differs from
the eager run of the same spec in the last bits from the first update on, and the
differences grow as training amplifies them (tests/test_compiled.py states the tolerance
measured after 200 updates). A seed's numbers in a compiled stack are not guaranteed to
equal its compiled one-seed run's: the stack's kernels are compiled for its shapes. Runs
that must match one-seed runs bit for bit keep ``compile: off`` (the default).

Compilation costs seconds to a minute per process and stack shape; it is printed. The FX
graph cache (inductor's, on disk) lives beside the run folders (``.inductor-cache`` in the
folder that holds them, unless TORCHINDUCTOR_CACHE_DIR is set), so the second job of a
config starts warm.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

CACHE_FOLDER = ".inductor-cache"
CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


def use_cache_beside(runs_folder: Path) -> None:
    """Inductor's caches in ``runs_folder``/.inductor-cache, unless the user chose a folder
    (TORCHINDUCTOR_CACHE_DIR). Importing torch._dynamo, which an eager optimizer step does,
    sets the variable to inductor's default in /tmp: that value is not a choice."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen is None or os.path.abspath(chosen) == os.path.abspath(default_cache_dir()):
        os.environ[CACHE_VARIABLE] = str(Path(runs_folder).resolve() / CACHE_FOLDER)


def chosen_update(update: Callable, hyperparams: dict, runs_folder: Path) -> Callable:
    """The update a run's ``compile`` setting asks for: ``update`` itself, or compiled.
    (``graphs`` is captured by the seed stack, training/graphs.py; a seed that trains
    unstacked runs ``update`` itself.)"""
    if hyperparams.get("compile", "off") == "on":
        return compile_update(update, runs_folder)
    return update


def compile_update(update: Callable, runs_folder: Path) -> Callable:
    """``update`` compiled, its caches beside the run folders; the first call's seconds
    (compilation) are printed."""
    use_cache_beside(runs_folder)
    compiled = torch.compile(update)
    first = True

    def timed(batch):
        nonlocal first
        if not first:
            return compiled(batch)
        first = False
        start = time.perf_counter()
        stats = compiled(batch)
        print(f"plasticity-bench: compiled the update in {time.perf_counter() - start:.1f} s "
              f"(inductor cache {os.environ[CACHE_VARIABLE]})", flush=True)
        return stats

    return timed
