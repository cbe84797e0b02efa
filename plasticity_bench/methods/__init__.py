"""Interventions against plasticity loss; ``make_method`` builds one by registry name."""

from __future__ import annotations

from typing import Any

from plasticity_bench.methods.base import Method
from plasticity_bench.registry import method_class


def make_method(name: str, **options: Any) -> Method:
    """The method ``name`` (built-in, entry point or "module:Class"), built with ``options``.

    Raises ValueError for an unknown method or option name, listing the valid ones.
    """
    cls = method_class(name)
    valid = cls.options()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listing = ", ".join(valid) if valid else "(none)"
        raise ValueError(f"method {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {listing}")
    return cls(**options)


__all__ = ["Method", "make_method"]
