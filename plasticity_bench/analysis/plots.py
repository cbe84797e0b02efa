"""Publication figures from an aggregate: scores with CIs, learning curves, sensitivity, claims.

Every figure function takes one table of an aggregate (``analysis.vocabulary.Aggregate``), an
output directory and a ``style.Look`` (method styles, display names, CI level, font size,
column width), writes ``<name>.<format>`` (default PDF and PNG) per scope (suite/algo/arch;
the overall scope is named ``overall``) and returns ``style.Drawn`` records (files, a caption
saying what to read from the figure, the width it is meant to be printed at). Each figure is
one column (``style.COLUMN_WIDTH``) or both (``style.PAGE_WIDTH``) wide, at ``Look.font_size``.
``FIGURES`` maps the figure names of ``plasticity-bench plot --figure`` to their functions;
``plot_all`` draws any subset of them with one look for every figure. The curve figures are
``curve_plots``'s; the continual figures (return over the sequence, plasticity ratio per
segment) ``continual_plots``'s, drawn for continual scopes only, where the return over the
sequence replaces the sample-efficiency curve (the same IQM curve, without the segment ends).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from plasticity_bench.analysis import continual_plots, curve_plots
from plasticity_bench.analysis.display import DisplayNames
from plasticity_bench.analysis.style import (COLUMN_WIDTH, FONT_SIZE, FORMATS, KEY_COLOUR, PAGE_WIDTH, Drawn, Look,
                                             PlotError, distinct_styles, is_baseline, legend_below, paper_style, save,
                                             scope_slug, slug, steps_axis)
from plasticity_bench.analysis.sweeps import sensitivity_series, series_rows
from plasticity_bench.analysis.vocabulary import BASELINE, OVERALL, SCOPE, method_order, scopes

import matplotlib.pyplot as plt  # noqa: E402,I001  (after style, which selects the Agg backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402

STATISTIC_LABELS = {"iqm": "IQM", "mean": "Mean", "median": "Median",
                    "optimality_gap": "Optimality gap\n(lower is better)"}
MIN_SCORE_SPAN = 0.05  # normalised score: narrower panels would only magnify float noise
#: Height (inches, 8 pt text) of one row of a figure that lists methods or claims on its y axis.
ROW_HEIGHT = 0.2


def _readable_axis(axis, low: float, high: float, ticks: int = 4) -> None:
    """At most ``ticks`` plain tick labels (no offset text) over a span of at least MIN_SCORE_SPAN."""
    span = high - low
    if span < MIN_SCORE_SPAN:
        centre = (high + low) / 2
        low, high, span = centre - MIN_SCORE_SPAN / 2, centre + MIN_SCORE_SPAN / 2, MIN_SCORE_SPAN
    (axis.axes.set_xlim if axis is axis.axes.xaxis else axis.axes.set_ylim)(low - 0.08 * span, high + 0.08 * span)
    axis.set_major_locator(MaxNLocator(nbins=ticks))


def _interval_bar(ax, y: int, low: float, high: float, point: float, colour: str) -> None:
    """A CI as a thick bar in the method's colour, the point estimate as a black tick."""
    ax.plot([low, high], [y, y], color=colour, linewidth=5, alpha=0.5, solid_capstyle="butt")
    ax.plot([point], [y], marker="|", color="black", markersize=8, markeredgewidth=1.2)


def _scope_title(look: Look, scope: tuple) -> str:
    title = look.names.scope(scope)
    return title + " (not learned at this budget)" if tuple(scope) in look.unlearned else title


def _method_rows(ax, methods: list[str], labels: list[str]) -> None:
    ax.set_yticks(range(len(methods)), labels)
    ax.set_ylim(-0.6, len(methods) - 0.4)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)


def plot_interval_estimates(intervals: pd.DataFrame, out_dir: Path, look: Look,
                            formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """One row of panels per scope (IQM, mean, median, optimality gap), CI bars per method."""
    drawn: list[Drawn] = []
    for scope, group in scopes(intervals):
        methods = method_order(group["method"])
        statistics = [s for s in STATISTIC_LABELS if s in set(group["statistic"])]
        # Side by side on a page's width; in one column, two panels a row.
        columns = len(statistics) if look.width_for(PAGE_WIDTH) >= PAGE_WIDTH else min(2, len(statistics))
        rows = -(-len(statistics) // columns)
        with paper_style(look.font_size):
            fig, axes = look.figure(PAGE_WIDTH, 0.35 + rows * (0.6 + ROW_HEIGHT * len(methods)), rows, columns,
                                    sharey=True)
            for ax in axes.flat[len(statistics):]:
                ax.set_visible(False)
            for ax, statistic in zip(axes.flat, statistics):
                rows = group[group["statistic"] == statistic].set_index("method")
                for y, method in enumerate(methods):
                    if method in rows.index:
                        row = rows.loc[method]
                        _interval_bar(ax, y, row["low"], row["high"], row["estimate"], look.styles[method].colour)
                ax.set_title(STATISTIC_LABELS[statistic])
                # A label like "0.56" needs about 0.45 in at 8 pt; method names take ~1.3 in on the left.
                panel = (fig.get_figwidth() - 1.3) / columns * FONT_SIZE / look.font_size
                _readable_axis(ax.xaxis, rows["low"].min(), rows["high"].max(), max(2, min(4, int(panel / 0.45))))
                _method_rows(ax, methods, [look.names.method(m) for m in methods])
            fig.supxlabel("Normalised score")
            look.title(fig, _scope_title(look, scope))
            paths = save(fig, out_dir, f"interval_estimates_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("interval_estimates", scope, (
            "Normalised final scores per method: IQM, mean and median (higher is better) and optimality gap "
            f"(lower is better), each with its {look.ci} (bar) and point estimate (tick). Methods whose bars "
            "overlap are not separated by these runs."), paths, fig.get_figwidth()))
    return drawn


def plot_probability_of_improvement(poi: pd.DataFrame, out_dir: Path, look: Look,
                                    formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """P(method > baseline) per scope with CI bars: each method against the baseline of its
    scope only (``none``, or ``none`` with the same variant), never a method against itself or
    two interventions against each other. The dotted line at 0.5 marks no difference."""
    drawn: list[Drawn] = []
    names = look.names
    against_baseline = poi[poi["baseline"].map(is_baseline) & ~poi["method"].map(is_baseline)
                           & (poi["method"] != poi["baseline"])]
    for scope, group in scopes(against_baseline):
        order = [m for m in method_order(group["method"])]
        rows = group.drop_duplicates("method").set_index("method")
        baselines = sorted(set(rows["baseline"]))
        with paper_style(look.font_size):
            fig, axes = look.figure(COLUMN_WIDTH, 0.95 + ROW_HEIGHT * len(order))
            ax = axes[0][0]
            labels = []
            for y, method in enumerate(order):
                row = rows.loc[method]
                _interval_bar(ax, y, row["low"], row["high"], row["probability"], look.styles[method].colour)
                labels.append(names.method(method) if len(baselines) == 1
                              else f"{names.method(method)} vs {names.method(row['baseline'])}")
            ax.axvline(0.5, color=KEY_COLOUR, linestyle=":", linewidth=0.8)
            ax.set_xlim(-0.02, 1.02)
            ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0", "0.25", "0.5", "0.75", "1"])
            _method_rows(ax, order, labels)
            baseline_name = names.method(baselines[0]) if len(baselines) == 1 else "its baseline"
            ax.set_xlabel(f"P(method > {baseline_name})")
            look.title(fig, _scope_title(look, scope))
            paths = save(fig, out_dir, f"probability_of_improvement_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("probability_of_improvement", scope, (
            f"Probability that a run of the method scores higher than a run of {baseline_name} on the same task, "
            f"with its {look.ci}; 0.5 (dotted) is no difference, a bar wholly right of it an improvement."),
            paths, fig.get_figwidth()))
    return drawn


def _plot_banded_curves(frame: pd.DataFrame, out_dir: Path, look: Look, formats: Sequence[str], *,
                        x: str, y: str, xlabel: str | None, ylabel: str, name: str, caption: str,
                        ylim: tuple[float, float] | None = None) -> list[Drawn]:
    """One figure per scope: ``y`` vs ``x`` per method with its [low, high] band; legend below.
    ``xlabel`` None: the x axis counts steps (k/M)."""
    drawn: list[Drawn] = []
    for scope, group in scopes(frame):
        methods = method_order(group["method"])
        with paper_style(look.font_size):
            fig, axes = look.figure(COLUMN_WIDTH, 2.2)
            ax = axes[0][0]
            for method in methods:  # bands first, so that every line is drawn over every band
                rows = group[group["method"] == method].sort_values(x)
                look.band(ax, rows[x], rows["low"], rows["high"], method)
            for method in methods:
                rows = group[group["method"] == method].sort_values(x)
                ax.plot(rows[x], rows[y], label=look.names.method(method), gid=f"method:{method}",
                        markevery=max(1, len(rows) // 10), **look.styles[method].line())
            if xlabel is None:
                steps_axis(ax, scope[1])
            else:
                ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if ylim is not None:
                ax.set_ylim(*ylim)
            look.title(fig, _scope_title(look, scope))
            legend_below(fig, [look.handle(m) for m in methods])
            paths = save(fig, out_dir, f"{name}_{scope_slug(*scope)}", formats)
        drawn.append(Drawn(name, scope, caption, paths, fig.get_figwidth()))
    return drawn


def plot_sample_efficiency(curves: pd.DataFrame, out_dir: Path, look: Look,
                           formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """IQM normalised return vs environment steps with CI bands, one figure per scope."""
    return _plot_banded_curves(curves, out_dir, look, formats, x="step", y="iqm", xlabel=None,
                               ylabel="IQM normalised return", name="sample_efficiency", caption=(
                                   "Sample efficiency: IQM of the normalised evaluation return over the scope's runs "
                                   f"against steps, with its {look.ci} band (stratified over tasks); a curve above "
                                   "another reaches a return with fewer steps."))


def plot_performance_profiles(profiles: pd.DataFrame, out_dir: Path, look: Look,
                              formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """Fraction of runs with normalised score > tau, with CI bands, one figure per scope."""
    return _plot_banded_curves(profiles, out_dir, look, formats, x="tau", y="fraction",
                               xlabel=r"Normalised score $\tau$", ylabel=r"Fraction of runs > $\tau$",
                               name="performance_profile", ylim=(0, 1.02), caption=(
                                   "Performance profile: fraction of runs whose normalised final score exceeds τ, "
                                   f"with its {look.ci} band; a curve above another everywhere is better at every "
                                   "threshold (plasticity-bench plot --methods draws a subset)."))


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
    colour. A scope no method learned says so in the legend: its flat line is no evidence of
    insensitivity. No series (no swept entries): no figure.
    """
    drawn: list[Drawn] = []
    names = look.names
    for series in sensitivity_series(intervals["method"]):
        rows = series_rows(intervals, series)
        scope_keys = sorted(set(rows[SCOPE].itertuples(index=False, name=None)))
        scope_styles = dict(zip(scope_keys, distinct_styles(scope_keys)))
        baseline = intervals[(intervals["statistic"] == "iqm") & (intervals["method"] == BASELINE)]
        unlearned = [scope for scope in scope_keys if scope in look.unlearned]
        with paper_style(look.font_size):
            fig, axes = look.figure(COLUMN_WIDTH, 2.3)
            ax = axes[0][0]
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
                handles.append(plt.Line2D([], [], label=_scope_title(look, scope),
                                          **{**style.line(), "marker": style.marker or "o"}))
                reference = baseline[(baseline[SCOPE] == pd.Series(scope, index=SCOPE)).all(axis=1)]
                if len(reference):
                    ax.axhline(reference["estimate"].iloc[0], color=style.colour, linestyle=":", linewidth=0.8)
            if len(baseline):
                handles.append(plt.Line2D([], [], color=KEY_COLOUR, linestyle=":",
                                          label=f"{names.method(BASELINE)}, same scope"))
            _readable_axis(ax.yaxis, rows["low"].min(), rows["high"].max())
            ax.set_ylabel("IQM normalised score")
            title = names.method(series.fixed)
            look.title(fig, f"{title}: {names.option(series.option)}")
            legend_below(fig, handles)
            paths = save(fig, out_dir, f"sensitivity_{slug(series.fixed)}_{slug(series.option)}", formats)
        drawn.append(Drawn("sensitivity", None, (
            f"Sensitivity of {title} to {names.option(series.option)} ({', '.join(series.values)}): IQM of the "
            f"normalised final scores with its {look.ci}, one line per scope; dotted: {names.method(BASELINE)}'s "
            "IQM in the same scope."
            + (f" Not learned at this budget, so flat whatever the option: {'; '.join(map(names.scope, unlearned))}."
               if unlearned else "")), paths, fig.get_figwidth()))
    return drawn


#: Colour of each claim verdict in the forest plot (the page's table uses the same words).
VERDICT_COLOURS = {"yes": "#117733", "no": "#D55E00", "inconclusive": KEY_COLOUR}


def claim_positions(claims: pd.DataFrame) -> pd.DataFrame:
    """Each claim's estimate and CI on one shared axis: the distance from its threshold, divided
    by the CI's largest distance from it, signed so that the expected side is positive.

    A claim holds (yes) when its whole CI is right of 0, fails (no) when left of it; the scale
    differs per claim (a ratio, a loss, a score), so the axis shows where each CI lies relative
    to its threshold, and the table gives the numbers. Columns ``point``, ``low``, ``high``.
    """
    rows = []
    for claim in claims.itertuples():
        symbol, _, number = str(claim.expected).partition(" ")
        threshold = float(number)
        sign = 1.0 if symbol.startswith(">") else -1.0
        values = [sign * (v - threshold) for v in (claim.measured, claim.ci_low, claim.ci_high)]
        scale = max(abs(v) for v in values[1:]) or 1.0
        point, *ends = (v / scale for v in values)
        rows.append({"point": point, "low": min(ends), "high": max(ends)})
    return pd.DataFrame(rows, columns=["point", "low", "high"], index=claims.index)


def claim_label(number: int, source: str) -> str:
    """The y label of a claim: its number in the table and its source's first word ("3 ReDo")."""
    return f"{number} {str(source).split()[0] if str(source).strip() else ''}".strip()


def plot_claims(claims: pd.DataFrame, out_dir: Path, look: Look, formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """The claims as a forest plot: one row per claim (numbered as in the table), its CI and
    estimate relative to its threshold (``claim_positions``), coloured by verdict; the
    expected side shaded. Claims without a measurement are left out."""
    measured = claims.dropna(subset=["measured", "ci_low", "ci_high"]).reset_index(drop=True)
    if measured.empty:
        return []
    positions = claim_positions(measured)
    numbers = list(range(1, len(claims) + 1))
    number_of = dict(zip(claims.index, numbers))
    with paper_style(look.font_size):
        fig, axes = look.figure(COLUMN_WIDTH, 0.8 + ROW_HEIGHT * len(measured))
        ax = axes[0][0]
        ax.axvspan(0, 1.15, color=VERDICT_COLOURS["yes"], alpha=0.07, linewidth=0)
        ax.axvline(0, color="black", linewidth=0.8)
        labels = []
        kept = claims.dropna(subset=["measured", "ci_low", "ci_high"]).index
        for y, (index, claim) in enumerate(zip(kept, measured.itertuples())):
            colour = VERDICT_COLOURS.get(str(claim.holds), KEY_COLOUR)
            row = positions.iloc[y]
            ax.plot([row["low"], row["high"]], [y, y], color=colour, linewidth=2.5, solid_capstyle="butt")
            ax.plot([row["point"]], [y], marker="o", color=colour, markersize=4)
            labels.append(claim_label(number_of[index], claim.source))
        _method_rows(ax, list(range(len(measured))), labels)
        ax.set_xlim(-1.15, 1.15)
        ax.set_xticks([-1, 0, 1], ["other side", "threshold", "expected side"])
        ax.set_xlabel("CI relative to the claim's threshold")
        handles = [plt.Line2D([], [], color=colour, marker="o", linewidth=2.5, label=verdict)
                   for verdict, colour in VERDICT_COLOURS.items() if verdict in set(measured["holds"].astype(str))]
        legend_below(fig, handles)
        paths = save(fig, out_dir, "claims", formats)
    return [Drawn("claims", None, (
        "Each claim's estimate (dot) and 95% CI (bar) against its threshold (0), scaled per claim so that the "
        "CI's far end is at 1 and the expected side is to the right (shaded): green holds (the whole CI on the "
        "expected side), orange fails (wholly on the other), grey is inconclusive. Numbers as in the table."),
        paths, fig.get_figwidth())]


#: FIGURES' table of a figure that reads the whole aggregate (the continual figures also read
#: its summary's ``continual`` entry).
WHOLE_AGGREGATE = ""

#: figure name (``plasticity-bench plot --figure``) -> (Aggregate table it draws, function), in
#: the order a report page shows a scope's figures: the ranking, then (continual scopes) the
#: plasticity ratio per segment and the return over the sequence, then the rest.
FIGURES: dict[str, tuple[str, Callable[..., list[Drawn]]]] = {
    "interval_estimates": ("interval_estimates", plot_interval_estimates),
    "plasticity_ratio": (WHOLE_AGGREGATE, continual_plots.plot_plasticity_ratio),
    "sequence_returns": (WHOLE_AGGREGATE, continual_plots.plot_sequence_returns),
    "performance_profile": ("performance_profiles", plot_performance_profiles),
    "probability_of_improvement": ("probability_of_improvement", plot_probability_of_improvement),
    "sample_efficiency": ("sample_efficiency", plot_sample_efficiency),
    "task_curves": ("task_curves", curve_plots.plot_task_curves),
    "run_curves": ("run_curves", curve_plots.plot_run_curves),
    "sensitivity": ("interval_estimates", plot_sensitivity),
    "inactive_vs_dormant": ("metric_curves", curve_plots.plot_inactive_vs_dormant),
    "metric_curves": ("metric_curves", curve_plots.plot_metric_curves),
    "claims": ("claims", plot_claims),
}


def _without_redundant_overall(table: pd.DataFrame) -> pd.DataFrame:
    """Drop the overall scope's rows when there is one other scope: it would repeat its figure."""
    if table.empty or not set(SCOPE) <= set(table.columns):
        return table
    overall = (table[SCOPE] == OVERALL).all(axis=1)
    others = table.loc[~overall, SCOPE].drop_duplicates()
    return table[~overall] if overall.any() and len(others) == 1 else table


def aggregate_methods(aggregate) -> set[str]:
    """Every method label of an aggregate's tables."""
    methods = set()
    for table in aggregate.tables().values():
        if "method" in table.columns:
            methods |= set(table["method"])
    return methods


def aggregate_look(aggregate, names: DisplayNames | None = None, **options) -> Look:
    """One look for every figure of an aggregate: styles from all its methods (so a subset drawn
    later keeps its colours), the display names of its config (``display.DisplayNames``) unless
    ``names`` are given, its CI level, its unlearned scopes; ``options``: ``font_size``, ``column``."""
    summary = aggregate.summary
    unlearned = frozenset(tuple(scope[column] for column in SCOPE) for scope in summary.get("unlearned_scopes") or [])
    return Look.of(aggregate_methods(aggregate), names or DisplayNames.from_config(summary.get("config")),
                   summary.get("confidence", 0.95), unlearned=unlearned, **options)


def only_methods(aggregate, methods: Iterable[str]):
    """The aggregate with the rows of ``methods`` only (comparisons among them or with the baseline):
    statistics as stored, none recomputed. Raises PlotError naming an unknown method."""
    methods = list(methods)
    stored = method_order(aggregate_methods(aggregate))
    unknown = [m for m in methods if m not in stored]
    if unknown:
        raise PlotError(f"unknown method {unknown[0]!r}; the aggregate holds: {', '.join(stored)}")
    tables = {}
    for name, table in aggregate.tables().items():
        if "method" in table.columns and name != "scores":
            keep = table["method"].isin(methods)
            if "baseline" in table.columns:  # the baseline stays the reference even where it is not drawn
                keep &= table["baseline"].isin(methods) | table["baseline"].map(is_baseline)
            table = table[keep]
        tables[name] = table
    continual = aggregate.summary.get("continual")
    if continual:  # the continual figures' per-segment ratios live in the summary
        continual = {**continual, **{key: [row for row in continual.get(key, []) if row["method"] in methods]
                                     for key in ("ratios", "leaderboard")}}
        return replace(aggregate, **tables, summary={**aggregate.summary, "continual": continual})
    return replace(aggregate, **tables)


def plot_all(aggregate, out_dir: Path, figures: Iterable[str] | None = None, formats: Sequence[str] = FORMATS,
             metrics: Iterable[str] | None = None, look: Look | None = None,
             methods: Iterable[str] | None = None) -> list[Drawn]:
    """The figures named in ``figures`` (default all of ``FIGURES``) of an ``Aggregate``.

    One style per method across all figures (``look``, default ``aggregate_look``); ``metrics``
    selects the metrics of ``metric_curves`` (default every stored metric); ``methods`` the
    methods shown (default all; ``only_methods``).
    """
    look = look or aggregate_look(aggregate)
    if methods is not None:
        aggregate = only_methods(aggregate, methods)
    drawn: list[Drawn] = []
    names = list(FIGURES) if figures is None else list(figures)
    continual_scopes = set(continual_plots.segment_lengths(aggregate))
    for name in names:
        if name not in FIGURES:
            raise PlotError(f"unknown figure {name!r}; valid: {', '.join(FIGURES)}")
        table, function = FIGURES[name]
        if table == WHOLE_AGGREGATE:
            drawn += function(aggregate, out_dir, look, formats=formats)
            continue
        options = {"metrics": metrics} if name == "metric_curves" else {}
        frame = getattr(aggregate, table)
        if name == "sample_efficiency" and "sequence_returns" in names and continual_scopes and not frame.empty:
            frame = frame[~frame[SCOPE].apply(tuple, axis=1).isin(continual_scopes)]
        if frame.empty:
            continue
        drawn += function(_without_redundant_overall(frame), out_dir, look, formats=formats, **options)
    return drawn
