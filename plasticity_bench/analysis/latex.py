"""The leaderboard as a LaTeX table a paper includes as it is (``leaderboard.tex`` of a report).

Booktabs rules, display names (``analysis.display``), each statistic as one cell "estimate
[CI]" (the CI in a smaller size), one block per scope under an italic heading, the top IQM of
a scope in bold only when its method is alone in rank group 1. By default the table shows
IQM, the probability of improvement over the baseline and the runs, which fits a NeurIPS
text width (``TEXT_WIDTH``, 5.5 in) at ``\\footnotesize``; ``columns`` adds others
(``OPTIONAL``). ``estimated_width`` measures a table's width from its cells' characters, so a
test can hold the default to the text width.
"""

from __future__ import annotations

import re
from typing import Sequence

import pandas as pd

from plasticity_bench.analysis.display import DisplayNames
from plasticity_bench.analysis.leaderboard import alone_in_first_group
from plasticity_bench.analysis.vocabulary import MIN_SEEDS, SCOPE

TEXT_WIDTH = 5.5  # inches: NeurIPS's (and ICML's) text width
#: column key -> header; a statistic's key is its leaderboard column (with ``_low``/``_high``).
HEADERS = {
    "group": "Group", "iqm": "IQM", "mean": "Mean", "median": "Median",
    "optimality_gap": "Opt.\\ gap ($\\downarrow$)", "auc_iqm": "AUC (IQM)",
    "prob_improvement_over_none": "P($>$none)", "prob_improvement_over_best_baseline": "P($>$best baseline)",
    "run_score_std": "s.d.", "runs": "Runs",
}
DEFAULT_COLUMNS = ("iqm", "prob_improvement_over_none", "runs")
OPTIONAL = tuple(key for key in HEADERS if key not in DEFAULT_COLUMNS)
STATISTICS = ("iqm", "mean", "median", "optimality_gap", "auc_iqm", "prob_improvement_over_none",
              "prob_improvement_over_best_baseline")
#: \footnotesize in a 10 pt document is 8 pt, \scriptsize 6 pt; a digit or an average letter
#: is about half an em wide; booktabs' default \tabcolsep is 6 pt, this table sets 4 pt.
FONT_PT, SMALL_PT, TABCOLSEP_PT = 8.0, 6.0, 4.0


def tex_escape(text: str) -> str:
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}
    return "".join(replacements.get(ch, ch) for ch in str(text))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _statistic_cell(row, key: str, bold: bool) -> str:
    value = row.get(key)
    if _missing(value):
        return "--"
    point = f"{value:.2f}"
    point = f"\\textbf{{{point}}}" if bold else point
    return f"{point} {{\\scriptsize [{row[key + '_low']:.2f}, {row[key + '_high']:.2f}]}}"


def _cell(row, key: str, bold_winner: bool) -> str:
    if key in STATISTICS:
        return _statistic_cell(row, key, bold_winner and key == "iqm" and row["rank_group"] == 1)
    if key == "group":
        return "--" if _missing(row["rank_group"]) else str(int(row["rank_group"]))
    if key == "run_score_std":
        return "--" if _missing(row["run_score_std"]) else f"{row['run_score_std']:.2f}"
    missing = int(row.get("missing_runs", 0) or 0)
    return f"{row['runs']}" + (f" ({missing} missing)" if missing else "")


def _scope_heading(scope: tuple, rows: pd.DataFrame, names: DisplayNames) -> str:
    marks = []
    scored = rows.loc[rows["runs"] > 0, "seeds"] if "seeds" in rows else pd.Series(dtype=float)
    if len(scored) and scored.min() < MIN_SEEDS:
        marks.append(f"{int(scored.min())} seeds per task")
    if "scope_unlearned" in rows and rows["scope_unlearned"].astype(bool).any():
        marks.append("not learned at this budget; not in Overall")
    return tex_escape(names.scope(scope)) + (f" ({'; '.join(marks)})" if marks else "")


def check_columns(columns: Sequence[str]) -> list[str]:
    """``columns`` if every one is known (ValueError naming the valid keys otherwise)."""
    unknown = [key for key in columns if key not in HEADERS]
    if unknown:
        raise ValueError(f"unknown table column {unknown[0]!r}; valid: {', '.join(HEADERS)}")
    return list(columns)


def table_cells(board: pd.DataFrame, names: DisplayNames | None = None,
                columns: Sequence[str] = DEFAULT_COLUMNS) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(header cells, [(scope heading, rows of cells)]) of the table, in LaTeX."""
    names = names or DisplayNames()
    columns = check_columns(columns)
    header = ["Method"] + [HEADERS[key] for key in columns]
    blocks = []
    for scope, group in board.groupby(SCOPE, sort=False):
        bold_winner = alone_in_first_group(group)
        rows = [[tex_escape(names.method(row["method"]))] + [_cell(row, key, bold_winner) for key in columns]
                for _, row in group.iterrows()]
        blocks.append((_scope_heading(scope, group, names), rows))
    return header, blocks


def _cell_width_pt(cell: str) -> float:
    """Printed width of a cell: half an em per character, the \\scriptsize part at its size."""
    small = "".join(re.findall(r"\{\\scriptsize ([^}]*)\}", cell))
    rest = re.sub(r"\{\\scriptsize [^}]*\}", "", cell)
    rest = re.sub(r"\\(textbf|textit)\{([^}]*)\}", r"\2", rest)
    rest = re.sub(r"\$[^$]*\$", "x", rest).replace("\\", "")
    return 0.5 * FONT_PT * len(rest) + 0.5 * SMALL_PT * len(small)


def estimated_width(header: list[str], blocks: list[tuple[str, list[str]]]) -> float:
    """The table's width in inches: each column as wide as its widest cell, plus the column gaps
    (scope headings span every column and are left out)."""
    columns = [header, *[row for _, rows in blocks for row in rows]]
    widths = [max(_cell_width_pt(row[i]) for row in columns) for i in range(len(header))]
    return (sum(widths) + 2 * TABCOLSEP_PT * len(widths)) / 72


def leaderboard_tex(board: pd.DataFrame, names: DisplayNames | None = None,
                    columns: Sequence[str] = DEFAULT_COLUMNS, confidence: float = 0.95) -> str:
    """The table (``\\usepackage{booktabs}``); see the module docstring."""
    header, blocks = table_cells(board, names, columns)
    width = len(header)
    lines = [
        "% Generated by plasticity_bench.analysis.latex; needs \\usepackage{booktabs}.",
        f"% Estimated width {estimated_width(header, blocks):.2f} in (NeurIPS text width {TEXT_WIDTH} in).",
        "\\begin{table}[t]", "\\centering", "\\footnotesize", f"\\setlength{{\\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}",
        "\\begin{tabular}{l" + "r" * (width - 1) + "}", "\\toprule", " & ".join(header) + " \\\\",
    ]
    for heading, rows in blocks:
        lines += ["\\midrule", f"\\multicolumn{{{width}}}{{l}}{{\\textit{{{heading}}}}} \\\\"]
        lines += [" & ".join(row) + " \\\\" for row in rows]
    explained = {"iqm": "IQM: interquartile mean of the runs' normalised final scores",
                 "optimality_gap": "Opt.\\ gap: shortfall from a score of 1 (lower is better)",
                 "auc_iqm": "AUC: IQM of the area under each run's normalised learning curve",
                 "prob_improvement_over_none": "P($>$none): probability that a run of the method beats a run "
                                               "without intervention",
                 "prob_improvement_over_best_baseline": "P($>$best baseline): the same against the scope's "
                                                        "highest-IQM built-in method",
                 "group": "Group: methods whose IQM CIs overlap that of the group's top method",
                 "run_score_std": "s.d.: standard deviation of the run scores"}
    caption = (f"Normalised scores with {confidence * 100:.0f}\\% stratified-bootstrap confidence intervals in "
               "brackets. "
               + "; ".join(text for key, text in explained.items() if key in columns)
               + ". A bold IQM is a scope's top method, separated from all others.")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"
