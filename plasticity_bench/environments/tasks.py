"""Base tasks (every family but ``continual``): their names, validation and environments.
A continual task is a sequence of these (environments/continual.py); the package's
``validate_task`` and ``make_env`` dispatch between the two."""

from __future__ import annotations

import functools

# The task families, as the package's TASK_FAMILIES lists them (a test checks they agree).
FAMILY_NAMES = ("mujoco", "dmc", "gym", "minatar", "continual", "sl")
MINATAR_GAMES: tuple[str, ...] = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
SUPERVISED_FAMILY = "sl"
SUPERVISED_TASKS: tuple[str, ...] = ("digits-random-labels",)


def split_task(task: str) -> tuple[str, str]:
    """``"dmc:cheetah-run"`` → ``("dmc", "cheetah-run")``; ValueError if malformed."""
    if not isinstance(task, str) or ":" not in task:
        raise ValueError(
            f"task {task!r} is not of the form '<family>:<name>'; "
            f"families: {', '.join(FAMILY_NAMES)}"
        )
    family, name = task.split(":", 1)
    return family, name


@functools.cache
def _gymnasium_names(family: str) -> tuple[str, ...]:
    from gymnasium.envs.registration import registry

    package = {"mujoco": "gymnasium.envs.mujoco", "gym": "gymnasium.envs.classic_control"}[family]
    names = []
    for env_id, spec in registry.items():
        entry = spec.entry_point
        module = entry if isinstance(entry, str) else getattr(entry, "__module__", "")
        if module.startswith(package):
            names.append(env_id)
    return tuple(names)


@functools.cache
def dmc_tasks() -> tuple[str, ...]:
    """Every ``domain-task`` of the installed dm_control suite, without importing it.

    Reads the suite's source: each domain module registers its tasks with
    ``@SUITE.add(...)`` on a function named after the task. tests/test_environments.py
    checks this list against ``dm_control.suite.ALL_TASKS``.
    """
    import ast
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("dm_control")
    if spec is None or not spec.submodule_search_locations:
        return ()
    suite_dir = Path(next(iter(spec.submodule_search_locations))) / "suite"
    tasks = []
    for path in sorted(suite_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(_is_suite_add(d) for d in node.decorator_list):
                tasks.append(f"{path.stem}-{node.name}")
    return tuple(tasks)


def _is_suite_add(decorator) -> bool:
    target = decorator.func if hasattr(decorator, "func") else decorator
    return (
        getattr(target, "attr", None) == "add"
        and getattr(getattr(target, "value", None), "id", None) == "SUITE"
    )


def _valid_names(family: str) -> tuple[str, ...]:
    if family in ("mujoco", "gym"):
        return _gymnasium_names(family)
    if family == "dmc":
        return dmc_tasks()
    if family == SUPERVISED_FAMILY:
        return SUPERVISED_TASKS
    return MINATAR_GAMES


def validate_base_task(task: str) -> None:
    """Raise a one-line ValueError naming the bad value and the valid choices (``task`` of a
    base family; the package's ``validate_task`` handles ``continual``)."""
    family, name = split_task(task)
    if family not in FAMILY_NAMES or family == "continual":
        raise ValueError(f"unknown task family {family!r} in task {task!r}; families: {', '.join(FAMILY_NAMES)}")
    valid = _valid_names(family)
    if name not in valid:
        raise ValueError(
            f"unknown {family} task {name!r} in {task!r}; valid {family} names: {', '.join(valid)}"
        )


def make_base_env(task: str):
    """The environment of a base RL task (validated by the caller)."""
    family, name = split_task(task)
    if family == SUPERVISED_FAMILY:
        raise ValueError(f"task {task!r} is a supervised task, not an environment; algorithm 'sl' trains on it")
    if family in ("mujoco", "gym"):
        from plasticity_bench.environments.gym_tasks import make_gymnasium_env

        return make_gymnasium_env(name)
    if family == "dmc":
        from plasticity_bench.environments.dmc import make_dmc_env

        return make_dmc_env(name)
    from plasticity_bench.environments.minatar import make_minatar_env

    return make_minatar_env(name)
