"""Publication figures from an aggregate (one style, colour-blind palette, PDF + PNG).

Every figure function takes tables of an aggregate (``analysis.vocabulary.Aggregate``) and an output
directory, writes ``<name>.<format>`` (default PDF and PNG) per scope (suite/algo/arch; the
overall scope is named ``overall``) and returns the written paths. Widths follow a
two-column paper: ``COLUMN_WIDTH`` inches for a one-column figure, ``PAGE_WIDTH`` for a
figure spanning both columns. ``FIGURES`` maps the figure names of ``plasticity-bench
plot --figure`` to their functions; ``plot_all`` draws any subset of them.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (must precede pyplot)

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from plasticity_bench.analysis.vocabulary import (BASELINE, OVERALL, SCOPE, is_overall, method_order,  # noqa: E402
                                                  scope_title, scopes)

COLUMN_WIDTH = 3.3  # inches, one column of a two-column paper
PAGE_WIDTH = 6.9  # inches, both columns
DPI = 300
FORMATS = ("pdf", "png")
SUPPORTED_FORMATS = ("pdf", "png", "svg")
STATISTIC_LABELS = {"iqm": "IQM", "mean": "Mean", "median": "Median", "optimality_gap": "Optimality gap"}
GRAMA_PREFIX = "grama_inactive_ratio"
DORMANT_PREFIX = "dormant_ratio"

STYLE = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.frameon": False,
    "lines.linewidth": 1.0,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "pdf.fonttype": 42,  # TrueType: text stays editable and embeds cleanly in papers
    "ps.fonttype": 42,
    "svg.hashsalt": "plasticity-bench",
}


class PlotError(ValueError):
    """A user-facing problem with a figure request (unknown figure, format or metric)."""


@contextmanager
def paper_style() -> Iterator[None]:
    """The one style of every figure; scoped so importing this module changes nothing."""
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        yield


def method_colours(methods: Iterable[str]) -> dict[str, tuple]:
    """Colour-blind palette (seaborn 'colorblind'), assigned in ``method_order``."""
    ordered = method_order(methods)
    palette = sns.color_palette("colorblind", n_colors=max(len(ordered), 1))
    return {method: palette[i % len(palette)] for i, method in enumerate(ordered)}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))


def scope_slug(suite: str, algo: str, arch: str) -> str:
    if is_overall((suite, algo, arch)):
        return "overall"
    return slug(f"{suite}_{algo}_{arch}")


#: savefig metadata that would otherwise hold the date, so reruns give the same bytes.
_PINNED_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "png": {}, "svg": {"Date": None}}


def save(fig: plt.Figure, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``name.<format>`` for each format; metadata pinned so reruns give the same bytes."""
    unknown = [f for f in formats if f not in SUPPORTED_FORMATS]
    if unknown:
        raise PlotError(f"unknown figure format {unknown[0]!r}; valid: {', '.join(SUPPORTED_FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, bbox_inches="tight", dpi=DPI, metadata=_PINNED_METADATA[fmt])
        paths.append(path)
    plt.close(fig)
    return paths


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


def plot_interval_estimates(intervals: pd.DataFrame, out_dir: Path, colours: dict | None = None,
        formats: Sequence[str] = FORMATS) -> list[Path]:
    """One row of panels per scope (IQM, mean, median, optimality gap), CI bars per method."""
    paths: list[Path] = []
    colours = colours or method_colours(intervals["method"])
    for scope, group in scopes(intervals):
        methods = method_order(group["method"])
        statistics = [s for s in STATISTIC_LABELS if s in set(group["statistic"])]
        with paper_style():
            fig, axes = plt.subplots(1, len(statistics), sharey=True, squeeze=False,
                                     figsize=(PAGE_WIDTH, 1.2 + 0.25 * len(methods)))
            for ax, statistic in zip(axes[0], statistics):
                rows = group[group["statistic"] == statistic].set_index("method")
                for y, method in enumerate(methods):
                    if method not in rows.index:
                        continue
                    row = rows.loc[method]
                    ax.plot([row["low"], row["high"]], [y, y], color=colours[method], linewidth=4,
                            alpha=0.55, solid_capstyle="butt")
                    ax.plot([row["estimate"]], [y], marker="|", color="black", markersize=7)
                ax.set_title(STATISTIC_LABELS[statistic])
                _readable_score_axis(ax, rows["low"].min(), rows["high"].max())
                ax.set_yticks(range(len(methods)), methods)
                ax.set_ylim(-0.6, len(methods) - 0.4)
                ax.invert_yaxis()
                ax.grid(axis="y", visible=False)
            fig.supxlabel("Normalised score", fontsize=7)
            fig.suptitle(scope_title(scope), fontsize=7)
            fig.tight_layout()
            paths += save(fig, out_dir, f"interval_estimates_{scope_slug(*scope)}", formats)
    return paths


def _poi_panels(group: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(panel title, rows) for P(> none) and P(> best baseline); each row one method."""
    best = group["best_baseline"].astype(str).str.lower().isin(["true", "1"]) if "best_baseline" in group \
        else pd.Series(False, index=group.index)
    panels = [("Over none", group[group["baseline"] == BASELINE]),
              ("Over the best baseline", group[best])]
    return [(title, rows) for title, rows in panels if not rows.empty]


def plot_probability_of_improvement(poi: pd.DataFrame, out_dir: Path, colours: dict | None = None,
                                    formats: Sequence[str] = FORMATS) -> list[Path]:
    """P(method > none) and P(method > its best baseline) per scope, with CI bars.

    One panel per comparison; in the best-baseline panel each row names its baseline
    ("regrama > redo"). The dotted line at 0.5 marks no difference.
    """
    paths: list[Path] = []
    if poi.empty:
        return paths
    colours = colours or method_colours(list(poi["method"]) + list(poi["baseline"]))
    for scope, group in scopes(poi):
        panels = _poi_panels(group)
        if not panels:
            continue
        rows_shown = max(len(rows) for _, rows in panels)
        width = COLUMN_WIDTH if len(panels) == 1 else PAGE_WIDTH
        with paper_style():
            fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(width, 0.9 + 0.22 * rows_shown))
            for ax, (title, rows) in zip(axes[0], panels):
                order = [m for m in method_order(rows["method"])]
                rows = rows.set_index("method")
                labels = []
                for y, method in enumerate(order):
                    row = rows.loc[method]
                    ax.plot([row["low"], row["high"]], [y, y], color=colours[method], linewidth=4,
                            alpha=0.55, solid_capstyle="butt")
                    ax.plot([row["probability"]], [y], marker="|", color="black", markersize=7)
                    labels.append(method if title == "Over none" else f"{method} > {row['baseline']}")
                ax.axvline(0.5, color="grey", linestyle=":", linewidth=0.8)
                ax.set_xlim(-0.02, 1.02)
                ax.grid(axis="y", visible=False)
                ax.set_yticks(range(len(order)), labels)
                ax.set_ylim(-0.6, len(order) - 0.4)
                ax.invert_yaxis()
                ax.set_title(title)
                ax.set_xlabel("Probability of improvement")
            fig.suptitle(scope_title(scope), fontsize=7)
            fig.tight_layout()
            paths += save(fig, out_dir, f"probability_of_improvement_{scope_slug(*scope)}", formats)
    return paths


def _plot_banded_curves(frame: pd.DataFrame, out_dir: Path, colours: dict | None, formats: Sequence[str], *,
                        x: str, y: str, xlabel: str, ylabel: str, name: str,
                        ylim: tuple[float, float] | None = None) -> list[Path]:
    """One figure per scope: ``y`` vs ``x`` per method with its [low, high] band."""
    paths: list[Path] = []
    if frame.empty:
        return paths
    colours = colours or method_colours(frame["method"])
    for scope, group in scopes(frame):
        with paper_style():
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.3))
            for method in method_order(group["method"]):
                rows = group[group["method"] == method].sort_values(x)
                ax.plot(rows[x], rows[y], color=colours[method], label=method)
                ax.fill_between(rows[x], rows["low"], rows["high"], color=colours[method],
                                alpha=0.2, linewidth=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if ylim is not None:
                ax.set_ylim(*ylim)
            ax.set_title(scope_title(scope))
            ax.legend(loc="best")
            fig.tight_layout()
            paths += save(fig, out_dir, f"{name}_{scope_slug(*scope)}", formats)
    return paths


def plot_sample_efficiency(curves: pd.DataFrame, out_dir: Path, colours: dict | None = None,
        formats: Sequence[str] = FORMATS) -> list[Path]:
    """IQM normalised return vs environment steps with CI bands, one figure per scope."""
    return _plot_banded_curves(curves, out_dir, colours, formats, x="step", y="iqm",
                               xlabel="Environment steps", ylabel="IQM normalised return",
                               name="sample_efficiency")


def plot_performance_profiles(profiles: pd.DataFrame, out_dir: Path, colours: dict | None = None,
        formats: Sequence[str] = FORMATS) -> list[Path]:
    """Fraction of runs with normalised score > tau, with CI bands, one figure per scope."""
    return _plot_banded_curves(profiles, out_dir, colours, formats, x="tau", y="fraction",
                               xlabel=r"Normalised score $\tau$", ylabel=r"Fraction of runs with score $> \tau$",
                               name="performance_profile", ylim=(0, 1.02))


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


def plot_inactive_vs_dormant(metric_curves: pd.DataFrame, out_dir: Path, colours: dict | None = None,
        formats: Sequence[str] = FORMATS) -> list[Path]:
    """GraMa-inactive ratio (solid) vs tau-dormant ratio (dashed) over training.

    One panel per network, one colour per method; the metric thresholds shown are in the
    legend. Scopes without either metric produce no figure.
    """
    paths: list[Path] = []
    if metric_curves.empty:
        return paths
    colours = colours or method_colours(metric_curves["method"])
    for scope, group in scopes(metric_curves):
        grama = _pick_metric(group["metric"], GRAMA_PREFIX)
        dormant = _pick_metric(group["metric"], DORMANT_PREFIX)
        shown = [(name, style) for name, style in ((grama, "-"), (dormant, "--")) if name]
        if not shown:
            continue
        networks = sorted(group["network"].unique())
        width = COLUMN_WIDTH if len(networks) == 1 else PAGE_WIDTH
        with paper_style():
            fig, axes = plt.subplots(1, len(networks), sharey=True, squeeze=False, figsize=(width, 2.2))
            for ax, network in zip(axes[0], networks):
                for method in method_order(group["method"]):
                    for name, style in shown:
                        rows = group[(group["network"] == network) & (group["method"] == method)
                                     & (group["metric"] == name)].sort_values("step")
                        if not rows.empty:
                            ax.plot(rows["step"], rows["mean"], color=colours[method], linestyle=style)
                ax.set_title(f"{network}")
                ax.set_xlabel("Environment steps")
            axes[0][0].set_ylabel("Fraction of neurons")
            handles = [plt.Line2D([], [], color=colours[m], label=m) for m in method_order(group["method"])]
            handles += [plt.Line2D([], [], color="black", linestyle=style, label=name) for name, style in shown]
            fig.suptitle(scope_title(scope), fontsize=7)
            fig.tight_layout()
            # Below the panels, after tight_layout; bbox_inches="tight" keeps it in the file.
            fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6),
                       bbox_to_anchor=(0.5, 0.0))
            paths += save(fig, out_dir, f"inactive_vs_dormant_{scope_slug(*scope)}", formats)
    return paths


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


def plot_metric_curves(metric_curves: pd.DataFrame, out_dir: Path, colours: dict | None = None,
                       formats: Sequence[str] = FORMATS, metrics: Iterable[str] | None = None) -> list[Path]:
    """Any monitored metric over training: one figure per (scope, metric), one panel per network.

    Lines are the mean over the scope's runs of a method (seeds and tasks) at the
    ``all``-layer aggregate; the band is one standard deviation over those runs.
    """
    paths: list[Path] = []
    if metric_curves.empty:
        return paths
    colours = colours or method_colours(metric_curves["method"])
    for metric in metric_names(metric_curves, metrics):
        for scope, group in scopes(metric_curves[metric_curves["metric"] == metric]):
            networks = sorted(group["network"].unique())
            width = COLUMN_WIDTH if len(networks) == 1 else PAGE_WIDTH
            methods = method_order(group["method"])
            with paper_style():
                fig, axes = plt.subplots(1, len(networks), squeeze=False, figsize=(width, 2.0))
                for ax, network in zip(axes[0], networks):
                    for method in methods:
                        rows = group[(group["network"] == network) & (group["method"] == method)].sort_values("step")
                        if rows.empty:
                            continue
                        ax.plot(rows["step"], rows["mean"], color=colours[method])
                        ax.fill_between(rows["step"], rows["mean"] - rows["std"], rows["mean"] + rows["std"],
                                        color=colours[method], alpha=0.2, linewidth=0)
                    ax.set_title(network)
                    ax.set_xlabel("Environment steps")
                    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
                axes[0][0].set_ylabel(metric)
                handles = [plt.Line2D([], [], color=colours[m], label=m) for m in methods]
                handles.append(Patch(color="grey", alpha=0.3, label="\u00b11 s.d. over runs"))
                fig.suptitle(f"{scope_title(scope)}: {metric}", fontsize=7)
                fig.tight_layout()
                fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 5), bbox_to_anchor=(0.5, 0.0))
                paths += save(fig, out_dir, f"metric_curves_{scope_slug(*scope)}_{slug(metric)}", formats)
    return paths


#: figure name (``plasticity-bench plot --figure``) -> (Aggregate table it draws, function).
FIGURES: dict[str, tuple[str, Callable[..., list[Path]]]] = {
    "interval_estimates": ("interval_estimates", plot_interval_estimates),
    "performance_profile": ("performance_profiles", plot_performance_profiles),
    "probability_of_improvement": ("probability_of_improvement", plot_probability_of_improvement),
    "sample_efficiency": ("sample_efficiency", plot_sample_efficiency),
    "inactive_vs_dormant": ("metric_curves", plot_inactive_vs_dormant),
    "metric_curves": ("metric_curves", plot_metric_curves),
}


def _without_redundant_overall(table: pd.DataFrame) -> pd.DataFrame:
    """Drop the overall scope's rows when there is one other scope: it would repeat its figure."""
    if table.empty:
        return table
    overall = (table[SCOPE] == OVERALL).all(axis=1)
    others = table.loc[~overall, SCOPE].drop_duplicates()
    return table[~overall] if overall.any() and len(others) == 1 else table


def plot_all(aggregate, out_dir: Path, figures: Iterable[str] | None = None, formats: Sequence[str] = FORMATS,
             metrics: Iterable[str] | None = None) -> list[Path]:
    """The figures named in ``figures`` (default all of ``FIGURES``) of an ``Aggregate``.

    One colour per method across all figures; ``metrics`` selects the metrics of
    ``metric_curves`` (default every stored metric).
    """
    every_method = (list(aggregate.interval_estimates["method"]) + list(aggregate.sample_efficiency["method"])
                    + list(aggregate.metric_curves["method"]))
    colours = method_colours(every_method)
    paths = []
    for name in (list(FIGURES) if figures is None else list(figures)):
        if name not in FIGURES:
            raise PlotError(f"unknown figure {name!r}; valid: {', '.join(FIGURES)}")
        table, function = FIGURES[name]
        options = {"metrics": metrics} if name == "metric_curves" else {}
        paths += function(_without_redundant_overall(getattr(aggregate, table)), out_dir, colours,
                          formats=formats, **options)
    return paths
