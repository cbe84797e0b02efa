"""``plasticity-bench compare <report A> <report B>``: per scope and method, the change in IQM.

Reads each report's ``leaderboard.csv`` (and ``manifest.json`` for its version and aggregate
settings). Every (scope, method) of either report gets a row: both IQMs with their CIs, the
change B - A, and whether the two CIs overlap (if they do, the reports' data do not separate
the two numbers); ``present`` says "both", "A only" or "B only". Scopes and methods found in
only one report are also listed as such,
and differing aggregate settings (final window, bootstrap) are named, since they change
the numbers by themselves. Identifiers stay raw, as in the CSVs compared.

A change is computed only where the two setups compare. Per scope (suite, algorithm,
architecture) the tasks, seeds, budget (steps), hyperparameter overrides, the tasks'
normalisation and the aggregation that makes a run's score (final window) must match; a
scope that differs gets ``comparable`` False, ``differs`` naming what, and no change. The
overall scope compares only when every scope in it does (and both reports hold the same
scopes). Tasks and seeds come from the report's ``scores.csv`` (the runs aggregated) or,
in reports without it, its config; normalisation from ``scores.csv`` (return → score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plasticity_bench.analysis.vocabulary import OVERALL, SCOPE, AnalysisError, scope_title

BOARD = "leaderboard.csv"
MANIFEST = "manifest.json"
SCORES = "scores.csv"
# Aggregate settings that change a run's score (the others change CIs or labels only).
SCORE_SETTINGS = ("final_window", "last_n")
SIDES = ("a", "b")
COMPARE_COLUMNS = SCOPE + ["method", "iqm_a", "iqm_a_low", "iqm_a_high", "iqm_b", "iqm_b_low", "iqm_b_high",
                           "change", "cis_overlap", "present", "comparable", "differs"]


@dataclass
class Comparison:
    """What ``compare`` found: ``table`` (``COMPARE_COLUMNS``), what only one side has, and notes."""

    versions: tuple[str, str]
    table: pd.DataFrame
    only: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # side -> {"scopes": [...], "methods": [...]}
    notes: list[str] = field(default_factory=list)


def _read(report: Path) -> tuple[pd.DataFrame, dict, pd.DataFrame | None]:
    """A report's leaderboard, manifest and scores (None in reports without scores.csv)."""
    report = Path(report)
    if not (report / BOARD).is_file():
        raise AnalysisError(f"{report} is not a report folder (no {BOARD}); give reports/<version>")
    try:
        board = pd.read_csv(report / BOARD, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise AnalysisError(f"{report / BOARD} is unreadable: {error}") from None
    missing = [column for column in SCOPE + ["method", "iqm", "iqm_low", "iqm_high"] if column not in board.columns]
    if missing:
        raise AnalysisError(f"{report / BOARD} is not a leaderboard: no column {', '.join(missing)}")
    manifest = {}
    if (report / MANIFEST).is_file():
        try:
            manifest = json.loads((report / MANIFEST).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise AnalysisError(f"{report / MANIFEST} is not valid JSON: {error}") from None
        if not isinstance(manifest, dict):
            raise AnalysisError(f"{report / MANIFEST} holds no JSON object")
    scores = None
    if (report / SCORES).is_file():
        try:
            scores = pd.read_csv(report / SCORES)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise AnalysisError(f"{report / SCORES} is unreadable: {error}") from None
    return board, manifest, scores


def _in_suite(value, suite: str):
    """A config entry that is either one value for every suite or a dict per suite."""
    return value.get(suite) if isinstance(value, dict) else value


def _normalisation(scores: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Task → (slope, intercept) of score against final return (1/(reference - random),
    -random/(reference - random)), where two runs of the task returned differently."""
    fitted = {}
    for task, rows in scores.groupby("task"):
        rows = rows.drop_duplicates("final_return")
        if len(rows) >= 2 and np.isfinite(rows[["final_return", "score"]].to_numpy(float)).all():
            (r0, s0), (r1, s1) = rows[["final_return", "score"]].to_numpy(float)[:2]
            if r1 != r0:
                slope = (s1 - s0) / (r1 - r0)
                fitted[task] = (slope, s0 - slope * r0)
    return fitted


def _setup(scope: tuple, manifest: dict, scores: pd.DataFrame | None) -> dict:
    """What a scope's numbers are made from, as comparable values (see the module docstring)."""
    suite, algo, _ = scope
    config = manifest.get("config") or {}
    mine = None if scores is None else scores[(scores["suite"] == suite) & (scores["algo"] == algo)
                                              & (scores["arch"] == scope[2])]
    tasks, seeds = _in_suite(config.get("tasks"), suite), config.get("seeds")
    setup = {  # sets, as sorted lists: the order a config lists them in changes nothing
        "tasks": sorted(mine["task"].unique()) if mine is not None else sorted(tasks) if isinstance(tasks, list) else tasks,
        "seeds": sorted(int(x) for x in mine["seed"].unique()) if mine is not None
        else sorted(seeds) if isinstance(seeds, list) else seeds,
        "steps": _in_suite(config.get("steps"), suite),
        "hyperparameters": {"overrides": _in_suite(config.get("overrides"), algo),
                            "suite_overrides": _in_suite(config.get("suite_overrides"), suite),
                            "method_options": config.get("method_options")},
        "normalisation": None if mine is None else _normalisation(mine),
    }
    return setup


def _differences(setup_a: dict, setup_b: dict, aggregation: list[str]) -> list[str]:
    found = []
    for key in ("tasks", "seeds", "steps"):
        if setup_a[key] != setup_b[key]:
            found.append(f"{key} {setup_a[key]} in A, {setup_b[key]} in B")
    hp_a, hp_b = setup_a["hyperparameters"], setup_b["hyperparameters"]
    found += [f"hyperparameters: {key} {hp_a[key]} in A, {hp_b[key]} in B" for key in hp_a if hp_a[key] != hp_b[key]]
    norm_a, norm_b = setup_a["normalisation"], setup_b["normalisation"]
    if norm_a is not None and norm_b is not None:
        other = [task for task in sorted(set(norm_a) & set(norm_b))
                 if not np.allclose(norm_a[task], norm_b[task], rtol=1e-6, atol=1e-9)]
        if other:
            found.append(f"normalisation of {', '.join(other)}")
    return found + aggregation


def _scope_names(board: pd.DataFrame) -> set[str]:
    return {"/".join(scope) for scope in board[SCOPE].itertuples(index=False, name=None)}


def compare(report_a: Path, report_b: Path) -> Comparison:
    """Compare two report folders (see the module docstring); raises AnalysisError for a folder
    that is not a report."""
    (board_a, manifest_a, scores_a), (board_b, manifest_b, scores_b) = _read(report_a), _read(report_b)
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
    settings_a, settings_b = manifest_a.get("aggregate") or {}, manifest_b.get("aggregate") or {}
    aggregation = [f"aggregation: {key} {settings_a.get(key)} in A, {settings_b.get(key)} in B"
                   for key in SCORE_SETTINGS if settings_a.get(key) != settings_b.get(key)]
    differs: dict[tuple, str] = {}
    scopes = {tuple(scope) for scope in merged[SCOPE].itertuples(index=False, name=None)}
    parts = sorted(scope for scope in scopes if not all(part == OVERALL for part in scope))
    one_sided = sorted(set(_scope_names(board_a)) ^ set(_scope_names(board_b)))
    for scope in parts:
        if "/".join(scope) in one_sided:
            differs[scope] = "in one report only"
            continue
        found = _differences(_setup(scope, manifest_a, scores_a), _setup(scope, manifest_b, scores_b), aggregation)
        differs[scope] = "; ".join(found)
    for scope in scopes - set(parts):  # the overall scope: every scope in it must compare
        bad = ["/".join(scope) for scope in parts if differs[scope] and "/".join(scope) not in one_sided]
        found = ([f"scopes not comparable: {', '.join(bad)}"] if bad else []) + (
            [f"scopes in one report only: {', '.join(one_sided)}"] if one_sided else [])
        differs[scope] = "; ".join(found or aggregation)
    merged["differs"] = [differs[tuple(row)] for row in merged[SCOPE].itertuples(index=False, name=None)]
    merged["comparable"] = merged["differs"] == ""
    merged["change"] = (merged["iqm_b"] - merged["iqm_a"]).where(merged["comparable"])
    merged["cis_overlap"] = np.where(merged[["iqm_a", "iqm_b"]].isna().any(axis=1) | ~merged["comparable"], pd.NA,
                                     (merged["iqm_a_low"] <= merged["iqm_b_high"])
                                     & (merged["iqm_b_low"] <= merged["iqm_a_high"]))
    only = {}
    for side, mine, other in (("a", board_a, board_b), ("b", board_b, board_a)):
        only[side] = {"scopes": sorted(_scope_names(mine) - _scope_names(other)),
                      "methods": sorted(set(mine["method"]) - set(other["method"]))}
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
        lines += [f"## {scope_title(scope)}", ""]
        if not rows["comparable"].iloc[0]:
            lines += [f"Not comparable (no change computed): {rows['differs'].iloc[0]}.", ""]
        lines += ["| method | IQM A | IQM B | change | CIs overlap | in |", "|---|---:|---:|---:|---|---|"]
        for row in rows.itertuples():
            change = ("not comparable" if not row.comparable else "-") if pd.isna(row.change) else f"{row.change:+.3f}"
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
