"""Publication figures from an aggregate: scores with CIs, learning curves, sensitivity.

Every figure function takes one table of an aggregate (``analysis.vocabulary.Aggregate``), an
output directory and a ``style.Look`` (method styles, display names, CI level), writes
``<name>.<format>`` (default PDF and PNG) per scope (suite/algo/arch; the overall scope is
named ``overall``) and returns ``style.Drawn`` records (files and a caption saying what the
figure shows). Widths follow a two-column paper (``style.COLUMN_WIDTH``, ``style.PAGE_WIDTH``).
``FIGURES`` maps the figure names of ``plasticity-bench plot --figure`` to their functions;
``plot_all`` draws any subset of them with one look for every figure. The curve figures are
``curve_plots``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from plasticity_bench.analysis import curve_plots
from plasticity_bench.analysis.display import DisplayNames
from plasticity_bench.analysis.style import (COLUMN_WIDTH, FORMATS, PAGE_WIDTH, Drawn, Look, PlotError,
                                             distinct_styles, legend_below, paper_style, save, scope_slug, slug)
from plasticity_bench.analysis.sweeps import sensitivity_series, series_rows
from plasticity_bench.analysis.vocabulary import BASELINE, OVERALL, SCOPE, method_order, scopes

import matplotlib.pyplot as plt  # noqa: E402,I001  (after style, which selects the Agg backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402

STATISTIC_LABELS = {"iqm": "IQM", "mean": "Mean", "median": "Median", "optimality_gap": "Optimality gap"}
MIN_SCORE_SPAN = 0.05  # normalised score: narrower panels would only magnify float noise


def _readable_score_axis(ax, low: float, high: float) -> None:
    """At most four plain tick labels (no offset text) over a span of at least MIN_SCORE_SPAN."""
    span = high - low
    if span < MIN_SCORE_SPAN:
        centre = (high + low) / 2
        low, high, span = centre - MIN_SCORE_SPAN / 2, centre + MIN_SCORE_SPAN / 2, MIN_SCORE_SPAN
    ax.set_xlim(low - 0.08 * span, high + 0.08 * span)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")


def _interval_bar(ax, y: int, low: float, high: float, point: float, colour: str) -> None:
    """A CI as a thick bar in the method's colour, the point estimate as a black tick."""
    ax.plot([low, high], [y, y], color=colour, linewidth=4, alpha=0.55, solid_capstyle="butt")
    ax.plot([point], [y], marker="|", color="black", markersize=7)


def plot_interval_estimates(intervals: pd.DataFrame, out_dir: Path, look: Look,
                            formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """One row of panels per scope (IQM, mean, median, optimality gap), CI bars per method."""
    drawn: list[Drawn] = []
    for scope, group in scopes(intervals):
        methods = method_order(group["method"])
        statistics = [s for s in STATISTIC_LABELS if s in set(group["statistic"])]
        with paper_style():
            fig, axes = plt.subplots(1, len(statistics), sharey=True, squeeze=False,
                                     figsize=(PAGE_WIDTH, 1.2 + 0.25 * len(methods)))
            for ax, statistic in zip(axes[0], statistics):
                rows = group[group["statistic"] == statistic].set_index("method")
                for y, method in enumerate(methods):
                    if method in rows.index:
                        row = rows.loc[method]
                        _interval_bar(ax, y, row["low"], row["high"], row["estimate"], look.styles[method].colour)
                ax.set_title(STATISTIC_LABELS[statistic])
                _readable_score_axis(ax, rows["low"].min(), rows["high"].max())
                ax.set_yticks(range(len(methods)), [look.names.method(m) for m in methods])
                ax.set_ylim(-0.6, len(methods) - 0.4)
                ax.invert_yaxis()
                ax.grid(axis="y", visible=False)
            fig.supxlabel("Normalised score", fontsize=7)
            fig.suptitle(look.names.scope(scope), fontsize=7)
            fig.tight_layout()
            paths = save(fig, out_dir, f"interval_estimates_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("interval_estimates", scope, (
            "IQM, mean, median and optimality gap of the runs' normalised final scores per method: "
            f"{look.ci} (bar) and point estimate (tick)."), paths))
    return drawn


def _poi_panels(group: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(panel key, rows) for P(> none) and P(> best baseline); each row one method."""
    best = group["best_baseline"].astype(str).str.lower().isin(["true", "1"]) if "best_baseline" in group \
        else pd.Series(False, index=group.index)
    panels = [("none", group[group["baseline"] == BASELINE]), ("best", group[best])]
    return [(key, rows) for key, rows in panels if not rows.empty]


def plot_probability_of_improvement(poi: pd.DataFrame, out_dir: Path, look: Look,
                                    formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """P(method > none) and P(method > its best baseline) per scope, with CI bars.

    One panel per comparison; in the best-baseline panel each row names its baseline
    ("ReGraMa > ReDo"). The dotted line at 0.5 marks no difference.
    """
    drawn: list[Drawn] = []
    names = look.names
    for scope, group in scopes(poi):
        panels = _poi_panels(group)
        if not panels:
            continue
        rows_shown = max(len(rows) for _, rows in panels)
        width = COLUMN_WIDTH if len(panels) == 1 else PAGE_WIDTH
        with paper_style():
            fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(width, 0.9 + 0.22 * rows_shown))
            for ax, (key, rows) in zip(axes[0], panels):
                order = method_order(rows["method"])
                rows = rows.set_index("method")
                labels = []
                for y, method in enumerate(order):
                    row = rows.loc[method]
                    _interval_bar(ax, y, row["low"], row["high"], row["probability"], look.styles[method].colour)
                    labels.append(names.method(method) if key == "none"
                                  else f"{names.method(method)} > {names.method(row['baseline'])}")
                ax.axvline(0.5, color="grey", linestyle=":", linewidth=0.8)
                ax.set_xlim(-0.02, 1.02)
                ax.grid(axis="y", visible=False)
                ax.set_yticks(range(len(order)), labels)
                ax.set_ylim(-0.6, len(order) - 0.4)
                ax.invert_yaxis()
                ax.set_title(f"Over {names.method(BASELINE)}" if key == "none" else "Over the best baseline")
                ax.set_xlabel("Probability of improvement")
            fig.suptitle(names.scope(scope), fontsize=7)
            fig.tight_layout()
            paths = save(fig, out_dir, f"probability_of_improvement_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("probability_of_improvement", scope, (
            f"Probability that a run of the method scores higher than a run of {names.method(BASELINE)}"
            + (" and of the method's best baseline" if len(panels) > 1 else "")
            + f", with its {look.ci}; 0.5 (dotted) is no difference."), paths))
    return drawn


def _plot_banded_curves(frame: pd.DataFrame, out_dir: Path, look: Look, formats: Sequence[str], *,
                        x: str, y: str, xlabel: str, ylabel: str, name: str, caption: str,
                        ylim: tuple[float, float] | None = None) -> list[Drawn]:
    """One figure per scope: ``y`` vs ``x`` per method with its [low, high] band; legend below."""
    drawn: list[Drawn] = []
    for scope, group in scopes(frame):
        methods = method_order(group["method"])
        with paper_style():
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.3))
            for method in methods:
                rows = group[group["method"] == method].sort_values(x)
                ax.plot(rows[x], rows[y], label=look.names.method(method), gid=f"method:{method}",
                        markevery=max(1, len(rows) // 10), **look.styles[method].line())
                ax.fill_between(rows[x], rows["low"], rows["high"], color=look.styles[method].colour,
                                alpha=0.15, linewidth=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if ylim is not None:
                ax.set_ylim(*ylim)
            ax.set_title(look.names.scope(scope))
            fig.tight_layout()
            legend_below(fig, [look.handle(m) for m in methods], curve_plots.LEGEND_COLUMNS[COLUMN_WIDTH])
            paths = save(fig, out_dir, f"{name}_{scope_slug(*scope)}", formats)
        drawn.append(Drawn(name, scope, caption, paths))
    return drawn


def plot_sample_efficiency(curves: pd.DataFrame, out_dir: Path, look: Look,
                           formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """IQM normalised return vs environment steps with CI bands, one figure per scope."""
    return _plot_banded_curves(curves, out_dir, look, formats, x="step", y="iqm", xlabel="Environment steps",
                               ylabel="IQM normalised return", name="sample_efficiency", caption=(
                                   "Sample efficiency: IQM of the normalised evaluation return over the scope's runs "
                                   f"against environment steps, with its {look.ci} band (stratified over tasks)."))


def plot_performance_profiles(profiles: pd.DataFrame, out_dir: Path, look: Look,
                              formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """Fraction of runs with normalised score > tau, with CI bands, one figure per scope."""
    return _plot_banded_curves(profiles, out_dir, look, formats, x="tau", y="fraction",
                               xlabel=r"Normalised score $\tau$", ylabel=r"Fraction of runs with score $> \tau$",
                               name="performance_profile", ylim=(0, 1.02), caption=(
                                   "Performance profile: fraction of runs whose normalised final score exceeds τ, "
                                   f"with its {look.ci} band; a higher curve is better everywhere."))


def _value_axis(ax, series, option_name: str) -> dict[str, float]:
    """x position of each swept value: the number itself (log axis when the values span a
    factor of 10 or more), or evenly spaced categories."""
    if series.numeric():
        numbers = [float(v) for v in series.values]
        if min(numbers) > 0 and max(numbers) / min(numbers) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(numbers, list(series.values))
        ax.minorticks_off()
        positions = dict(zip(series.values, numbers))
    else:
        positions = {value: float(i) for i, value in enumerate(series.values)}
        ax.set_xticks(list(positions.values()), list(series.values))
    ax.set_xlabel(option_name)
    return positions


def plot_sensitivity(intervals: pd.DataFrame, out_dir: Path, look: Look,
                     formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """IQM with its CI against a swept option's value, one line per scope (``sweeps``).

    One figure per series of labels that differ in one option (e.g. ``regrama[tau=0.01]``,
    ``regrama[tau=0.1]``); the baseline's IQM in each scope is a dotted line of that scope's
    colour. No series (no swept entries): no figure.
    """
    drawn: list[Drawn] = []
    names = look.names
    for series in sensitivity_series(intervals["method"]):
        rows = series_rows(intervals, series)
        scope_keys = sorted(set(rows[SCOPE].itertuples(index=False, name=None)))
        scope_styles = dict(zip(scope_keys, distinct_styles(scope_keys)))
        baseline = intervals[(intervals["statistic"] == "iqm") & (intervals["method"] == BASELINE)]
        with paper_style():
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.3))
            positions = _value_axis(ax, series, names.option(series.option))
            handles = []
            for scope in scope_keys:
                style = scope_styles[scope]
                points = rows[(rows[SCOPE] == pd.Series(scope, index=SCOPE)).all(axis=1)].copy()
                points["x"] = points["value"].map(positions)
                points = points.sort_values("x")
                ax.errorbar(points["x"], points["estimate"],
                            yerr=[points["estimate"] - points["low"], points["high"] - points["estimate"]],
                            capsize=2, elinewidth=0.7, **{**style.line(), "marker": style.marker or "o"})
                handles.append(plt.Line2D([], [], label=names.scope(scope), **{**style.line(),
                                                                                "marker": style.marker or "o"}))
                reference = baseline[(baseline[SCOPE] == pd.Series(scope, index=SCOPE)).all(axis=1)]
                if len(reference):
                    ax.axhline(reference["estimate"].iloc[0], color=style.colour, linestyle=":", linewidth=0.8)
            if len(baseline):
                handles.append(plt.Line2D([], [], color="grey", linestyle=":",
                                          label=f"{names.method(BASELINE)}, same scope"))
            ax.set_ylabel("IQM normalised score")
            title = names.method(series.fixed)
            ax.set_title(f"{title}: {names.option(series.option)}")
            fig.tight_layout()
            legend_below(fig, handles, 2)
            paths = save(fig, out_dir, f"sensitivity_{slug(series.fixed)}_{slug(series.option)}", formats)
        drawn.append(Drawn("sensitivity", None, (
            f"Sensitivity of {title} to {names.option(series.option)} ({', '.join(series.values)}): IQM of the "
            f"normalised final scores with its {look.ci}, one line per scope; dotted: {names.method(BASELINE)}'s "
            "IQM in the same scope."), paths))
    return drawn


#: figure name (``plasticity-bench plot --figure``) -> (Aggregate table it draws, function).
FIGURES: dict[str, tuple[str, Callable[..., list[Drawn]]]] = {
    "interval_estimates": ("interval_estimates", plot_interval_estimates),
    "performance_profile": ("performance_profiles", plot_performance_profiles),
    "probability_of_improvement": ("probability_of_improvement", plot_probability_of_improvement),
    "sample_efficiency": ("sample_efficiency", plot_sample_efficiency),
    "task_curves": ("task_curves", curve_plots.plot_task_curves),
    "run_curves": ("run_curves", curve_plots.plot_run_curves),
    "sensitivity": ("interval_estimates", plot_sensitivity),
    "inactive_vs_dormant": ("metric_curves", curve_plots.plot_inactive_vs_dormant),
    "metric_curves": ("metric_curves", curve_plots.plot_metric_curves),
}


def _without_redundant_overall(table: pd.DataFrame) -> pd.DataFrame:
    """Drop the overall scope's rows when there is one other scope: it would repeat its figure."""
    if table.empty or not set(SCOPE) <= set(table.columns):
        return table
    overall = (table[SCOPE] == OVERALL).all(axis=1)
    others = table.loc[~overall, SCOPE].drop_duplicates()
    return table[~overall] if overall.any() and len(others) == 1 else table


def aggregate_look(aggregate) -> Look:
    """One look for every figure of an aggregate: styles from all its methods, the display names of
    its config (``display.DisplayNames``), its CI level."""
    methods = set()
    for table in aggregate.tables().values():
        if "method" in table.columns:
            methods |= set(table["method"])
    summary = aggregate.summary
    return Look.of(methods, DisplayNames.from_config(summary.get("config")), summary.get("confidence", 0.95))


def plot_all(aggregate, out_dir: Path, figures: Iterable[str] | None = None, formats: Sequence[str] = FORMATS,
             metrics: Iterable[str] | None = None) -> list[Drawn]:
    """The figures named in ``figures`` (default all of ``FIGURES``) of an ``Aggregate``.

    One style per method across all figures; ``metrics`` selects the metrics of
    ``metric_curves`` (default every stored metric).
    """
    look = aggregate_look(aggregate)
    drawn: list[Drawn] = []
    for name in (list(FIGURES) if figures is None else list(figures)):
        if name not in FIGURES:
            raise PlotError(f"unknown figure {name!r}; valid: {', '.join(FIGURES)}")
        table, function = FIGURES[name]
        options = {"metrics": metrics} if name == "metric_curves" else {}
        frame = getattr(aggregate, table)
        if frame.empty:
            continue
        drawn += function(_without_redundant_overall(frame), out_dir, look, formats=formats, **options)
    return drawn
