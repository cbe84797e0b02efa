"""Sensitivity series: leaderboard labels of one method that differ in one option's value.

A config's ``sweep: {regrama: {tau: [0.01, 0.1]}}`` (or method entries written with options)
gives labels ``regrama[tau=0.01]`` and ``regrama[tau=0.1]``; they form one series over
``tau``. With a grid (tau x period) every fixed value of the other option gives a series of
its own (``regrama[period=1000]`` over tau, ...). pandas only: the figure is ``plots``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plasticity_bench.analysis.display import Label, parse_label


@dataclass(frozen=True)
class Series:
    """Labels of ``method`` whose option ``option`` takes the values ``values`` (as written),
    all other options as in ``fixed`` (a label text such as ``regrama[period=1000]``)."""

    fixed: str
    method: str
    option: str
    values: tuple[str, ...]
    labels: tuple[str, ...]

    def numeric(self) -> bool:
        try:
            [float(value) for value in self.values]
        except ValueError:
            return False
        return True


def _without(label: Label, component: int, option: int) -> Label:
    name, options = label.components[component]
    kept = options[:option] + options[option + 1:]
    return Label(label.components[:component] + ((name, kept),) + label.components[component + 1:], label.variant)


def sensitivity_series(labels) -> list[Series]:
    """Every series of two or more labels differing in one option (see the module docstring),
    values in ascending order (numeric when every value is a number)."""
    found: dict[tuple[str, str, str], dict[str, str]] = {}
    for label in sorted(set(labels)):
        parsed = parse_label(label)
        for c, (name, options) in enumerate(parsed.components):
            for o, (option, value) in enumerate(options):
                key = (_without(parsed, c, o).text(), name, option)
                found.setdefault(key, {})[value] = label
    series = []
    for (fixed, method, option), by_value in sorted(found.items()):
        if len(by_value) < 2:
            continue
        draft = Series(fixed, method, option, tuple(by_value), tuple(by_value.values()))
        order = sorted(by_value, key=float) if draft.numeric() else sorted(by_value)
        series.append(Series(fixed, method, option, tuple(order), tuple(by_value[v] for v in order)))
    return series


def series_rows(intervals: pd.DataFrame, series: Series, statistic: str = "iqm") -> pd.DataFrame:
    """The ``statistic`` rows (estimate, low, high per scope) of the series' labels, with its
    option ``value`` as written."""
    rows = intervals[(intervals["statistic"] == statistic) & intervals["method"].isin(series.labels)]
    value_of = dict(zip(series.labels, series.values))
    return rows.assign(value=rows["method"].map(value_of))
