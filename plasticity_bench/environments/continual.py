"""Continual tasks: a sequence of segments over one observation and action space.

A continual task is ``continual:<sequence>``: the tasks of the sequence one after another,
``segment_steps`` env steps each, over one observation and action space. The switch to the
next segment happens at the first episode boundary (``reset``) at or after the segment's
nominal end ``(k + 1) * segment_steps``, so no episode is cut. The agent is not told which
segment it is in unless ``task_id`` is true (a one-hot of the segment's task identity is then
appended to the observation). ``continual:<sequence>/<k>`` is segment ``k`` alone, as a
stationary task: the fresh-agent reference of that segment (``reference_task``).

A sequence is a dict (``Sequence.from_dict`` validates it and fills in the defaults):

- ``tasks``: task strings (any family but ``sl`` and ``continual``);
- ``segment_steps``: env steps per segment;
- ``transform``: what else changes from one segment to the next, one of ``TRANSFORMS``:
  ``none``; ``permute_observations`` (segment 0 as is, each later segment a fixed
  permutation of the observation drawn from ``transform_options.seed`` and the segment
  index); ``reverse_actions`` (every odd segment negates continuous actions, or plays
  discrete action ``n - 1 - a`` for ``a``); ``dynamics`` (gymnasium classic-control tasks:
  segment ``k`` sets the attributes of ``transform_options.values[k % len(values)]`` on the
  environment, e.g. ``{gravity: 20.0}``);
- ``transform_options``: the transform's options (above);
- ``task_id``: append the one-hot task identity to the observation (default false).

MinAtar games differ in their number of channels: a sequence of MinAtar games pads every
game's 10x10xC state with empty channels to the largest C of the sequence, so their spaces
match (all of them play the full 6-action set). Any other difference of spaces is refused.

Named sequences live in the suites' YAML files under ``sequences:`` (``suites.py``); a
run's spec holds the resolved sequence in full as its hyperparameter ``sequence`` (so the
run id hashes it), which ``--set 'sequence={...}'`` overrides key by key or defines for a
name no suite knows.

Resumption: the training environment's state is its step count and segment index
(``state_dict``), which the checkpoint keeps; everything else derives from the definition.
The evaluation environment follows the training one (``follow``): an evaluation plays the
segment the agent is training on.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np

from plasticity_bench.environments.tasks import make_base_env, validate_base_task

FAMILY = "continual"
TRANSFORMS: dict[str, dict[str, Any]] = {  # transform -> its options with their defaults
    "none": {},
    "permute_observations": {"seed": 0},
    "reverse_actions": {},
    "dynamics": {"values": None},
}
SEQUENCE_KEYS = ("tasks", "segment_steps", "transform", "transform_options", "task_id")
NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:/(?P<segment>\d+))?$")
MINATAR_GRID = 100  # MinAtar states are 10x10xC, flattened with the channel last


class SequenceError(ValueError):
    """A continual sequence that cannot be trained (one line, names the value and the valid choices)."""


def is_continual(task: str) -> bool:
    return isinstance(task, str) and task.startswith(FAMILY + ":")


def parse_name(task: str) -> tuple[str, int | None]:
    """``continual:walker`` -> ("walker", None); ``continual:walker/3`` -> ("walker", 3)."""
    match = NAME.match(task[len(FAMILY) + 1:]) if is_continual(task) else None
    if not match:
        raise SequenceError(f"continual task {task!r} is not 'continual:<sequence>' or 'continual:<sequence>/<segment>' "
                            "(sequence names: letters, digits, '_', '.', '-')")
    segment = match["segment"]
    return match["name"], None if segment is None else int(segment)


def named_sequences() -> dict[str, dict[str, Any]]:
    """Every sequence of the suites' files, by name (``suites.Suite.sequences``)."""
    from plasticity_bench.environments.suites import load_suites

    found: dict[str, dict[str, Any]] = {}
    for suite in load_suites().values():
        for name, definition in suite.sequences.items():
            if name in found:
                raise SequenceError(f"continual sequence {name!r} is defined by two suites")
            found[name] = definition
    return found


@dataclass(frozen=True)
class Sequence:
    tasks: tuple[str, ...]
    segment_steps: int
    transform: str = "none"
    transform_options: dict[str, Any] = field(default_factory=dict)
    task_id: bool = False

    @classmethod
    def from_dict(cls, data: Any, where: str = "sequence") -> Sequence:
        """Validate a sequence's definition (not its spaces: ``check_spaces``)."""
        if not isinstance(data, dict):
            raise SequenceError(f"{where} must be a mapping with keys {', '.join(SEQUENCE_KEYS)}, got {data!r}")
        unknown = sorted(set(data) - set(SEQUENCE_KEYS))
        if unknown:
            raise SequenceError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(SEQUENCE_KEYS)}")
        tasks = data.get("tasks")
        if not isinstance(tasks, (list, tuple)) or not tasks or not all(isinstance(t, str) for t in tasks):
            raise SequenceError(f"{where}.tasks must be a non-empty list of task strings, got {tasks!r}")
        for task in tasks:
            if task.split(":", 1)[0] in (FAMILY, "sl"):
                raise SequenceError(f"{where}.tasks: {task!r} cannot be a segment; valid: reinforcement-learning tasks "
                                    "of the families mujoco, dmc, gym, minatar")
            try:
                validate_base_task(task)
            except ValueError as error:
                raise SequenceError(f"{where}.tasks: {error}") from None
        steps = data.get("segment_steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise SequenceError(f"{where}.segment_steps must be a positive integer (env steps), got {steps!r}")
        transform = data.get("transform", "none")
        if transform not in TRANSFORMS:
            raise SequenceError(f"{where}: unknown transform {transform!r}; valid: {', '.join(TRANSFORMS)}")
        options = data.get("transform_options") or {}
        if not isinstance(options, dict):
            raise SequenceError(f"{where}.transform_options must be a mapping, got {options!r}")
        unknown = sorted(set(options) - set(TRANSFORMS[transform]))
        if unknown:
            valid = ", ".join(TRANSFORMS[transform]) or "none"
            raise SequenceError(f"{where}: unknown option {unknown[0]!r} of transform {transform!r}; valid: {valid}")
        options = {**TRANSFORMS[transform], **options}
        if transform == "permute_observations" and (isinstance(options["seed"], bool)
                                                    or not isinstance(options["seed"], int) or options["seed"] < 0):
            raise SequenceError(f"{where}.transform_options.seed must be a non-negative integer, got {options['seed']!r}")
        if transform == "dynamics":
            values = options["values"]
            if not isinstance(values, list) or not values or not all(isinstance(v, dict) and v for v in values):
                raise SequenceError(f"{where}: transform 'dynamics' needs transform_options.values, a non-empty list of "
                                    "attribute mappings, one per segment (cycled), e.g. [{gravity: 9.8}, {gravity: 20.0}]")
            families = sorted({task.split(":", 1)[0] for task in tasks} - {"gym"})
            if families:
                raise SequenceError(f"{where}: transform 'dynamics' changes gymnasium classic-control attributes; "
                                    f"tasks of family {families[0]!r} have none; valid: gym tasks")
        task_id = data.get("task_id", False)
        if not isinstance(task_id, bool):
            raise SequenceError(f"{where}.task_id must be true or false, got {task_id!r}")
        return cls(tuple(tasks), steps, transform, options, task_id)

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "segment_steps": self.segment_steps, "transform": self.transform,
                "transform_options": dict(self.transform_options), "task_id": self.task_id}

    @property
    def segments(self) -> int:
        return len(self.tasks)

    # ---- segment identities -------------------------------------------------------
    def segment_key(self, k: int) -> str:
        """What segment ``k`` trains on, as a comparable string: two segments with equal keys
        are the same task (same base task, same transformation)."""
        task, transform = self.tasks[k], self.transform
        if transform == "permute_observations":
            state: Any = k > 0 and [self.transform_options["seed"], k]
        elif transform == "reverse_actions":
            state = k % 2 == 1
        elif transform == "dynamics":
            values = self.transform_options["values"]
            state = values[k % len(values)]
        else:
            state = None
        return json.dumps([task, transform, state], sort_keys=True)

    def canonical_segment(self, k: int) -> int:
        """The first segment that is the same task as segment ``k``."""
        key = self.segment_key(k)
        return next(j for j in range(self.segments) if self.segment_key(j) == key)

    def task_identity(self, k: int) -> int:
        """Index of segment ``k``'s task among the sequence's distinct tasks (``task_id``'s one-hot)."""
        canonical = sorted({self.canonical_segment(j) for j in range(self.segments)})
        return canonical.index(self.canonical_segment(k))

    def changes_observation_layout(self) -> bool:
        """Whether observations differ from the base task's (task id, MinAtar padding)."""
        return self.task_id or len(set(space_of(task)[0] for task in self.tasks)) > 1

    def reference_task(self, name: str, k: int) -> str:
        """The task a fresh agent trains on to be segment ``k``'s reference: the plain base
        task where segment ``k`` is it untransformed, else ``continual:<name>/<c>`` with
        ``c`` the first segment of the same task."""
        canonical = self.canonical_segment(k)
        untransformed = json.loads(self.segment_key(canonical))[2] in (None, False)
        if untransformed and self.transform != "dynamics" and not self.changes_observation_layout():
            return self.tasks[canonical]
        return f"{FAMILY}:{name}/{canonical}"


@functools.cache
def space_of(task: str) -> tuple[tuple[int, ...], str]:
    """(observation shape, action space as text) of a base task; built once per process."""
    env = make_base_env(task)
    try:
        action = env.action_space
        text = f"Discrete({action.n})" if hasattr(action, "n") else f"Box(shape={tuple(action.shape)})"
        return tuple(env.observation_space.shape), text
    finally:
        env.close()


@functools.cache
def max_episode_steps(task: str) -> int | None:
    """The task's time limit in env steps, where it has one."""
    family, name = task.split(":", 1)
    if family == "dmc":
        return 1000  # every dm_control suite task (dmc.py)
    if family == "minatar":
        from plasticity_bench.environments.minatar import MAX_EPISODE_STEPS

        return MAX_EPISODE_STEPS
    spec = gymnasium.registry.get(name)
    return spec.max_episode_steps if spec is not None else None


def check_spaces(sequence: Sequence) -> None:
    """Every segment has the first's spaces (MinAtar games up to padding)."""
    first = sequence.tasks[0]
    families = {task.split(":", 1)[0] for task in sequence.tasks}
    for task in sequence.tasks[1:]:
        (obs, action), (obs0, action0) = space_of(task), space_of(first)
        if families == {"minatar"}:
            obs, obs0 = (), ()  # padded to one channel count
        if obs != obs0 or action != action0:
            raise SequenceError(f"continual sequence: the spaces of {task!r} (observation {space_of(task)[0]}, "
                                f"action {action}) differ from those of {first!r} (observation {space_of(first)[0]}, "
                                f"action {action0}); valid: tasks of one body, MinAtar games, or one task transformed")
    if sequence.transform == "dynamics":
        env = _base_env(first)
        try:
            for values in sequence.transform_options["values"]:
                for attribute in values:
                    if not hasattr(env.unwrapped, attribute):
                        public = sorted(k for k, v in vars(env.unwrapped).items()
                                        if not k.startswith("_") and isinstance(v, (int, float)) and not isinstance(v, bool))
                        raise SequenceError(f"transform 'dynamics': {first!r} has no attribute {attribute!r}; "
                                            f"valid: {', '.join(public)}")
        finally:
            env.close()


def resolve(task: str, sequence: dict[str, Any] | None) -> tuple[str, int | None, Sequence]:
    """(name, the segment of a ``/<k>`` task or None, the validated sequence) of a continual task."""
    name, segment = parse_name(task)
    if not sequence:
        known = named_sequences()
        raise SequenceError(f"unknown continual sequence {name!r}; valid: {', '.join(sorted(known)) or 'none'} "
                            "(or define it: --set 'sequence={tasks: [...], segment_steps: N}')")
    resolved = Sequence.from_dict(sequence, where=f"sequence of {task}")
    if segment is not None and segment >= resolved.segments:
        raise SequenceError(f"continual task {task!r}: segment {segment} does not exist; valid: 0 to {resolved.segments - 1}")
    check_spaces(resolved)
    return name, segment, resolved


def check_budget(task: str, sequence: Sequence, steps: int, hyperparams: dict[str, Any]) -> None:
    """A sequence that the run's budget and cadences can train and measure, or SequenceError."""
    _, segment = parse_name(task)
    length = sequence.segment_steps
    if hyperparams["learning_starts"] >= length:
        raise SequenceError(f"segment_steps={length} is not longer than learning_starts={hyperparams['learning_starts']}: "
                            f"the first segment would train nothing; valid: segment_steps > {hyperparams['learning_starts']}")
    longest = max((max_episode_steps(t) or 0) for t in sequence.tasks)
    if length < longest:
        raise SequenceError(f"segment_steps={length} is shorter than an episode ({longest} steps): a segment could pass "
                            f"without an episode boundary to switch at; valid: segment_steps >= {longest}")
    eval_every = hyperparams["eval_every_steps"]
    if length % eval_every:
        raise SequenceError(f"segment_steps={length} is not a multiple of eval_every_steps={eval_every}: the end of a "
                            f"segment would not be evaluated; valid: a multiple of {eval_every}")
    if segment is None and (steps % length or steps > sequence.segments * length):
        valid = ", ".join(str(length * n) for n in range(1, sequence.segments + 1))
        raise SequenceError(f"steps={steps} is not a whole number of segments of segment_steps={length} "
                            f"within the sequence's {sequence.segments}; valid: {valid}")


# ----------------------------------------------------------------------------- the env


def _base_env(task: str) -> gymnasium.Env:
    return make_base_env(task)


class ContinualEnv(gymnasium.Env):
    """The sequence's segments as one environment (see the module docstring).

    ``only_segment``: train on that segment alone, never switching (a reference task).
    """

    metadata = {"render_modes": []}

    def __init__(self, name: str, sequence: Sequence, only_segment: int | None = None):
        self.name, self.sequence, self.only_segment = name, sequence, only_segment
        self.envs = {task: _base_env(task) for task in dict.fromkeys(sequence.tasks)}
        first = self.envs[sequence.tasks[0]]
        self.discrete = hasattr(first.action_space, "n")
        self.action_space = first.action_space
        sizes = {task: int(np.prod(env.observation_space.shape)) for task, env in self.envs.items()}
        self.minatar_channels = (max(sizes.values()) // MINATAR_GRID
                                 if all(t.startswith("minatar:") for t in self.envs) else None)
        base_size = max(sizes.values())
        self.identities = len({sequence.canonical_segment(k) for k in range(sequence.segments)})
        size = base_size + (self.identities if sequence.task_id else 0)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        attributes = {attribute for values in (sequence.transform_options.get("values") or []) for attribute in values}
        self.dynamics_defaults = {task: {attribute: getattr(env.unwrapped, attribute) for attribute in attributes}
                                  for task, env in self.envs.items()} if sequence.transform == "dynamics" else {}
        self.steps = 0  # env steps taken by this environment (the trainer's env steps)
        self.segment = -1
        self.leader: ContinualEnv | None = None
        self.enter(only_segment if only_segment is not None else 0)

    # ---- segments -----------------------------------------------------------------
    def enter(self, k: int) -> None:
        """Make segment ``k`` the current one: its environment, permutation and dynamics."""
        self.segment = k
        sequence = self.sequence
        self.env = self.envs[sequence.tasks[k]]
        self.permutation = None
        if sequence.transform == "permute_observations" and k > 0:
            rng = np.random.default_rng([sequence.transform_options["seed"], k])
            size = int(np.prod(self.env.observation_space.shape))
            self.permutation = rng.permutation(size)
            while size > 1 and (self.permutation == np.arange(size)).all():  # 1 in 6 for Pendulum's 3 numbers
                self.permutation = rng.permutation(size)
        self.reversed = sequence.transform == "reverse_actions" and k % 2 == 1
        if sequence.transform == "dynamics":
            values = sequence.transform_options["values"]
            # Every attribute a segment sets goes back to its default first, so a segment's
            # dynamics never depend on the segments before it (nor on a resume's path).
            set_dynamics(self.env.unwrapped, {**self.dynamics_defaults[sequence.tasks[k]], **values[k % len(values)]})
        self.one_hot = np.zeros(self.identities if sequence.task_id else 0, dtype=np.float32)
        if sequence.task_id:
            self.one_hot[sequence.task_identity(k)] = 1.0

    @property
    def segment_task(self) -> str:
        """The current segment's task identity (its reference task)."""
        return self.sequence.reference_task(self.name, self.segment)

    def follow(self, leader: ContinualEnv) -> None:
        """Play whatever segment ``leader`` is in (an evaluation env follows the training env)."""
        self.leader = leader

    def due_segment(self) -> int:
        if self.leader is not None:
            return self.leader.segment
        if self.only_segment is not None:
            return self.only_segment
        # At most one switch per boundary: segment_steps >= any episode's length (check_budget).
        nominal_end = (self.segment + 1) * self.sequence.segment_steps
        return self.segment + 1 if self.steps >= nominal_end and self.segment + 1 < self.sequence.segments else self.segment

    def state_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "segment": self.segment}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps = int(state["steps"])
        self.enter(int(state["segment"]))

    # ---- gymnasium ----------------------------------------------------------------
    def observation(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if self.minatar_channels is not None:
            grid = obs.reshape(MINATAR_GRID, -1)
            obs = np.pad(grid, ((0, 0), (0, self.minatar_channels - grid.shape[1]))).ravel()
        if self.permutation is not None:
            obs = obs[self.permutation]
        return np.concatenate([obs, self.one_hot]) if self.sequence.task_id else obs

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        due = self.due_segment()
        if due != self.segment:
            self.enter(due)
        obs, info = self.env.reset(seed=seed)
        return self.observation(obs), info

    def step(self, action):
        if self.reversed:
            action = self.action_space.n - 1 - int(action) if self.discrete else -np.asarray(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return self.observation(obs), reward, terminated, truncated, info

    def close(self):
        for env in self.envs.values():
            env.close()


def set_dynamics(env, values: dict[str, Any]) -> None:
    """Set classic-control physical constants; CartPole caches two products of them."""
    for attribute, value in values.items():
        setattr(env, attribute, float(value))
    if hasattr(env, "polemass_length"):  # CartPole's __init__ derives these from the masses and length
        env.total_mass = env.masspole + env.masscart
        env.polemass_length = env.masspole * env.length


def make_continual_env(task: str, sequence: dict[str, Any] | None) -> ContinualEnv:
    name, segment, resolved = resolve(task, sequence)
    return ContinualEnv(name, resolved, only_segment=segment)
