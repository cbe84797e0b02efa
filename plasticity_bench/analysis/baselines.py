"""Which pairs the probability of improvement compares (pandas only).

**Best baseline** of a method in a scope: the built-in method (a name in
``plasticity_bench.registry.METHODS``, ``none`` included) with the highest IQM in that
scope, other than the method itself; ties go to ``none`` first, then alphabetical order.
Combinations (``redo+layer_norm``) and user methods (``module:Class`` or entry points) are
never baselines; they are compared against the best built-in. Every method is also
compared with ``none`` where its scope has it.

A variant (``regrama[rr1]``: another replay ratio) is compared only within its variant: its
``none`` is ``none[rr1]`` and its best baseline a built-in method of the same variant. A
variant whose scope lacks ``none[rr1]`` has no P(> none).
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from plasticity_bench.analysis.display import parse_label
from plasticity_bench.analysis.vocabulary import BASELINE, SCOPE, method_order, scopes


def builtin_methods() -> set[str]:
    """Names that can be a best baseline: the methods registered in ``registry.METHODS``."""
    from plasticity_bench import registry  # a name table only; no heavy imports

    return set(registry.METHODS)


def variant_of(method: str) -> str:
    return parse_label(method).variant


def variant_baseline(method: str, baseline: str = BASELINE) -> str:
    """``baseline`` in ``method``'s variant: "none[rr1]" for "regrama[rr1]", "none" for "regrama"."""
    variant = variant_of(method)
    return f"{baseline}[{variant}]" if variant else baseline


def _builtin_in_variant(method: str, builtin: set[str]) -> str | None:
    """The variant of ``method`` when it is a built-in method (possibly of a variant), else None."""
    label = parse_label(method)
    if len(label.components) == 1 and not label.components[0][1] and label.components[0][0] in builtin:
        return label.variant
    return None


def best_baselines(intervals: pd.DataFrame, builtin: Iterable[str] | None = None) -> pd.DataFrame:
    """Per (scope, method): the highest-IQM built-in method of the scope other than itself.

    Args:
      intervals: ``stats.interval_estimates`` output (uses the ``iqm`` rows).
      builtin: names that may be a baseline (default ``builtin_methods()``).
    Returns:
      Columns ``SCOPE + [method, best_baseline]``; ``best_baseline`` is None where the scope
      has no other built-in method.
    """
    builtin = builtin_methods() if builtin is None else set(builtin)
    iqm = intervals[intervals["statistic"] == "iqm"]
    rows = []
    for scope, group in scopes(iqm):
        estimates = dict(zip(group["method"], group["estimate"]))
        # Stable sort on -IQM after the fixed method order: ties go to none, then alphabetical.
        candidates = sorted((m for m in method_order(estimates) if _builtin_in_variant(m, builtin) is not None),
                            key=lambda m: -estimates[m])
        for method in method_order(estimates):
            variant = variant_of(method)
            best = next((m for m in candidates if m != method and _builtin_in_variant(m, builtin) == variant), None)
            rows.append({**dict(zip(SCOPE, scope)), "method": method, "best_baseline": best})
    return pd.DataFrame(rows, columns=SCOPE + ["method", "best_baseline"])


def comparisons(scores: pd.DataFrame, best: pd.DataFrame | None = None, baseline: str = BASELINE) -> pd.DataFrame:
    """The (scope, method, baseline) pairs to compare: every method against ``baseline``
    (where the scope has it) and, given ``best`` (``best_baselines``), against its best baseline.

    Returns columns ``SCOPE + [method, baseline, best_baseline]`` without duplicate pairs.
    """
    rows = []
    best_of = {} if best is None else {
        (*scope, method): b for *scope, method, b in best[SCOPE + ["method", "best_baseline"]].itertuples(index=False)}
    for scope, group in scopes(scores):
        present = set(group["method"])
        for method in method_order(present):
            best_name = best_of.get((*scope, method))
            pairs = []
            own = variant_baseline(method, baseline)
            if own in present and method != own:
                pairs.append(own)
            if best_name is not None and best_name not in pairs:
                pairs.append(best_name)
            for other in pairs:
                rows.append({**dict(zip(SCOPE, scope)), "method": method, "baseline": other,
                             "best_baseline": other == best_name})
    return pd.DataFrame(rows, columns=SCOPE + ["method", "baseline", "best_baseline"])
