"""The leaderboard: one row per (scope, method), and its markdown and LaTeX renderings.

The leaderboard has one row per (scope, method), the overall scope (``all/all/all``, every
cell pooled; see ``analysis.scores``) first; besides P(> none) it carries P(> best
baseline) and the name of that baseline (the highest-IQM built-in method of the scope
other than the method; see ``analysis.baselines``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plasticity_bench.analysis.vocabulary import (BASELINE, OVERALL, SCOPE, STATISTIC_NAMES, Aggregate,
                                                  scope_title)

LEADERBOARD_COLUMNS = [
    "suite", "algo", "arch", "method",
    "iqm", "iqm_low", "iqm_high",
    "mean", "mean_low", "mean_high",
    "median", "median_low", "median_high",
    "optimality_gap", "optimality_gap_low", "optimality_gap_high",
    "prob_improvement_over_none", "prob_improvement_over_none_low", "prob_improvement_over_none_high",
    "best_baseline",
    "prob_improvement_over_best_baseline", "prob_improvement_over_best_baseline_low",
    "prob_improvement_over_best_baseline_high",
    "runs", "tasks", "missing_runs",
]



def leaderboard(aggregate: Aggregate) -> pd.DataFrame:
    """One row per (scope, method), ``LEADERBOARD_COLUMNS``, ranked by IQM within a scope.

    The overall scope (``suite = algo = arch = "all"``, see ``analysis.scores``) comes first, then the
    scopes in order. ``best_baseline`` names the method's best baseline in its scope (see
    ``analysis.baselines``) and ``prob_improvement_over_best_baseline`` is P(method > it).
    ``missing_runs`` counts the expected runs a row's statistics lack; a method none of
    whose runs in a scope could be scored keeps its row there, with 0 runs and no statistics.
    """
    intervals = aggregate.interval_estimates
    if intervals.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    keys = SCOPE + ["method"]
    table = _scored_rows(aggregate, intervals)
    missing = aggregate.missing
    counts = {key: len(rows) for key, rows in missing.groupby(keys)} if len(missing) else {}
    if (table[SCOPE] == OVERALL).all(axis=1).any():
        counts.update({(OVERALL,) * 3 + (method,): len(rows) for method, rows in missing.groupby("method")})
    present = set(table[keys].itertuples(index=False, name=None))
    scored = set(aggregate.scores["method"])
    # A method without any scored run keeps a row, marked by 0 runs; in the overall scope
    # only when it has no run anywhere (one lacking cells is left out, see analysis.scores).
    unscored = [key for key in counts if key not in present and (key[0] != OVERALL or key[3] not in scored)]
    if unscored:
        table = pd.concat([table, pd.DataFrame(unscored, columns=keys).assign(runs=0, tasks=0)], ignore_index=True)
    table["missing_runs"] = [counts.get(key, 0) for key in table[keys].itertuples(index=False, name=None)]
    table["overall"] = (table[SCOPE] == OVERALL).all(axis=1)
    table = table.sort_values(["overall"] + SCOPE + ["iqm", "method"],
                              ascending=[False, True, True, True, False, True], kind="stable", na_position="last")
    table[["runs", "tasks", "missing_runs"]] = table[["runs", "tasks", "missing_runs"]].astype(int)
    return table[LEADERBOARD_COLUMNS].reset_index(drop=True)


def _scored_rows(aggregate: Aggregate, intervals: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's rows of the (scope, method) pairs that have statistics."""
    keys = SCOPE + ["method"]
    wide = intervals.pivot_table(index=keys, columns="statistic", values=["estimate", "low", "high"])
    table = pd.DataFrame(index=wide.index)
    for statistic in STATISTIC_NAMES:
        table[statistic] = wide[("estimate", statistic)]
        table[f"{statistic}_low"] = wide[("low", statistic)]
        table[f"{statistic}_high"] = wide[("high", statistic)]
    counts = intervals.drop_duplicates(keys).set_index(keys)[["runs", "tasks"]]
    table = table.join(counts).reset_index()
    poi = aggregate.probability_of_improvement
    for name, rows in (("none", poi[poi["baseline"] == BASELINE]),
                       ("best_baseline", poi[_is_true(poi.get("best_baseline"), len(poi))])):
        rows = rows[keys + ["probability", "low", "high"] + (["baseline"] if name == "best_baseline" else [])]
        prefix = f"prob_improvement_over_{name}"
        table = table.merge(rows.rename(columns={"probability": prefix, "low": f"{prefix}_low",
                                                 "high": f"{prefix}_high"}), on=keys, how="left")
    return table.rename(columns={"baseline": "best_baseline"})


def _is_true(column, length: int) -> pd.Series:
    """A boolean mask from a CSV column read back as bools or strings (absent: all False)."""
    if column is None:
        return np.zeros(length, dtype=bool)
    return column.astype(str).str.lower().isin(["true", "1"]).to_numpy()


def _interval(value, low, high) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


DISPLAY = [("iqm", "IQM"), ("mean", "Mean"), ("median", "Median"), ("optimality_gap", "Optimality gap"),
           ("prob_improvement_over_none", "P(> none)"),
           ("prob_improvement_over_best_baseline", "P(> best baseline)")]


def _best_baseline_name(row) -> str:
    name = row.get("best_baseline")
    return "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name)


def _runs_cell(row) -> str:
    """Runs, marked with the missing ones (a method whose runs all failed shows 0)."""
    missing = int(row.get("missing_runs", 0) or 0)
    return f"{row['runs']}" + (f" ({missing} missing)" if missing else "")


def display_rows(board: pd.DataFrame) -> dict[tuple, list[list[str]]]:
    """Per scope (in the board's order), rows of strings: method, each statistic with its CI,
    runs, tasks; P(> best baseline) names the baseline."""
    out: dict[tuple, list[list[str]]] = {}
    for scope, group in board.groupby(SCOPE, sort=False):
        rows = []
        for _, row in group.iterrows():
            cells = [row["method"]]
            for column, _ in DISPLAY:
                cell = _interval(row[column], row[f"{column}_low"], row[f"{column}_high"])
                if column == "prob_improvement_over_best_baseline" and cell != "-":
                    cell += f" vs {_best_baseline_name(row)}"
                cells.append(cell)
            rows.append(cells + [_runs_cell(row), str(row["tasks"])])
        out[scope] = rows
    return out


BASELINE_NOTE = (
    "P(> best baseline) compares a method with the highest-IQM built-in method of its scope other than "
    "itself (built-in: a method registered with plasticity-bench, none included; combinations and user methods "
    "are never baselines). The overall scope pools every suite/algo/arch/task cell as one task of a single "
    "score matrix (seeds as runs); a method lacking a cell is left out of it.")

HEADER = ["method"] + [label for _, label in DISPLAY] + ["runs", "tasks"]


def leaderboard_markdown(board: pd.DataFrame, title: str, notes: list[str]) -> str:
    lines = [f"# {title}", ""] + notes + [""]
    lines.append("Scores are normalised per task ((return - random) / (reference - random)); each cell is the "
                 "point estimate and its 95% stratified-bootstrap CI. Methods are ranked by IQM within a scope. "
                 + BASELINE_NOTE)
    for scope, rows in display_rows(board).items():
        lines += ["", f"## {scope_title(scope)}", "", "| " + " | ".join(HEADER) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}
    return "".join(replacements.get(ch, ch) for ch in str(text))


def leaderboard_tex(board: pd.DataFrame) -> str:
    """A booktabs table (``\\usepackage{booktabs}``); the best IQM of each scope in bold.

    Sized for the full width of a two-column paper (``table*``, footnotesize, narrow column
    separation); the last statistic column names the best baseline it compares with.
    """
    columns = ["Method", "IQM", "Mean", "Median", "Opt.\\ gap", "P($>$none)", "P($>$best baseline)", "Runs"]
    lines = [
        "% Generated by plasticity_bench.analysis.leaderboard; needs \\usepackage{booktabs}.",
        "\\begin{table*}[t]", "\\centering", "\\footnotesize", "\\setlength{\\tabcolsep}{4pt}",
        "\\begin{tabular}{l" + "c" * (len(columns) - 1) + "}", "\\toprule",
        " & ".join(columns) + " \\\\",
    ]
    for scope, group in board.groupby(SCOPE, sort=False):
        lines += ["\\midrule",
                  f"\\multicolumn{{{len(columns)}}}{{l}}{{\\textit{{{_tex_escape(scope_title(scope))}}}}} \\\\"]
        for i, (_, row) in enumerate(group.iterrows()):
            cells = [_tex_escape(row["method"])]
            for column, _ in DISPLAY:
                value = row[column]
                if pd.isna(value):
                    cells.append("--")
                    continue
                point = f"\\textbf{{{value:.2f}}}" if column == "iqm" and i == 0 else f"{value:.2f}"
                cell = f"{point} {{\\scriptsize [{row[column + '_low']:.2f}, {row[column + '_high']:.2f}]}}"
                if column == "prob_improvement_over_best_baseline":
                    cell += f" {{\\scriptsize vs {_tex_escape(_best_baseline_name(row))}}}"
                cells.append(cell)
            cells.append(_tex_escape(_runs_cell(row)))
            lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}",
              "\\caption{Normalised scores with 95\\% stratified-bootstrap confidence intervals "
              "(IQM: interquartile mean; P($>$none): probability of improvement over no intervention; "
              "P($>$best baseline): over the highest-IQM built-in method of the scope other than the method "
              "itself; Overall: every suite/algorithm/architecture/task cell pooled).}",
              "\\end{table*}"]
    return "\n".join(lines) + "\n"


