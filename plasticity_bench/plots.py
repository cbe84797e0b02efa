"""Publication figures from an aggregate (one style, colour-blind palette, PDF + PNG).

Every figure function takes tables written by ``plasticity_bench.stats`` and an output
directory, writes ``<name>.pdf`` and ``<name>.png`` per scope (suite/algo/arch) and
returns the written paths. Widths follow a two-column paper: ``COLUMN_WIDTH`` inches for
a one-column figure, ``PAGE_WIDTH`` for a figure spanning both columns.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (must precede pyplot)

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

COLUMN_WIDTH = 3.3  # inches, one column of a two-column paper
PAGE_WIDTH = 6.9  # inches, both columns
DPI = 300
BASELINE = "none"
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


@contextmanager
def paper_style() -> Iterator[None]:
    """The one style of every figure; scoped so importing this module changes nothing."""
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        yield


def method_order(methods: Iterable[str]) -> list[str]:
    """Baseline first, then alphabetical: the same order (and colour) in every figure."""
    methods = sorted(set(methods))
    return ([BASELINE] if BASELINE in methods else []) + [m for m in methods if m != BASELINE]


def method_colours(methods: Iterable[str]) -> dict[str, tuple]:
    """Colour-blind palette (seaborn 'colorblind'), assigned in ``method_order``."""
    ordered = method_order(methods)
    palette = sns.color_palette("colorblind", n_colors=max(len(ordered), 1))
    return {method: palette[i % len(palette)] for i, method in enumerate(ordered)}


def scope_slug(suite: str, algo: str, arch: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{suite}_{algo}_{arch}")


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.pdf`` and ``name.png``; metadata pinned so reruns give the same bytes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"CreationDate": None, "ModDate": None})
    fig.savefig(paths[1], bbox_inches="tight", dpi=DPI)
    plt.close(fig)
    return paths


def _scopes(frame: pd.DataFrame):
    for (suite, algo, arch), group in frame.groupby(["suite", "algo", "arch"], sort=True):
        yield (suite, algo, arch), group


def _title(scope: tuple) -> str:
    return " / ".join(str(part) for part in scope)


def plot_interval_estimates(intervals: pd.DataFrame, out_dir: Path, colours: dict | None = None) -> list[Path]:
    """One row of panels per scope (IQM, mean, median, optimality gap), CI bars per method."""
    paths: list[Path] = []
    colours = colours or method_colours(intervals["method"])
    for scope, group in _scopes(intervals):
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
                ax.set_yticks(range(len(methods)), methods)
                ax.set_ylim(-0.6, len(methods) - 0.4)
                ax.invert_yaxis()
                ax.grid(axis="y", visible=False)
            fig.supxlabel("Normalised score", fontsize=7)
            fig.suptitle(_title(scope), fontsize=7)
            fig.tight_layout()
            paths += save(fig, out_dir, f"interval_estimates_{scope_slug(*scope)}")
    return paths


def plot_probability_of_improvement(poi: pd.DataFrame, out_dir: Path, colours: dict | None = None) -> list[Path]:
    """P(method > baseline) per scope with CI bars; 0.5 marks no difference."""
    paths: list[Path] = []
    if poi.empty:
        return paths
    colours = colours or method_colours(list(poi["method"]) + [BASELINE])
    for scope, group in _scopes(poi):
        methods = [m for m in method_order(group["method"])]
        rows = group.set_index("method")
        with paper_style():
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 1.0 + 0.25 * len(methods)))
            for y, method in enumerate(methods):
                row = rows.loc[method]
                ax.plot([row["low"], row["high"]], [y, y], color=colours[method], linewidth=4,
                        alpha=0.55, solid_capstyle="butt")
                ax.plot([row["probability"]], [y], marker="|", color="black", markersize=7)
            ax.axvline(0.5, color="grey", linestyle=":", linewidth=0.8)
            ax.set_xlim(-0.02, 1.02)
            ax.grid(axis="y", visible=False)
            ax.set_yticks(range(len(methods)), methods)
            ax.set_ylim(-0.6, len(methods) - 0.4)
            ax.invert_yaxis()
            ax.set_xlabel(f"P(method > {group['baseline'].iloc[0]})")
            ax.set_title(_title(scope))
            fig.tight_layout()
            paths += save(fig, out_dir, f"probability_of_improvement_{scope_slug(*scope)}")
    return paths


def plot_sample_efficiency(curves: pd.DataFrame, out_dir: Path, colours: dict | None = None) -> list[Path]:
    """IQM normalised return vs environment steps with CI bands, one figure per scope."""
    paths: list[Path] = []
    if curves.empty:
        return paths
    colours = colours or method_colours(curves["method"])
    for scope, group in _scopes(curves):
        with paper_style():
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.3))
            for method in method_order(group["method"]):
                rows = group[group["method"] == method].sort_values("step")
                ax.plot(rows["step"], rows["iqm"], color=colours[method], label=method)
                ax.fill_between(rows["step"], rows["low"], rows["high"], color=colours[method],
                                alpha=0.2, linewidth=0)
            ax.set_xlabel("Environment steps")
            ax.set_ylabel("IQM normalised return")
            ax.set_title(_title(scope))
            ax.legend(loc="best")
            fig.tight_layout()
            paths += save(fig, out_dir, f"sample_efficiency_{scope_slug(*scope)}")
    return paths


def plot_performance_profiles(profiles: pd.DataFrame, out_dir: Path, colours: dict | None = None) -> list[Path]:
    """Fraction of runs with normalised score > tau, with CI bands, one figure per scope."""
    paths: list[Path] = []
    if profiles.empty:
        return paths
    colours = colours or method_colours(profiles["method"])
    for scope, group in _scopes(profiles):
        with paper_style():
            fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.3))
            for method in method_order(group["method"]):
                rows = group[group["method"] == method].sort_values("tau")
                ax.plot(rows["tau"], rows["fraction"], color=colours[method], label=method)
                ax.fill_between(rows["tau"], rows["low"], rows["high"], color=colours[method],
                                alpha=0.2, linewidth=0)
            ax.set_xlabel(r"Normalised score $\tau$")
            ax.set_ylabel(r"Fraction of runs with score $> \tau$")
            ax.set_ylim(0, 1.02)
            ax.set_title(_title(scope))
            ax.legend(loc="best")
            fig.tight_layout()
            paths += save(fig, out_dir, f"performance_profile_{scope_slug(*scope)}")
    return paths


def _pick_metric(metrics: Iterable[str], prefix: str) -> str | None:
    """The metric named ``prefix`` or ``prefix@<tau>``; with several taus, the smallest."""
    candidates = [m for m in set(metrics) if m == prefix or m.startswith(prefix + "@")]

    def tau(name: str) -> float:
        try:
            return float(name.split("@", 1)[1])
        except (IndexError, ValueError):
            return float("inf")

    return min(candidates, key=lambda name: (tau(name), name)) if candidates else None


def plot_inactive_vs_dormant(metric_curves: pd.DataFrame, out_dir: Path, colours: dict | None = None) -> list[Path]:
    """GraMa-inactive ratio (solid) vs tau-dormant ratio (dashed) over training.

    One panel per network, one colour per method; the metric thresholds shown are in the
    legend. Scopes without either metric produce no figure.
    """
    paths: list[Path] = []
    if metric_curves.empty:
        return paths
    colours = colours or method_colours(metric_curves["method"])
    for scope, group in _scopes(metric_curves):
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
            fig.suptitle(_title(scope), fontsize=7)
            fig.tight_layout()
            # Below the panels, after tight_layout; bbox_inches="tight" keeps it in the file.
            fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 4),
                       bbox_to_anchor=(0.5, 0.0))
            paths += save(fig, out_dir, f"inactive_vs_dormant_{scope_slug(*scope)}")
    return paths


def plot_all(aggregate, out_dir: Path) -> list[Path]:
    """Every figure of a ``stats.Aggregate``; one colour per method across all figures."""
    every_method = (list(aggregate.interval_estimates["method"]) + list(aggregate.sample_efficiency["method"])
                    + list(aggregate.metric_curves["method"]))
    colours = method_colours(every_method)
    paths = []
    paths += plot_interval_estimates(aggregate.interval_estimates, out_dir, colours)
    paths += plot_probability_of_improvement(aggregate.probability_of_improvement, out_dir, colours)
    paths += plot_sample_efficiency(aggregate.sample_efficiency, out_dir, colours)
    paths += plot_performance_profiles(aggregate.performance_profiles, out_dir, colours)
    paths += plot_inactive_vs_dormant(aggregate.metric_curves, out_dir, colours)
    return paths
