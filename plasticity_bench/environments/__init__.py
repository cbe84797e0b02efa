"""Task strings → gymnasium environments with one observation/action convention.

A task is ``"<family>:<name>"``, e.g. ``mujoco:HalfCheetah-v5``, ``dmc:cheetah-run``,
``gym:CartPole-v1``, ``minatar:breakout``. The family ``sl`` holds supervised tasks, not
environments: the continual random-label control trained by algorithm ``sl``
(``environments/supervised.py`` and ``plasticity_bench/supervised.py``). Every environment made here

- returns observations as flat float32 1-D vectors,
- takes continuous actions in [-1, 1] (``action_space`` is ``Box(-1, 1)``) and rescales them
  to the underlying bounds, or takes discrete actions from a ``Discrete`` space,
- is fully determined by ``reset(seed=s)`` plus the actions that follow,
- reports ``terminated`` only on true termination and ``truncated`` on the time limit.

``TASK_FAMILIES`` and ``validate_task`` import neither dm_control nor MuJoCo; the simulators
are imported lazily by ``make_env``.
"""

from __future__ import annotations

import os

# Rendering is never needed. Choosing the backend before MuJoCo / dm_control are imported
# keeps them from probing GLFW (which warns on headless machines). "disable" works on every
# machine; "osmesa" is not installed here. The container image sets "disable" too (see
# Dockerfile); a user who renders sets MUJOCO_GL=egl, which setdefault respects.
os.environ.setdefault("MUJOCO_GL", "disable")

import functools  # noqa: E402

__all__ = ["TASK_FAMILIES", "validate_task", "is_discrete", "is_supervised", "make_env", "split_task"]

TASK_FAMILIES: dict[str, str] = {
    "mujoco": "gymnasium MuJoCo v5 locomotion, e.g. mujoco:HalfCheetah-v5",
    "dmc": "DeepMind Control suite via dm_control, domain-task, e.g. dmc:cheetah-run, dmc:ball_in_cup-catch",
    "gym": "gymnasium classic control, e.g. gym:CartPole-v1, gym:Pendulum-v1",
    "minatar": "MinAtar games (10x10 Atari analogues), e.g. minatar:breakout",
    "continual": "a sequence of tasks switched every segment_steps env steps (environments/continual.py), "
                 "e.g. continual:walker, continual:cartpole-permuted; continual:<sequence>/<k> is segment k alone",
    "sl": "continual supervised learning for algorithm sl (Lyle et al. 2023): sl:digits-random-labels, "
          "scikit-learn's digits with labels re-drawn per task",
}

MINATAR_GAMES: tuple[str, ...] = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
SUPERVISED_FAMILY = "sl"
SUPERVISED_TASKS: tuple[str, ...] = ("digits-random-labels",)


def split_task(task: str) -> tuple[str, str]:
    """``"dmc:cheetah-run"`` → ``("dmc", "cheetah-run")``; ValueError if malformed."""
    if not isinstance(task, str) or ":" not in task:
        raise ValueError(
            f"task {task!r} is not of the form '<family>:<name>'; "
            f"families: {', '.join(TASK_FAMILIES)}"
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


def validate_task(task: str) -> None:
    """Raise a one-line ValueError naming the bad value and the valid choices."""
    family, name = split_task(task)
    if family not in TASK_FAMILIES:
        raise ValueError(
            f"unknown task family {family!r} in task {task!r}; families: {', '.join(TASK_FAMILIES)}"
        )
    if family == "continual":  # a sequence is named by a suite or defined by the run's spec (continual.resolve)
        from plasticity_bench.environments.continual import parse_name

        parse_name(task)
        return
    valid = _valid_names(family)
    if name not in valid:
        raise ValueError(
            f"unknown {family} task {name!r} in {task!r}; valid {family} names: {', '.join(valid)}"
        )


def is_supervised(task: str) -> bool:
    """Whether ``task`` is a supervised task of family ``sl`` (no environment, no actions)."""
    validate_task(task)
    return split_task(task)[0] == SUPERVISED_FAMILY


@functools.cache
def is_discrete(task: str) -> bool:
    """Whether the task's action space is ``Discrete`` (constructs a gym env once, cached)."""
    validate_task(task)
    family, name = split_task(task)
    if family == SUPERVISED_FAMILY:
        raise ValueError(f"task {task!r} is a supervised task: it has no action space")
    if family == "continual":
        from plasticity_bench.environments.continual import named_sequences, parse_name

        sequence = named_sequences().get(parse_name(task)[0])
        if sequence is None:
            raise ValueError(f"continual task {task!r}: its sequence is defined by the run's spec; ask is_discrete of its tasks")
        return is_discrete(sequence["tasks"][0])
    if family == "minatar":
        return True
    if family in ("mujoco", "dmc"):
        return False
    import gymnasium

    env = gymnasium.make(name)
    try:
        return isinstance(env.action_space, gymnasium.spaces.Discrete)
    finally:
        env.close()


def make_env(task: str):
    """A ``gymnasium.Env`` for ``task`` following the conventions in the module docstring."""
    validate_task(task)
    family, name = split_task(task)
    if family == SUPERVISED_FAMILY:
        raise ValueError(f"task {task!r} is a supervised task, not an environment; algorithm 'sl' trains on it")
    if family in ("mujoco", "gym"):
        from plasticity_bench.environments.gym_tasks import make_gymnasium_env

        return make_gymnasium_env(name)
    if family == "continual":  # a suite's named sequence; a run's own sequence: continual.make_task_envs
        from plasticity_bench.environments.continual import make_continual_env, named_sequences, parse_name

        return make_continual_env(task, named_sequences().get(parse_name(task)[0]))
    if family == "dmc":
        from plasticity_bench.environments.dmc import make_dmc_env

        return make_dmc_env(name)
    from plasticity_bench.environments.minatar import make_minatar_env

    return make_minatar_env(name)
