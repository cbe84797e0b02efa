"""Figures of quantities over training: per-task returns, every run's curve, monitored metrics.

Each function takes one aggregate table (``analysis.vocabulary``), an output directory and a
``style.Look``, writes one figure per scope (and per metric where it says so) and returns
the ``style.Drawn`` records. Bands are the bootstrap CIs of the mean over runs that
``stats.mean_intervals`` computes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from plasticity_bench.analysis.style import (COLUMN_WIDTH, FORMATS, KEY_COLOUR, PAGE_WIDTH, Drawn, Look, PlotError,
                                             legend_below, paper_style, save, scope_slug, slug, steps_axis)
from plasticity_bench.analysis.vocabulary import method_order, scopes

import matplotlib.pyplot as plt  # noqa: E402,I001  (after style, which selects the Agg backend)

GRAMA_PREFIX = "grama_inactive_ratio"
DORMANT_PREFIX = "dormant_ratio"
#: Panels per row of the per-task figures.
TASK_COLUMNS = 3
def _task_grid(look: Look, count: int):
    """(figure, flat list of ``count`` axes) for one panel per task; unused panels hidden."""
    columns = min(count, TASK_COLUMNS if look.width_for(PAGE_WIDTH) >= PAGE_WIDTH else 1)  # one column: stacked
    rows = math.ceil(count / columns)
    width = COLUMN_WIDTH if columns == 1 else PAGE_WIDTH
    fig, axes = look.figure(width, 0.4 + 1.8 * rows, rows, columns)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _network_panels(look: Look, networks: list[str], height: float, **subplots):
    """(figure, axes) with one panel per network, one quantity: the panels share their y range."""
    width = COLUMN_WIDTH if len(networks) == 1 else PAGE_WIDTH
    fig, axes = look.figure(width, height, 1, len(networks), sharey=True, **subplots)
    return fig, axes[0]


def plot_task_curves(task_curves: pd.DataFrame, out_dir: Path, look: Look,
                     formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """Raw eval return per task (not normalised): one panel per task, mean over seeds with its CI band."""
    drawn: list[Drawn] = []
    for scope, group in scopes(task_curves):
        tasks = sorted(group["task"].unique())
        methods = method_order(group["method"])
        with paper_style(look.font_size):
            fig, axes = _task_grid(look, len(tasks))
            for ax, task in zip(axes, tasks):
                curves = [(method, group[(group["task"] == task) & (group["method"] == method)].sort_values("step"))
                          for method in methods]
                for method, rows in curves:  # bands under every line
                    if not rows.empty:
                        look.band(ax, rows["step"], rows["low"], rows["high"], method)
                for method, rows in curves:
                    if not rows.empty:
                        ax.plot(rows["step"], rows["mean"], gid=f"method:{method}", **look.styles[method].line())
                ax.set_title(look.names.task(task))
                steps_axis(ax, scope[1])
                ax.set_ylabel("Return" if scope[1] != "sl" else "Accuracy")
            look.title(fig, look.names.scope(scope))
            legend_below(fig, [look.handle(m) for m in methods])
            paths = save(fig, out_dir, f"task_curves_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("task_curves", scope, (
            "Raw evaluation return per task (not normalised) against steps: mean over seeds with its "
            f"{look.ci} band; the panels' y ranges differ, as the tasks' returns do."), paths, fig.get_figwidth()))
    return drawn


def plot_run_curves(run_curves: pd.DataFrame, out_dir: Path, look: Look,
                    formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """Every run's raw eval return, one thin line per run, one panel per task: a run that stays
    flat, falls off or stops early stands out from the other seeds of its method."""
    drawn: list[Drawn] = []
    for scope, group in scopes(run_curves):
        tasks = sorted(group["task"].unique())
        methods = method_order(group["method"])
        with paper_style(look.font_size):
            fig, axes = _task_grid(look, len(tasks))
            for ax, task in zip(axes, tasks):
                for (method, _), rows in group[group["task"] == task].groupby(["method", "run_id"], sort=True):
                    rows = rows.sort_values("step")
                    ax.plot(rows["step"], rows["return"], linewidth=0.6, markersize=2, alpha=0.75,
                            gid=f"method:{method}", **look.styles[method].line())
                ax.set_title(look.names.task(task))
                steps_axis(ax, scope[1])
                ax.set_ylabel("Return" if scope[1] != "sl" else "Accuracy")
            look.title(fig, f"{look.names.scope(scope)}: every run")
            legend_below(fig, [look.handle(m) for m in methods])
            paths = save(fig, out_dir, f"run_curves_{scope_slug(*scope)}", formats)
        runs = group["run_id"].nunique()
        drawn.append(Drawn("run_curves", scope, (
            f"Every run's raw evaluation return ({runs} runs, one thin line each, in its method's colour): "
            "a run far from the other seeds of its method, flat or cut short, is one to check."), paths,
            fig.get_figwidth()))
    return drawn


# tau of the inactive-vs-dormant figure: 0 hides gradual decay, 0.1 flags healthy neurons
# of wide layers; 0.025 is the middle of the range both papers study.
PREFERRED_TAU = "0.025"


def _pick_metric(metrics: Iterable[str], prefix: str) -> str | None:
    """The metric ``prefix@0.025`` if stored, else ``prefix`` or the smallest stored ``prefix@<tau>``."""
    candidates = [m for m in set(metrics) if m == prefix or m.startswith(prefix + "@")]
    if f"{prefix}@{PREFERRED_TAU}" in candidates:
        return f"{prefix}@{PREFERRED_TAU}"

    def tau(name: str) -> float:
        try:
            return float(name.split("@", 1)[1])
        except (IndexError, ValueError):
            return float("inf")

    return min(candidates, key=lambda name: (tau(name), name)) if candidates else None


def plot_inactive_vs_dormant(metric_curves: pd.DataFrame, out_dir: Path, look: Look,
                             formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """GraMa-inactive ratio (solid) vs tau-dormant ratio (dashed) over training.

    One panel per network; a method keeps its colour and marker, while the line style tells the
    two metrics apart; the metric thresholds shown are in the legend. Scopes without either
    metric produce no figure.
    """
    drawn: list[Drawn] = []
    for scope, group in scopes(metric_curves):
        grama = _pick_metric(group["metric"], GRAMA_PREFIX)
        dormant = _pick_metric(group["metric"], DORMANT_PREFIX)
        shown = [(name, style) for name, style in ((grama, "-"), (dormant, "--")) if name]
        if not shown:
            continue
        networks = sorted(group["network"].unique())
        methods = method_order(group["method"])
        with paper_style(look.font_size):
            fig, axes = _network_panels(look, networks, 2.0)
            for ax, network in zip(axes, networks):
                for method in methods:
                    for name, style in shown:
                        rows = group[(group["network"] == network) & (group["method"] == method)
                                     & (group["metric"] == name)].sort_values("step")
                        if not rows.empty:
                            ax.plot(rows["step"], rows["mean"], gid=f"method:{method}",
                                    **{**look.styles[method].line(), "linestyle": style})
                ax.set_title(look.names.network(network))
                steps_axis(ax, scope[1])
            axes[0].set_ylabel("Fraction of neurons")
            handles = [plt.Line2D([], [], label=look.names.method(m), **{**look.styles[m].line(), "linestyle": "-"})
                       for m in methods]
            # The line-style key in a colour no method has, so it is not read as the baseline.
            handles += [plt.Line2D([], [], color=KEY_COLOUR, linestyle=style, label=look.names.metric(name))
                        for name, style in shown]
            look.title(fig, look.names.scope(scope))
            legend_below(fig, handles)
            paths = save(fig, out_dir, f"inactive_vs_dormant_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("inactive_vs_dormant", scope, (
            " versus ".join(f"{look.names.metric(name)} ({'solid' if style == '-' else 'dashed'})"
                            for name, style in shown)
            + " over training, per network: mean over the scope's runs of each method."), paths,
            fig.get_figwidth()))
    return drawn


def metric_names(metric_curves: pd.DataFrame, wanted: Iterable[str] | None = None) -> list[str]:
    """The stored metrics that ``wanted`` names (all when None).

    A wanted name matches a metric exactly or as its prefix before ``@`` (``dormant_ratio``
    matches ``dormant_ratio@0.1``). Raises PlotError naming an unmatched name and the
    stored metrics.
    """
    stored = sorted(set(metric_curves["metric"])) if len(metric_curves) else []
    if wanted is None:
        return stored
    chosen = []
    for name in wanted:
        matches = [m for m in stored if m == name or m.split("@", 1)[0] == name]
        if not matches:
            raise PlotError(f"unknown metric {name!r}; stored metrics: {', '.join(stored) or 'none'}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


#: Metrics a report draws curves of by default: the two neuron-activity measures the suite
#: compares, at the thresholds the papers use (GraMa tau 0, ReDo tau 0.1), and the
#: representation/optimisation measures Lyle et al. test as predictors of plasticity. Other
#: stored metrics are a ``plasticity-bench plot --figure metric_curves --metric ...`` away.
REPORT_METRICS = ("grama_inactive_ratio@0", "dormant_ratio@0.1", "active_fraction", "srank", "weight_magnitude",
                  "grad_norm")


def stored_report_metrics(metric_curves: pd.DataFrame) -> list[str]:
    """The ``REPORT_METRICS`` that ``metric_curves`` holds, in that order."""
    stored = set(metric_curves["metric"]) if len(metric_curves) else set()
    return [metric for metric in REPORT_METRICS if metric in stored]


def plot_metric_curves(metric_curves: pd.DataFrame, out_dir: Path, look: Look, formats: Sequence[str] = FORMATS,
                       metrics: Iterable[str] | None = None) -> list[Drawn]:
    """Any monitored metric over training: one figure per (scope, metric), one panel per network.

    Lines are the mean over the scope's runs of a method (seeds and tasks) at the
    ``all``-layer aggregate; the band is its bootstrap CI (``stats.metric_curves``).
    """
    drawn: list[Drawn] = []
    if metric_curves.empty:
        return drawn
    for metric in metric_names(metric_curves, metrics):
        for scope, group in scopes(metric_curves[metric_curves["metric"] == metric]):
            networks = sorted(group["network"].unique())
            methods = method_order(group["method"])
            with paper_style(look.font_size):
                fig, axes = _network_panels(look, networks, 1.9)
                for ax, network in zip(axes, networks):
                    curves = [(method, group[(group["network"] == network)
                                             & (group["method"] == method)].sort_values("step")) for method in methods]
                    for method, rows in curves:  # bands under every line
                        if not rows.empty:
                            look.band(ax, rows["step"], rows["low"], rows["high"], method)
                    for method, rows in curves:
                        if not rows.empty:
                            ax.plot(rows["step"], rows["mean"], gid=f"method:{method}", **look.styles[method].line())
                    ax.set_title(look.names.network(network))
                    steps_axis(ax, scope[1])
                axes[0].set_ylabel(look.wrap(look.names.metric(metric), 1.6))
                look.title(fig, f"{look.names.scope(scope)}: {look.names.metric(metric)}")
                legend_below(fig, [look.handle(m) for m in methods])
                paths = save(fig, out_dir, f"metric_curves_{scope_slug(*scope)}_{slug(metric)}", formats)
            drawn.append(Drawn("metric_curves", scope, (
                f"{look.names.metric(metric)} over training, per network: mean over the scope's runs (seeds and "
                f"tasks) of each method with its {look.ci} band; the panels share their y range."), paths,
                fig.get_figwidth()))
    return drawn
