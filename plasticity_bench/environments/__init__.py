"""Task strings → gymnasium environments with one observation/action convention.

A task is ``"<family>:<name>"``, e.g. ``mujoco:HalfCheetah-v5``, ``dmc:cheetah-run``,
``gym:CartPole-v1``, ``minatar:breakout``. The family ``sl`` holds supervised tasks, not
environments: the continual random-label control trained by algorithm ``sl``
(``environments/supervised.py`` and ``plasticity_bench/training/supervised.py``). Every environment made here

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

from plasticity_bench.environments import continual  # noqa: E402
from plasticity_bench.environments.tasks import (  # noqa: E402
    MINATAR_GAMES, SUPERVISED_FAMILY, SUPERVISED_TASKS, dmc_tasks, make_base_env, split_task, validate_base_task)

__all__ = ["TASK_FAMILIES", "MINATAR_GAMES", "SUPERVISED_TASKS", "dmc_tasks", "validate_task", "is_discrete",
           "is_supervised", "make_env", "make_task_envs", "split_task"]

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

def validate_task(task: str) -> None:
    """Raise a one-line ValueError naming the bad value and the valid choices."""
    family, name = split_task(task)
    if family not in TASK_FAMILIES:
        raise ValueError(
            f"unknown task family {family!r} in task {task!r}; families: {', '.join(TASK_FAMILIES)}"
        )
    if family == "continual":  # a sequence is named by a suite or defined by the run's spec (continual.resolve)
        continual.parse_name(task)
        return
    validate_base_task(task)


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
        sequence = continual.named_sequences().get(continual.parse_name(task)[0])
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
    if split_task(task)[0] == "continual":  # a suite's named sequence; a run's own sequence: make_task_envs
        return continual.make_continual_env(task, continual.named_sequences().get(continual.parse_name(task)[0]))
    return make_base_env(task)


def make_task_envs(task: str, hyperparams: dict):
    """The training and evaluation environments of a run: for a continual task (its sequence
    named by a suite or given as the run's ``sequence`` setting) the evaluation env follows
    the training env's segment."""
    if not continual.is_continual(task):
        return make_env(task), make_env(task)
    train_env = continual.make_continual_env(task, hyperparams.get("sequence"))
    eval_env = continual.make_continual_env(task, hyperparams.get("sequence"))
    eval_env.follow(train_env)
    return train_env, eval_env
