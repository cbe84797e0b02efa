"""The leaderboard: one row per (scope, method), and its markdown rendering (the LaTeX table: ``analysis.latex``).

It says only what its data supports:

- **Rank groups** instead of a strict ranking. In each scope the method with the highest
  point IQM opens group 1, and every method whose IQM CI overlaps that method's CI joins
  it; among the methods left, the one with the highest IQM opens group 2 with those whose
  CIs overlap its CI, and so on. Methods of one group are not separated by the data. A
  method is set in bold (LaTeX) only when it is alone in group 1.
- **Unlearned scopes** (no method's IQM CI upper bound above ``LEARNED_ABOVE``) are
  flagged; their runs are not in the overall scope (``analysis.aggregate``).
- The number of **seeds** per task, with a warning below ``MIN_SEEDS``, and the standard
  deviation of the row's run scores (``run_score_std``), next to the intervals.

Rows: the overall scope (``all/all/all``, every cell of the learned scopes pooled; see
``analysis.scores``) first; besides P(> none) each row carries P(> best baseline) and the
name of that baseline (``analysis.baselines``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from plasticity_bench.analysis.baselines import variant_baseline
from plasticity_bench.analysis.continual import REFERENCE_REASON
from plasticity_bench.analysis.vocabulary import (AUC_STATISTIC, LEARNED_ABOVE, MIN_SEEDS, OVERALL, SCOPE,
                                                  STATISTIC_NAMES, Aggregate, in_scopes, scope_title)

LEADERBOARD_COLUMNS = [
    "suite", "algo", "arch", "method", "rank_group",
    "iqm", "iqm_low", "iqm_high",
    "mean", "mean_low", "mean_high",
    "median", "median_low", "median_high",
    "optimality_gap", "optimality_gap_low", "optimality_gap_high",
    "auc_iqm", "auc_iqm_low", "auc_iqm_high",
    "run_score_std",
    "prob_improvement_over_none", "prob_improvement_over_none_low", "prob_improvement_over_none_high",
    "best_baseline",
    "prob_improvement_over_best_baseline", "prob_improvement_over_best_baseline_low",
    "prob_improvement_over_best_baseline_high",
    "runs", "tasks", "seeds", "missing_runs", "scope_unlearned",
    # Continual scopes only (analysis/continual.py): IQM of the plasticity ratios of segments >= 1.
    "plasticity_ratio", "plasticity_ratio_low", "plasticity_ratio_high",
]


def leaderboard(aggregate: Aggregate) -> pd.DataFrame:
    """One row per (scope, method), ``LEADERBOARD_COLUMNS``, by rank group then IQM within a scope.

    The overall scope (``suite = algo = arch = "all"``, see ``analysis.scores``) comes first, then the
    scopes in order. ``best_baseline`` names the method's best baseline in its scope (see
    ``analysis.baselines``) and ``prob_improvement_over_best_baseline`` is P(method > it).
    ``runs`` counts runs x tasks of the row's score matrix and ``seeds`` the runs per task;
    ``run_score_std`` is the standard deviation (ddof 1) of the normalised final scores of
    those runs. ``missing_runs`` counts the expected runs a row's statistics lack; a method
    none of whose runs in a scope could be scored keeps its row there, with 0 runs, no
    statistics and no rank group.
    """
    intervals = aggregate.interval_estimates
    if intervals.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    keys = SCOPE + ["method"]
    unlearned = {tuple(scope[column] for column in SCOPE) for scope in aggregate.summary.get("unlearned_scopes", [])}
    table = _scored_rows(aggregate, intervals)
    missing = aggregate.missing
    # A missing fresh-agent reference leaves plasticity ratios undefined, not a method's row short.
    missing = missing[~missing["reason"].astype(str).str.startswith(REFERENCE_REASON)] if len(missing) else missing
    in_learned = ~in_scopes(missing, unlearned)
    counts = {key: len(rows) for key, rows in missing.groupby(keys)} if len(missing) else {}
    if (table[SCOPE] == OVERALL).all(axis=1).any():
        counts.update({(OVERALL,) * 3 + (method,): len(rows)
                       for method, rows in missing[in_learned].groupby("method")})
    present = set(table[keys].itertuples(index=False, name=None))
    scored = set(aggregate.scores["method"])
    # A method without any scored run keeps a row, marked by 0 runs; in the overall scope
    # only when it has no run anywhere (one lacking cells is left out, see analysis.scores).
    unscored = [key for key in counts if key not in present and (key[0] != OVERALL or key[3] not in scored)]
    if unscored:
        table = pd.concat([table, pd.DataFrame(unscored, columns=keys).assign(runs=0, tasks=0)], ignore_index=True)
    table["missing_runs"] = [counts.get(key, 0) for key in table[keys].itertuples(index=False, name=None)]
    table["seeds"] = [runs // tasks if tasks else 0 for runs, tasks in zip(table["runs"], table["tasks"])]
    table["run_score_std"] = _run_score_std(aggregate.scores, table)
    table["scope_unlearned"] = in_scopes(table, unlearned)
    table["rank_group"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    for _, rows in table.groupby(SCOPE, sort=False):
        table.loc[rows.index, "rank_group"] = rank_groups(rows)
    table["overall"] = (table[SCOPE] == OVERALL).all(axis=1)
    ratios = pd.DataFrame((aggregate.summary.get("continual") or {}).get("leaderboard", []),
                          columns=LEADERBOARD_COLUMNS[:3] + ["method", "plasticity_ratio", "plasticity_ratio_low",
                                                             "plasticity_ratio_high"])
    table = table.merge(ratios, on=keys, how="left")
    table = table.sort_values(["overall"] + SCOPE + ["rank_group", "iqm", "method"],
                              ascending=[False, True, True, True, True, False, True], kind="stable",
                              na_position="last")
    table[["runs", "tasks", "seeds", "missing_runs"]] = table[["runs", "tasks", "seeds", "missing_runs"]].astype(int)
    return table[LEADERBOARD_COLUMNS].reset_index(drop=True)


def rank_groups(rows: pd.DataFrame) -> pd.Series:
    """Rank group of each method of one scope (``iqm``, ``iqm_low``, ``iqm_high``; see the
    module docstring); missing (``pd.NA``) for a row without an IQM."""
    groups = pd.Series(pd.NA, index=rows.index, dtype="Int64")
    remaining = rows[rows["iqm"].notna()].sort_values(["iqm", "method"], ascending=[False, True], kind="stable")
    group = 0
    while len(remaining):
        group += 1
        top = remaining.iloc[0]
        overlaps = (remaining["iqm_low"] <= top["iqm_high"]) & (remaining["iqm_high"] >= top["iqm_low"])
        groups[remaining.index[overlaps]] = group
        remaining = remaining[~overlaps]
    return groups


def _run_score_std(scores: pd.DataFrame, table: pd.DataFrame) -> list[float]:
    """Standard deviation of the run scores behind each row (the overall scope's: ``in_overall`` runs)."""
    per_scope = scores.groupby(SCOPE + ["method"])["score"].std(ddof=1)
    overall = scores[_is_true(scores["in_overall"], len(scores))].groupby("method")["score"].std(ddof=1)
    values = []
    for *scope, method in table[SCOPE + ["method"]].itertuples(index=False, name=None):
        source, key = (overall, method) if tuple(scope) == (OVERALL,) * 3 else (per_scope, (*scope, method))
        values.append(float(source.get(key, np.nan)))
    return values


def _scored_rows(aggregate: Aggregate, intervals: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's rows of the (scope, method) pairs that have statistics."""
    keys = SCOPE + ["method"]
    wide = intervals.pivot_table(index=keys, columns="statistic", values=["estimate", "low", "high"])
    table = pd.DataFrame(index=wide.index)
    for statistic in (*STATISTIC_NAMES, AUC_STATISTIC):
        table[statistic] = wide[("estimate", statistic)]
        table[f"{statistic}_low"] = wide[("low", statistic)]
        table[f"{statistic}_high"] = wide[("high", statistic)]
    score_rows = intervals[intervals["statistic"] == "iqm"]
    counts = score_rows.drop_duplicates(keys).set_index(keys)[["runs", "tasks"]]
    table = table.join(counts).reset_index()
    poi = aggregate.probability_of_improvement
    for name, rows in (("none", poi[poi["baseline"] == poi["method"].map(variant_baseline)]),  # a variant's own none
                       ("best_baseline", poi[_is_true(poi.get("best_baseline"), len(poi))])):
        rows = rows[keys + ["probability", "low", "high"] + (["baseline"] if name == "best_baseline" else [])]
        prefix = f"prob_improvement_over_{name}"
        table = table.merge(rows.rename(columns={"probability": prefix, "low": f"{prefix}_low",
                                                 "high": f"{prefix}_high"}), on=keys, how="left")
    return table.rename(columns={"baseline": "best_baseline"})


def _is_true(column, length: int) -> np.ndarray:
    """A boolean mask from a CSV column read back as bools or strings (absent: all False)."""
    if column is None:
        return np.zeros(length, dtype=bool)
    return column.astype(str).str.lower().isin(["true", "1"]).to_numpy()


def alone_in_first_group(rows: pd.DataFrame) -> bool:
    """Whether one scope's top method is separated from every other (the only case for a bold winner)."""
    return int((rows["rank_group"] == 1).sum()) == 1


# ----------------------------------------------------------------------------- renderings


def _interval(value, low, high) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


DISPLAY = [("iqm", "IQM"), ("mean", "Mean"), ("median", "Median"), ("optimality_gap", "Optimality gap"),
           ("auc_iqm", "AUC (IQM)"),
           ("prob_improvement_over_none", "P(> none)"),
           ("prob_improvement_over_best_baseline", "P(> best baseline)")]


def _best_baseline_name(row) -> str:
    name = row.get("best_baseline")
    return "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name)


def _runs_cell(row) -> str:
    """Runs, marked with the missing ones (a method whose runs all failed shows 0)."""
    missing = int(row.get("missing_runs", 0) or 0)
    return f"{row['runs']}" + (f" ({missing} missing)" if missing else "")


def _group_cell(row) -> str:
    return "-" if pd.isna(row["rank_group"]) else str(int(row["rank_group"]))


def _std_cell(row) -> str:
    return "-" if pd.isna(row["run_score_std"]) else f"{row['run_score_std']:.3f}"


def display_rows(board: pd.DataFrame, method_name: Callable[[str], str] = str) -> dict[tuple, list[list[str]]]:
    """Per scope (in the board's order), rows of strings: rank group, method, each statistic
    with its CI, run score s.d., runs, tasks; P(> best baseline) names the baseline.
    ``method_name`` names the methods (default: their labels; the HTML page gives display names)."""
    out: dict[tuple, list[list[str]]] = {}
    for scope, group in board.groupby(SCOPE, sort=False):
        rows = []
        for _, row in group.iterrows():
            cells = [_group_cell(row), method_name(row["method"])]
            for column, _ in DISPLAY:
                cell = _interval(row[column], row[f"{column}_low"], row[f"{column}_high"])
                if column == "prob_improvement_over_best_baseline" and cell != "-":
                    cell += f" vs {method_name(_best_baseline_name(row))}"
                cells.append(cell)
            rows.append(cells + [_std_cell(row), _runs_cell(row), str(row["tasks"])])
        out[scope] = rows
    return out


def _seed_counts(rows: pd.DataFrame) -> tuple[int, str] | None:
    """(fewest seeds per task, "k" or "k-m") over one scope's scored rows; None without any."""
    seeds = sorted(set(rows.loc[rows["runs"] > 0, "seeds"]))
    if not seeds:
        return None
    return seeds[0], str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"


def scope_notes(rows: pd.DataFrame, learned_above: float = LEARNED_ABOVE) -> list[str]:
    """What a reader must know about one scope before reading its rows: seeds, an unlearned
    scope, a first rank group of several methods."""
    seeds = _seed_counts(rows)
    notes = []
    if seeds:
        fewest, count = seeds
        notes.append(f"{count} seed(s) per task.")
        if fewest < MIN_SEEDS:
            notes.append(f"WARNING: fewer than {MIN_SEEDS} seeds per task; the intervals stand on very few runs "
                         "(with 3 seeds of 1 task a 95% percentile bootstrap CI is just [min, max] of the runs).")
    if rows["scope_unlearned"].astype(bool).any():
        notes.append(f"Unlearned at this budget: no method's IQM CI upper bound is above {learned_above:g} "
                     "(normalised), so no method is distinguishable from random here; this scope is left out "
                     "of the overall scope.")
    first = rows.loc[rows["rank_group"] == 1, "method"].tolist()
    if len(first) > 1:
        notes.append(f"No single best method: {', '.join(first)} share rank group 1 (their IQM CIs overlap the "
                     "top method's).")
    return notes


def ratio_note(rows: pd.DataFrame) -> list[str]:
    """A continual scope's plasticity ratio per method (analysis/continual.py), as one line."""
    rows = rows.dropna(subset=["plasticity_ratio"])
    if rows.empty:
        return []
    cells = "; ".join(f"{row.method} {_interval(row.plasticity_ratio, row.plasticity_ratio_low, row.plasticity_ratio_high)}"
                      for row in rows.itertuples())
    return ["Continual scope: scores are end-of-segment scores of segments 1 and later (one task per segment). "
            f"Plasticity ratio (IQM over those segments, vs a fresh agent; 1 = learns as well as a new network): {cells}."]


RANKING_NOTE = (
    "Scores are normalised per task ((return - random) / (reference - random)); each cell is the point estimate and "
    "its stratified-bootstrap CI. Rank groups: the highest-IQM method of a scope and every method whose IQM CI "
    "overlaps its CI share group 1; the same rule among the rest gives group 2, and so on. Within a group the data do "
    "not separate the methods; the order inside a group (by point IQM) is not a ranking. AUC is the IQM of each run's "
    "area under its normalised learning curve (trapezoid over its eval steps, divided by their span). 'run s.d.' is "
    "the standard deviation of the row's run scores.")

BASELINE_NOTE = (
    "P(> best baseline) compares a method with the highest-IQM built-in method of its scope other than "
    "itself (built-in: a method registered with plasticity-bench, none included; combinations and user methods "
    "are never baselines). The overall scope pools every suite/algo/arch/task cell of the learned scopes as one "
    "task of a single score matrix (seeds as runs); a method lacking a cell is left out of it.")

HEADER = ["group", "method"] + [label for _, label in DISPLAY] + ["run s.d.", "runs", "tasks"]


def leaderboard_markdown(board: pd.DataFrame, title: str, notes: list[str],
                         learned_above: float = LEARNED_ABOVE) -> str:
    lines = [f"# {title}", ""] + notes + ["", RANKING_NOTE + " " + BASELINE_NOTE]
    groups = dict(list(board.groupby(SCOPE, sort=False)))
    for scope, rows in display_rows(board).items():
        lines += ["", f"## {scope_title(scope)}", ""]
        lines += scope_notes(groups[scope], learned_above) + ratio_note(groups[scope]) + [""]
        lines += ["| " + " | ".join(HEADER) + " |",
                  "|" + "|".join(["---:", "---"] + ["---:"] * (len(HEADER) - 2)) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
