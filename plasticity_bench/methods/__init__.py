"""Interventions against plasticity loss; ``make_method`` builds one by registry name."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from plasticity_bench import registry
from plasticity_bench.methods.base import Method


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


def build_methods(names: Iterable[str], options: dict[str, dict[str, Any]], updates: int) -> list[Method]:
    """A run's methods (``spec.methods`` with ``spec.method_options``), each planned over the
    ``updates`` the run makes: the one place a run's methods are built (the run, its budget
    check)."""
    methods = [make_method(name, **options.get(name, {})) for name in names]
    for method in methods:
        method.plan(updates)
    return methods


def method_class(name: str) -> type:
    """The Method class a run names: a built-in, an installed entry point, or a user's
    ``"package.module:Class"``; raises ValueError naming the bad value and the choices."""
    if name in registry.METHODS:
        return registry.load(registry.METHODS[name][0])
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        # Like `python -m`, resolve a user's module from the working directory too.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            cls = registry.load(name)
        except ModuleNotFoundError as error:
            raise ValueError(f"method {name!r}: cannot import module {module_name!r} ({error})") from None
        except AttributeError:
            raise ValueError(f"method {name!r}: module {module_name!r} has no attribute {attribute!r}") from None
    else:
        installed = registry.installed_methods()
        if name not in installed:
            raise ValueError(f"unknown method {name!r}; valid: {', '.join(registry.method_names())}, "
                             "or a user method as 'package.module:Class'")
        cls = installed[name].registry.load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"method {name!r} is not a subclass of plasticity_bench.methods.Method")
    return cls


__all__ = ["Method", "build_methods", "make_method", "method_class"]
