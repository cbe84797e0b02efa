"""What a run's budget produces, checked before it trains.

A run that makes no gradient update, never reaches its evaluation or monitor cadence, or
ends before a method first acts spends its compute and records nothing to compare (DQN's
default learning_starts of 10000 with ``--steps 2000`` used to complete with 0 updates and
an empty metrics.parquet). ``check_budget`` refuses such a run with the numbers and the key
to change; ``--allow-short-budget`` lets it through (smoke tests of the code itself).

Units: ``steps`` and ``eval_every_steps`` count environment steps, ``monitor_every_updates`` and the
methods' periods count gradient updates, and so do the algorithms' own cadences
(``policy_frequency``, SAC's ``target_network_frequency``; DQN's counts env steps and acts
every ``target_network_frequency * replay_ratio`` updates). An RL run makes ``floor((steps - learning_starts)
* replay_ratio)`` updates; a supervised run (algorithm ``sl``) one per step. The last step
is always evaluated, so ``eval_every_steps > steps`` leaves a single point, not a learning curve.
The plasticity probe (``probe_every_updates``) is not checked: it is an extra on the monitor's
cadence and off with 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from plasticity_bench.methods import build_methods
from plasticity_bench.spec import RunSpec, SpecError

OVERRIDE_FLAG = "--allow-short-budget"


class ShortBudgetError(SpecError):
    """The run's budget cannot produce what its spec asks for (see the module docstring)."""


def updates_after(hyperparams: dict[str, Any], env_steps: int) -> int:
    """RL updates owed after ``env_steps`` at ``replay_ratio`` per env step after
    ``learning_starts`` (a function of the step count, so the schedule never drifts)."""
    learning_steps = env_steps - hyperparams["learning_starts"]
    return math.floor(learning_steps * hyperparams["replay_ratio"] + 1e-9) if learning_steps > 0 else 0


def planned_updates(spec: RunSpec) -> int:
    """The gradient updates the whole run makes."""
    return spec.steps if spec.algo == "sl" else updates_after(spec.hyperparams, spec.steps)


def _updates_formula(spec: RunSpec) -> str:
    if spec.algo == "sl":
        return f"steps={spec.steps}, one gradient update per step"
    hp = spec.hyperparams
    return f"steps={spec.steps}, learning_starts={hp['learning_starts']}, replay_ratio={hp['replay_ratio']:g}"


def first_actions(spec: RunSpec, updates: int) -> Iterator[tuple[str, str, Any, int]]:
    """(method, option, its value, the update at which the method first acts by it) for each
    of the run's methods planned over ``updates`` (Method.first_action_updates)."""
    for name, method in zip(spec.methods, build_methods(spec.methods, spec.method_options, updates)):
        for option, first in method.first_action_updates().items():
            yield name, option, spec.method_options[name][option], first


# The algorithms' own cadences, in gradient updates (the agent acts when its update count is
# a multiple): key → what never happens when the run ends before it first acts. DQN's
# target_network_frequency counts env steps; the agent's period in updates is resolved in
# spec.agent_hyperparams.
ALGO_CADENCES: dict[str, dict[str, str]] = {
    "sac": {"policy_frequency": "the actor never trains", "target_network_frequency": "the target networks never move"},
    "td3": {"policy_frequency": "the actor never trains (nor do the target networks move)"},
    "dqn": {"target_network_frequency": "the target network never moves"},
}
RESOLVED_CADENCES = {("dqn", "target_network_frequency"): "target_period_updates"}


def algo_cadences(spec: RunSpec) -> Iterator[tuple[str, Any, int, str]]:
    """(key, its value, the update at which the agent first acts by it, what never happens
    without it) for each of the algorithm's own cadences."""
    resolved = spec.agent_hyperparams()
    for key, consequence in ALGO_CADENCES.get(spec.algo, {}).items():
        if key in spec.hyperparams:
            yield key, spec.hyperparams[key], int(resolved[RESOLVED_CADENCES.get((spec.algo, key), key)]), consequence


def shortfalls(spec: RunSpec) -> list[str]:
    """One sentence per thing the budget cannot produce, naming the numbers and the key to
    change; empty when the budget suffices."""
    updates = planned_updates(spec)
    made = f"the run's {updates} gradient updates ({_updates_formula(spec)})"
    if updates == 0:  # everything below follows from it
        hp = spec.hyperparams
        return [f"{made}: nothing is trained; raise --steps above learning_starts={hp['learning_starts']} "
                f"or lower it (--set learning_starts=N)"]
    found = []
    eval_every = spec.hyperparams.get("eval_every_steps")  # sl evaluates at the end of every task
    if eval_every is not None and eval_every > spec.steps:
        found.append(f"eval_every_steps={eval_every} env steps exceeds steps={spec.steps}: the run is evaluated "
                     f"only at its last step; lower it (--set eval_every_steps=N, N <= {spec.steps}) or raise --steps")
    monitor_every = spec.hyperparams["monitor_every_updates"]
    if monitor_every > updates:
        found.append(f"monitor_every_updates={monitor_every} updates exceeds {made}: metrics.parquet gets no monitor "
                     f"row; lower it (--set monitor_every_updates=N, N <= {updates}) or raise --steps")
    for key, value, first, consequence in algo_cadences(spec):
        if first > updates:
            unit = "env steps, " if (spec.algo, key) in RESOLVED_CADENCES else ""
            found.append(f"{key}={value} ({unit}first acts at update {first}) comes after {made}: {consequence}; "
                         f"lower it (--set {key}=N) or raise --steps")
    for name, option, value, first in first_actions(spec, updates):
        if first > updates:
            found.append(f"{name}.{option}={value} first acts at update {first}, after {made}: {name} never acts; "
                         f"lower it so that it acts by update {updates} (--set {name}.{option}=N) or raise --steps")
    return found


def cadences(spec: RunSpec) -> dict[str, dict[str, Any]]:
    """Every cadence of the run with its unit (which the key's name also says) and what the
    budget makes of it, for ``--print-spec``."""
    updates = planned_updates(spec)
    hp = spec.hyperparams
    table = {"updates": {"count": updates, "unit": "gradient updates", "from": _updates_formula(spec)}}
    per_step = "gradient steps" if spec.algo == "sl" else "env steps"
    for key, unit, total in (("eval_every_steps", "env steps", spec.steps),
                             ("checkpoint_every_steps", per_step, spec.steps),
                             ("task_steps", "gradient steps", spec.steps),
                             ("monitor_every_updates", "gradient updates", updates),
                             ("probe_every_updates", "gradient updates", updates)):
        if key in hp:
            value = hp[key]
            table[key] = {"value": value, "unit": unit, "count": total // value if value else 0}
    for key, value, first, _ in algo_cadences(spec):
        unit = "env steps" if (spec.algo, key) in RESOLVED_CADENCES else "gradient updates"
        table[key] = {"value": value, "unit": unit, "first_acts_at_update": first}
    for name, option, value, first in first_actions(spec, updates):
        table[f"{name}.{option}"] = {"value": value, "unit": "gradient updates", "first_acts_at_update": first}
    return table


def check_budget(spec: RunSpec) -> None:
    """Raise ShortBudgetError listing every shortfall of ``spec``'s budget."""
    found = shortfalls(spec)
    if found:
        raise ShortBudgetError(f"run {spec.run_id} cannot produce what it asks for: {'; '.join(found)} "
                               f"(or pass {OVERRIDE_FLAG} to train it anyway)")
