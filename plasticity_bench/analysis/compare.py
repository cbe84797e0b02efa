"""``plasticity-bench compare <report A> <report B>``: per scope and method, the change in IQM.

Reads each report's ``leaderboard.csv`` (and ``manifest.json`` for its version and aggregate
settings). Every (scope, method) of either report gets a row: both IQMs with their CIs, the
change B - A, and whether the two CIs overlap (if they do, the reports' data do not separate
the two numbers); ``present`` says "both", "A only" or "B only". Scopes and methods found in
only one report are also listed as such,
and differing aggregate settings (final window, bootstrap) are named, since they change
the numbers by themselves. Identifiers stay raw, as in the CSVs compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plasticity_bench.analysis.vocabulary import SCOPE, AnalysisError, scope_title

BOARD = "leaderboard.csv"
MANIFEST = "manifest.json"
SIDES = ("a", "b")
COMPARE_COLUMNS = SCOPE + ["method", "iqm_a", "iqm_a_low", "iqm_a_high", "iqm_b", "iqm_b_low", "iqm_b_high",
                           "change", "cis_overlap", "present"]


@dataclass
class Comparison:
    """What ``compare`` found: ``table`` (``COMPARE_COLUMNS``), what only one side has, and notes."""

    versions: tuple[str, str]
    table: pd.DataFrame
    only: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # side -> {"scopes": [...], "methods": [...]}
    notes: list[str] = field(default_factory=list)


def _read(report: Path) -> tuple[pd.DataFrame, dict]:
    report = Path(report)
    if not (report / BOARD).is_file():
        raise AnalysisError(f"{report} is not a report folder (no {BOARD}); give reports/<version>")
    board = pd.read_csv(report / BOARD, keep_default_na=False, na_values=[""])
    manifest = json.loads((report / MANIFEST).read_text()) if (report / MANIFEST).is_file() else {}
    return board, manifest


def _scope_names(board: pd.DataFrame) -> set[str]:
    return {"/".join(scope) for scope in board[SCOPE].itertuples(index=False, name=None)}


def compare(report_a: Path, report_b: Path) -> Comparison:
    """Compare two report folders (see the module docstring); raises AnalysisError for a folder
    that is not a report."""
    (board_a, manifest_a), (board_b, manifest_b) = _read(report_a), _read(report_b)
    keys = SCOPE + ["method"]
    columns = ["iqm", "iqm_low", "iqm_high"]
    # Rows in A's order (its leaderboard's), then those only B has, in B's order.
    order = pd.concat([board_a[keys], board_b[keys]]).drop_duplicates().reset_index(drop=True)
    merged = order.merge(board_a[keys + columns], on=keys, how="left").merge(
        board_b[keys + columns], on=keys, how="left", suffixes=("_a", "_b"))
    in_a = pd.MultiIndex.from_frame(order).isin(pd.MultiIndex.from_frame(board_a[keys]))
    in_b = pd.MultiIndex.from_frame(order).isin(pd.MultiIndex.from_frame(board_b[keys]))
    merged["present"] = np.select([in_a & in_b, in_a], ["both", "A only"], "B only")
    merged = merged.rename(columns={f"{c}_{side}": f"iqm_{side}" + c[3:] for c in columns for side in SIDES})
    merged["change"] = merged["iqm_b"] - merged["iqm_a"]
    merged["cis_overlap"] = np.where(merged[["iqm_a", "iqm_b"]].isna().any(axis=1), pd.NA,
                                     (merged["iqm_a_low"] <= merged["iqm_b_high"])
                                     & (merged["iqm_b_low"] <= merged["iqm_a_high"]))
    only = {}
    for side, mine, other in (("a", board_a, board_b), ("b", board_b, board_a)):
        only[side] = {"scopes": sorted(_scope_names(mine) - _scope_names(other)),
                      "methods": sorted(set(mine["method"]) - set(other["method"]))}
    settings_a, settings_b = manifest_a.get("aggregate") or {}, manifest_b.get("aggregate") or {}
    notes = [f"aggregate setting {key} differs: {settings_a.get(key)!r} in A, {settings_b.get(key)!r} in B"
             for key in sorted(set(settings_a) | set(settings_b)) if settings_a.get(key) != settings_b.get(key)]
    versions = (str(manifest_a.get("version", Path(report_a).name)), str(manifest_b.get("version", Path(report_b).name)))
    return Comparison(versions, merged[COMPARE_COLUMNS], only, notes)


def _interval(value, low, high) -> str:
    return "-" if pd.isna(value) else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def comparison_markdown(comparison: Comparison) -> str:
    a, b = comparison.versions
    lines = [f"# IQM change from {a} (A) to {b} (B)", "",
             "Change = IQM in B - IQM in A (normalised scores); each IQM with its CI from its own report. "
             "Overlapping CIs: the reports' data do not separate the two IQMs.", ""]
    lines += [f"Note: {note}." for note in comparison.notes] + ([""] if comparison.notes else [])
    for scope, rows in comparison.table.groupby(SCOPE, sort=False):
        lines += [f"## {scope_title(scope)}", "", "| method | IQM A | IQM B | change | CIs overlap | in |",
                  "|---|---:|---:|---:|---|---|"]
        for row in rows.itertuples():
            change = "-" if pd.isna(row.change) else f"{row.change:+.3f}"
            overlap = "-" if pd.isna(row.cis_overlap) else ("yes" if row.cis_overlap else "no")
            lines.append(f"| {row.method} | {_interval(row.iqm_a, row.iqm_a_low, row.iqm_a_high)} | "
                         f"{_interval(row.iqm_b, row.iqm_b_low, row.iqm_b_high)} | {change} | {overlap} | "
                         f"{row.present} |")
        lines.append("")
    for side, name in zip(SIDES, comparison.versions):
        for kind in ("scopes", "methods"):
            if comparison.only[side][kind]:
                lines.append(f"Only in {side.upper()} ({name}): {kind} {', '.join(comparison.only[side][kind])}.")
    return "\n".join(lines).rstrip() + "\n"


def write_comparison(comparison: Comparison, out_dir: Path) -> list[Path]:
    """``compare.csv`` (``COMPARE_COLUMNS``) and ``compare.md`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "compare.csv", out_dir / "compare.md"]
    comparison.table.to_csv(paths[0], index=False)
    paths[1].write_text(comparison_markdown(comparison))
    return paths
