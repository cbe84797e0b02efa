"""Figures of continual scopes (analysis/continual.py): the normalised return over the whole
sequence with the segment boundaries drawn, and the plasticity ratio per segment.

Both read an ``Aggregate``: its ``sample_efficiency`` (for a continual scope, the IQM over
runs of each run's whole-sequence curve, every evaluation normalised with its segment's
task) and its summary's ``continual`` entry (the per-segment ratios and segment lengths).
Each writes one figure per continual scope and returns the ``style.Drawn`` records;
``plots.plot_all`` draws them (``plots.FIGURES``: ``sequence_returns``, ``plasticity_ratio``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from plasticity_bench.analysis.continual import RATIO_COLUMNS
from plasticity_bench.analysis.style import (COLUMN_WIDTH, FORMATS, Drawn, Look, legend_below, paper_style, save,
                                             scope_slug, steps_axis)
from plasticity_bench.analysis.vocabulary import SCOPE, method_order, scopes

import matplotlib.pyplot as plt  # noqa: E402,F401,I001  (after style, which selects the Agg backend)


def segment_lengths(aggregate) -> dict[tuple, int]:
    """Per continual scope: its sequences' ``segment_steps`` (one value per scope; the
    boundaries of a scope whose sequences differ in length are those of the shortest)."""
    lengths: dict[tuple, int] = {}
    for row in (aggregate.summary.get("continual") or {}).get("segment_steps", []):
        scope = tuple(row[column] for column in SCOPE)
        lengths[scope] = min(lengths.get(scope, row["segment_steps"]), row["segment_steps"])
    return lengths


def plot_sequence_returns(aggregate, out_dir: Path, look: Look, formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """IQM normalised return over the whole sequence per method, CI band, a dotted line at
    each segment's nominal end (the switch follows at the next episode boundary)."""
    lengths = segment_lengths(aggregate)
    curves = aggregate.sample_efficiency
    drawn: list[Drawn] = []
    for scope, group in scopes(curves):
        if scope not in lengths:
            continue
        methods = method_order(group["method"])
        with paper_style(look.font_size):
            fig, axes = look.figure(COLUMN_WIDTH, 2.2 + 0.17 * ((len(methods) + 1) // 2))
            ax = axes[0][0]
            last = int(group["step"].max())
            for boundary in range(lengths[scope], last, lengths[scope]):
                ax.axvline(boundary, color="0.6", linewidth=0.6, linestyle=":", zorder=0)
            for method in methods:
                rows = group[group["method"] == method].sort_values("step")
                look.band(ax, rows["step"], rows["low"], rows["high"], method)
            for method in methods:
                rows = group[group["method"] == method].sort_values("step")
                ax.plot(rows["step"], rows["iqm"], gid=f"method:{method}", markevery=max(1, len(rows) // 12),
                        **look.styles[method].line())
            steps_axis(ax, scope[1])
            ax.set_ylabel("IQM normalised return")
            look.title(fig, f"{look.names.scope(scope)}: return over the sequence")
            legend_below(fig, [look.handle(m) for m in methods])
            paths = save(fig, out_dir, f"sequence_returns_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("sequence_returns", scope, (
            "Normalised evaluation return over the whole task sequence (each evaluation normalised with its "
            f"segment's task): IQM over runs with its {look.ci} band; dotted lines mark each segment's nominal "
            "end, after which the task changes at the next episode boundary. Read the climb after each line: a "
            "method that keeps its plasticity recovers within each segment as in the first; one that loses it "
            "recovers less with every switch."), paths, fig.get_figwidth()))
    return drawn


def plot_plasticity_ratio(aggregate, out_dir: Path, look: Look, formats: Sequence[str] = FORMATS) -> list[Drawn]:
    """Mean plasticity ratio per segment and method with its CI (error bars), a line at 1."""
    ratios = pd.DataFrame((aggregate.summary.get("continual") or {}).get("ratios", []), columns=RATIO_COLUMNS)
    drawn: list[Drawn] = []
    for scope, group in scopes(ratios):
        methods = method_order(group["method"])
        tasks = sorted(group["task"].unique())
        with paper_style(look.font_size):
            fig, axes = look.figure(COLUMN_WIDTH, 0.3 + 1.9 * len(tasks) + 0.17 * ((len(methods) + 1) // 2),
                                    len(tasks), 1)
            offsets = np.linspace(-0.25, 0.25, len(methods)) if len(methods) > 1 else np.zeros(1)
            for ax, task in zip(axes[:, 0], tasks):
                ax.axhline(1.0, color="0.5", linewidth=0.6, linestyle="--", zorder=0)
                for offset, method in zip(offsets, methods):
                    rows = group[(group["task"] == task) & (group["method"] == method)].sort_values("segment")
                    style = look.styles[method]
                    ax.errorbar(rows["segment"] + offset, rows["mean"],
                                yerr=[rows["mean"] - rows["low"], rows["high"] - rows["mean"]], fmt=style.marker or "o",
                                color=style.colour, markersize=3, linewidth=0.8, capsize=1.5, gid=f"method:{method}")
                ax.set_xticks(sorted(group.loc[group["task"] == task, "segment"].unique()))
                ax.set_xlabel("Segment")
                ax.set_ylabel("Plasticity ratio")
                ax.set_title(look.names.task(task))
            look.title(fig, f"{look.names.scope(scope)}: plasticity ratio")
            legend_below(fig, [look.handle(m) for m in methods])
            paths = save(fig, out_dir, f"plasticity_ratio_{scope_slug(*scope)}", formats)
        drawn.append(Drawn("plasticity_ratio", scope, (
            "Plasticity ratio per segment: the end-of-segment normalised score over that of a fresh agent (method "
            f"none, new network) trained as long on the segment's task alone, mean over seeds with its {look.ci}; "
            "1 (dashed) = learns the segment as well as a new network, below 1 = lost plasticity (or interference "
            "from earlier segments). Segment 0 is every method's first task; read the later segments."), paths,
            fig.get_figwidth()))
    return drawn
