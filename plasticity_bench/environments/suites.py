"""Benchmark suites: tasks, step budgets and score normalisation, read from the package's
``suites/*.yaml`` (package data, so an installed wheel finds them as an editable checkout
does), or from the folder named by ``PLASTICITY_BENCH_SUITES_DIR`` when it is set.

A task's normalised score is ``(return - random) / (reference - random)``: 0 for a uniform
random policy, 1 for the reference agent (or the maximum return, where a suite says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+; the package supports 3.10
    from importlib.resources.abc import Traversable

SUITES_DIR_ENV_VAR = "PLASTICITY_BENCH_SUITES_DIR"


@dataclass(frozen=True)
class TaskScore:
    random: float
    reference: float
    source: str


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    algos: tuple[str, ...]
    steps: int
    tasks: dict[str, TaskScore]
    # Continual sequences (environments/continual.py) by name; their segments' base tasks
    # are scored with ``tasks``. The suite's runs are the sequences' tasks ``continual:<name>``.
    sequences: dict[str, dict] = field(default_factory=dict)

    def run_tasks(self) -> list[str]:
        """The tasks a workflow trains for this suite by default: its sequences, if any, else its tasks."""
        return [f"continual:{name}" for name in self.sequences] or list(self.tasks)

    def normalise(self, task: str, returns):
        """``(returns - random) / (reference - random)``; ``returns`` a scalar or array."""
        if task not in self.tasks:
            raise ValueError(
                f"task {task!r} is not in suite {self.name!r}; its tasks: {', '.join(self.tasks)}"
            )
        score = self.tasks[task]
        normalised = (np.asarray(returns, dtype=np.float64) - score.random) / (score.reference - score.random)
        return float(normalised) if np.ndim(normalised) == 0 else normalised


def suites_dir() -> Traversable:
    """The folder of suite files: the override, else the package's ``suites`` data folder
    (read through importlib.resources, which also finds it inside a zipped install)."""
    override = os.environ.get(SUITES_DIR_ENV_VAR)
    return Path(override) if override else resources.files("plasticity_bench") / "suites"


def _parse_suite(path: Traversable) -> Suite:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    required = ("name", "description", "algos", "steps", "tasks")
    missing = [key for key in required if not isinstance(data, dict) or key not in data]
    if missing:
        raise ValueError(f"suite file {path} lacks {', '.join(missing)}")
    tasks = {}
    for task, score in data["tasks"].items():
        try:
            tasks[task] = TaskScore(float(score["random"]), float(score["reference"]), str(score["source"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"suite file {path}: task {task!r} needs numeric random, reference and a source ({error})") from None
        if tasks[task].reference == tasks[task].random:
            raise ValueError(f"suite file {path}: task {task!r} has reference == random")
    sequences = data.get("sequences") or {}
    if not isinstance(sequences, dict):
        raise ValueError(f"suite file {path}: sequences must map names to sequence definitions")
    for name, definition in sequences.items():
        missing = [t for t in (definition or {}).get("tasks", []) if t not in tasks]
        if missing:
            raise ValueError(f"suite file {path}: sequence {name!r} has tasks without scores: {', '.join(missing)}")
    return Suite(
        name=str(data["name"]),
        description=str(data["description"]).strip(),
        algos=tuple(str(algo) for algo in data["algos"]),
        steps=int(data["steps"]),
        tasks=tasks,
        sequences={str(name): dict(definition) for name, definition in sequences.items()},
    )


def load_suites() -> dict[str, Suite]:
    """Every suite in the suites directory, by name."""
    suites: dict[str, Suite] = {}
    files = (entry for entry in suites_dir().iterdir() if entry.is_file() and entry.name.endswith(".yaml"))
    for path in sorted(files, key=lambda entry: entry.name):
        suite = _parse_suite(path)
        if suite.name in suites:
            raise ValueError(f"suite name {suite.name!r} is defined twice (second time in {path})")
        suites[suite.name] = suite
    return suites


def load_suite(name: str) -> Suite:
    suites = load_suites()
    if name not in suites:
        raise ValueError(f"unknown suite {name!r}; suites: {', '.join(suites)}")
    return suites[name]


def suite_of_task(task: str) -> Suite | None:
    """The first suite (by name) that lists ``task``, or None.

    A task listed by several suites (dmc and dmc_easy share tasks) has the same scores in
    each; tests/test_environments.py checks that.
    """
    for suite in load_suites().values():
        if task in suite.tasks:
            return suite
    return None


def normalise(task: str, returns):
    """Normalise ``returns`` of ``task`` with the suite that lists it."""
    suite = suite_of_task(task)
    if suite is None:
        raise ValueError(f"no suite lists task {task!r}; suites: {', '.join(load_suites())}")
    return suite.normalise(task, returns)
