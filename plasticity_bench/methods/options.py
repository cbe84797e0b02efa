"""What every method's options and role choice are parsed with: a positive integer, a number
>= 0, the roles a method acts on (None, "critics", or names), each refused with a one-line
error naming the option and the value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plasticity_bench.roles import Role


def positive_int(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{option} must be a positive integer, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{option} must be a positive integer, got {value!r}") from None
    if number != int(number) or number < 1:
        raise ValueError(f"{option} must be a positive integer, got {value!r}")
    return int(number)


def non_negative(option: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a number >= 0, got {value!r}") from None
    if not number >= 0:  # also rejects nan
        raise ValueError(f"{option} must be a number >= 0, got {value!r}")
    return number


# ``roles="critics"`` selects an agent's value networks: SAC's and TD3's critic, DQN's Q-network.
CRITICS = "critics"
VALUE_ROLES = ("critic", "q")


def role_names(value: Any) -> tuple[str, ...] | str | None:
    """None (every role), "critics" (the value networks), a list of names, or one string of
    comma-separated names."""
    if value is None or value == CRITICS:
        return value
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"roles must be None or a non-empty list of role names, got {value!r}")
    return tuple(value)


def chosen_roles(method: str, roles: Mapping[str, Role], names: tuple[str, ...] | str | None) -> list[str]:
    """The role names a method acts on (None = every role; "critics" = the value networks,
    or every role of a learner that has none, such as a supervised one); an unknown name raises."""
    if names == CRITICS:
        return [name for name in roles if name in VALUE_ROLES] or list(roles)
    chosen = list(roles) if names is None else list(names)
    missing = [name for name in chosen if name not in roles]
    if missing:
        raise ValueError(f"method {method!r}: no role {missing}; valid: {', '.join(roles)}")
    return chosen
