"""Versioned reports: leaderboard (md/csv/tex), figures, index.html and a manifest.

``build_report`` turns an aggregate dir (``plasticity_bench.stats``) into
``<reports_root>/<version>/``::

    leaderboard.md  leaderboard.csv  leaderboard.tex  missing.md (only if runs were missing)
    figures/*.pdf figures/*.png      index.html       manifest.json

and regenerates ``<reports_root>/index.md`` from the manifests of every version there.

The leaderboard has one row per (scope, method), the overall scope (``all/all/all``, every
cell pooled; see ``stats``) first; besides P(> none) it carries P(> best baseline) and the
name of that baseline (the highest-IQM built-in method of the scope other than the method).

Versions and overwriting. The default version is ``v<package version>-<config_hash[:8]>-
<git sha[:7]>`` (``-dirty`` with uncommitted changes), the name the workflow gives the same
report. A report's *provenance* is (package version, git sha, git dirty flag, hash of the
uncommitted diff, config hash, hash of the aggregate's files). A published version
directory is never modified: a build whose version exists with the same provenance leaves
it as it is (with any notes a user put there), and otherwise

- with the default version, the build moves on to ``<version>-2``, ``<version>-3``, ... and
  uses the first directory that is free or has the same provenance;
- with an explicit ``version``, the build fails with ``ReportError``.

The directory is assembled in a hidden sibling and renamed into place, so a reader never
sees a half-written report. The git state is read from the repository that holds this
package; changes under ``reports_root`` itself are not counted as "dirty" (a report is
itself a change to the tree). A dirty tree is recorded but cannot be identified exactly:
the diff hash covers tracked changes and the *names* of untracked files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

import plasticity_bench
from plasticity_bench import plots, stats
from plasticity_bench.provenance import code_version, package_versions
from plasticity_bench.results import DIR_MODE, FILE_MODE, atomic_write_bytes, write_json

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
PROVENANCE_KEYS = ("package_version", "git_sha", "git_dirty", "git_diff_sha256", "config_hash", "aggregate_sha256")
REPORT_PACKAGES = ("plasticity-bench", "torch", "numpy", "pandas", "scipy", "rliable",
                      "arch", "matplotlib", "seaborn")
MANIFEST = "manifest.json"


class ReportError(Exception):
    """A user-facing problem building a report (inputs disagree, version taken...)."""


# ----------------------------------------------------------------------------- leaderboard


def leaderboard(aggregate: stats.Aggregate) -> pd.DataFrame:
    """One row per (scope, method), ``LEADERBOARD_COLUMNS``, ranked by IQM within a scope.

    The overall scope (``suite = algo = arch = "all"``, see ``stats``) comes first, then the
    scopes in order. ``best_baseline`` names the method's best baseline in its scope (see
    ``stats``) and ``prob_improvement_over_best_baseline`` is P(method > it).
    ``missing_runs`` counts the expected runs a row's statistics lack; a method none of
    whose runs in a scope could be scored keeps its row there, with 0 runs and no statistics.
    """
    intervals = aggregate.interval_estimates
    if intervals.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    keys = stats.SCOPE + ["method"]
    table = _scored_rows(aggregate, intervals)
    missing = aggregate.missing
    counts = {key: len(rows) for key, rows in missing.groupby(keys)} if len(missing) else {}
    if (table[stats.SCOPE] == stats.OVERALL).all(axis=1).any():
        counts.update({(stats.OVERALL,) * 3 + (method,): len(rows) for method, rows in missing.groupby("method")})
    present = set(table[keys].itertuples(index=False, name=None))
    scored = set(aggregate.scores["method"])
    # A method without any scored run keeps a row, marked by 0 runs; in the overall scope
    # only when it has no run anywhere (one lacking cells is left out, see stats).
    unscored = [key for key in counts if key not in present and (key[0] != stats.OVERALL or key[3] not in scored)]
    if unscored:
        table = pd.concat([table, pd.DataFrame(unscored, columns=keys).assign(runs=0, tasks=0)], ignore_index=True)
    table["missing_runs"] = [counts.get(key, 0) for key in table[keys].itertuples(index=False, name=None)]
    table["overall"] = (table[stats.SCOPE] == stats.OVERALL).all(axis=1)
    table = table.sort_values(["overall"] + stats.SCOPE + ["iqm", "method"],
                              ascending=[False, True, True, True, False, True], kind="stable", na_position="last")
    table[["runs", "tasks", "missing_runs"]] = table[["runs", "tasks", "missing_runs"]].astype(int)
    return table[LEADERBOARD_COLUMNS].reset_index(drop=True)


def _scored_rows(aggregate: stats.Aggregate, intervals: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's rows of the (scope, method) pairs that have statistics."""
    keys = stats.SCOPE + ["method"]
    wide = intervals.pivot_table(index=keys, columns="statistic", values=["estimate", "low", "high"])
    table = pd.DataFrame(index=wide.index)
    for statistic in stats.STATISTICS:
        table[statistic] = wide[("estimate", statistic)]
        table[f"{statistic}_low"] = wide[("low", statistic)]
        table[f"{statistic}_high"] = wide[("high", statistic)]
    counts = intervals.drop_duplicates(keys).set_index(keys)[["runs", "tasks"]]
    table = table.join(counts).reset_index()
    poi = aggregate.probability_of_improvement
    for name, rows in (("none", poi[poi["baseline"] == stats.BASELINE]),
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


def scope_title(scope: tuple) -> str:
    if all(part == stats.OVERALL for part in scope):
        return "Overall (every suite / algo / arch)"
    return " / ".join(scope)


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


def _display_rows(board: pd.DataFrame) -> dict[tuple, list[list[str]]]:
    """Per scope (in the board's order), rows of strings: method, each statistic with its CI,
    runs, tasks; P(> best baseline) names the baseline."""
    out: dict[tuple, list[list[str]]] = {}
    for scope, group in board.groupby(stats.SCOPE, sort=False):
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
    for scope, rows in _display_rows(board).items():
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
        "% Generated by plasticity_bench.report; needs \\usepackage{booktabs}.",
        "\\begin{table*}[t]", "\\centering", "\\footnotesize", "\\setlength{\\tabcolsep}{4pt}",
        "\\begin{tabular}{l" + "c" * (len(columns) - 1) + "}", "\\toprule",
        " & ".join(columns) + " \\\\",
    ]
    for scope, group in board.groupby(stats.SCOPE, sort=False):
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


def missing_markdown(missing: pd.DataFrame) -> str:
    lines = ["# Missing runs", "",
             f"{len(missing)} expected run(s) were not aggregated (the statistics stand on the rest).", "",
             "| run_id | suite | algo | arch | method | task | seed | status | reason |",
             "|---|---|---|---|---|---|---:|---|---|"]
    for row in missing.itertuples():
        cells = [row.run_id, row.suite, row.algo, row.arch, row.method, row.task, row.seed,
                 "" if pd.isna(row.status) else row.status, row.reason]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def index_html(title: str, board: pd.DataFrame, figures: list[Path], notes: list[str], has_missing: bool) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:0.85em;margin-bottom:1.5em}"
        "th,td{border-bottom:1px solid #ccc;padding:0.25em 0.6em;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%}</style>",
        "</head><body>", f"<h1>{esc(title)}</h1>",
    ]
    parts += [f"<p>{esc(note)}</p>" for note in notes]
    parts.append("<p>Downloads: <a href=\"leaderboard.csv\">leaderboard.csv</a>, "
                 "<a href=\"leaderboard.tex\">leaderboard.tex</a>, <a href=\"manifest.json\">manifest.json</a>"
                 + (", <a href=\"missing.md\">missing.md</a>" if has_missing else "") + "</p>")
    parts.append(f"<p>{esc(BASELINE_NOTE)}</p>")
    for scope, rows in _display_rows(board).items():
        parts.append(f"<h2>{esc(scope_title(scope))}</h2><table><thead><tr>"
                     + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        parts.append("</tbody></table>")
    parts.append("<h2>Figures</h2>")
    for png in figures:
        if png.suffix != ".png":
            continue
        rel = f"figures/{png.name}"
        parts.append(f"<figure><img src=\"{esc(rel)}\" alt=\"{esc(png.stem)}\">"
                     f"<figcaption>{esc(png.stem)} (<a href=\"figures/{esc(png.stem)}.pdf\">PDF</a>)"
                     "</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- provenance


def default_version(config_hash: str, reports_root: Path | None = None) -> str:
    """``v<package>-<config hash[:8]>-<git sha[:7]>[-dirty]``: other code or another config is
    another name. ``reports_root`` is left out of the dirty check (see the module docstring)."""
    version = f"v{plasticity_bench.__version__}-{str(config_hash)[:8]}"
    code = code_version(exclude=reports_root)
    if code["git_sha"]:
        version += f"-{code['git_sha'][:7]}" + ("-dirty" if code["git_dirty"] else "")
    return version


def aggregate_digest(aggregate_dir: Path) -> str:
    """SHA-256 over the files ``stats.write_aggregate`` wrote (same runs, same digest)."""
    digest = hashlib.sha256()
    for name in sorted([*stats.FILES.values(), stats.SUMMARY]):
        digest.update(name.encode() + b"\0" + (Path(aggregate_dir) / name).read_bytes())
    return digest.hexdigest()


def _provenance(manifest: Mapping) -> dict:
    return {key: manifest.get(key) for key in PROVENANCE_KEYS}


def choose_version(reports_root: Path, provenance: Mapping, version: str | None, config_hash: str) -> str:
    """The directory name to write (see the module docstring for the rules)."""
    reports_root = Path(reports_root)

    def taken_by_other(name: str) -> bool:
        path = reports_root / name
        if not path.exists():
            return False
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            return True  # something we did not write: never touch it
        return _provenance(json.loads(manifest_path.read_text())) != dict(provenance)

    if version is not None:
        if "/" in version or version.startswith(".") or not version.strip():
            raise ReportError(f"invalid report version name {version!r}")
        if taken_by_other(version):
            raise ReportError(
                f"report version {version!r} already exists in {reports_root} and was built from other code, "
                f"config or aggregated runs; reports are never replaced: move {reports_root / version} away to "
                "rebuild it, or choose another --version")
        return version
    base = default_version(config_hash, reports_root)
    candidate, suffix = base, 1
    while taken_by_other(candidate):
        suffix += 1
        candidate = f"{base}-{suffix}"
    return candidate


def _markdown_cell(value) -> str:
    return str(value if value is not None else "-").replace("|", "\\|")


def write_reports_index(reports_root: Path) -> Path:
    """Regenerate ``reports_root/index.md`` from every version's manifest (newest first)."""
    reports_root = Path(reports_root)
    manifests = []
    for path in sorted(reports_root.glob(f"*/{MANIFEST}")):
        if path.parent.name.startswith("."):  # staging or replaced dirs, never a version
            continue
        try:
            manifests.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    manifests.sort(key=lambda m: (str(m.get("date")), str(m.get("version"))), reverse=True)
    lines = ["# Reports", "", "One directory per version; a version is never overwritten by another code "
             "version or config.", "",
             "| version | date | package | git sha | dirty | config hash | runs | missing |",
             "|---|---|---|---|---|---|---:|---:|"]
    for m in manifests:
        sha = (m.get("git_sha") or "-")[:12]
        cells = [f"[{m.get('version')}]({m.get('version')}/index.html)", m.get("date"), m.get("package_version"),
                 sha, m.get("git_dirty"), str(m.get("config_hash"))[:12], len(m.get("run_ids", [])),
                 len(m.get("missing_run_ids", []))]
        lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    path = reports_root / "index.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


# ----------------------------------------------------------------------------- build


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def build_report(
    aggregate_dir: Path,
    reports_root: Path,
    matrix: Mapping | Path,
    version: str | None = None,
    metrics: Iterable[str] | None = None,
) -> Path:
    """Assemble ``reports_root/<version>/`` from an aggregate dir; returns that directory.

    Args:
      aggregate_dir: written by ``stats.aggregate`` (must carry the matrix's config hash).
      reports_root: parent of all versions; its ``index.md`` is regenerated.
      matrix: the ``matrix.json`` dict or its path.
      version: explicit version name; default ``v<package>-<config_hash[:8]>`` (+ suffix).
      metrics: metrics to draw curves of (names or ``name@`` prefixes, as ``plasticity-bench
        plot``); default the stored ones of ``plots.REPORT_METRICS``.
    Raises:
      ReportError: the aggregate belongs to another matrix, or ``version`` is taken by a
        report with another provenance.
      stats.StatsError: the aggregate dir or matrix cannot be read.
    """
    reports_root = Path(reports_root)
    if not isinstance(matrix, Mapping):
        matrix = stats.load_matrix(Path(matrix))
    aggregate = stats.read_aggregate(aggregate_dir)
    config_hash = matrix.get("config_hash")
    if not config_hash:
        raise ReportError("the matrix has no config_hash")
    if aggregate.summary.get("config_hash") != config_hash:
        raise ReportError(f"aggregate {aggregate_dir} was made from config {aggregate.summary.get('config_hash')}, "
                          f"not the matrix's {config_hash}; rerun aggregate")

    provenance = {"package_version": plasticity_bench.__version__, **code_version(exclude=reports_root),
                  "config_hash": config_hash, "aggregate_sha256": aggregate_digest(aggregate_dir)}
    name = choose_version(reports_root, provenance, version, config_hash)
    target = reports_root / name
    if target.exists():  # published from the same inputs: never touched again
        write_reports_index(reports_root)
        return target
    date = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()

    board = leaderboard(aggregate)
    missing = aggregate.missing
    title = f"plasticity-bench leaderboard {name}"
    notes = [
        f"Config {config_hash}; code {provenance['git_sha'] or 'unknown'}"
        + (" (uncommitted changes)" if provenance["git_dirty"] else "") + f"; built {date}.",
        f"{len(aggregate.scores)} runs aggregated; {len(missing)} expected runs missing; bootstrap "
        f"reps {aggregate.summary.get('reps')}, seed {aggregate.summary.get('seed')}; final score = mean of the "
        f"last {aggregate.summary.get('last_n')} evaluations.",
    ]
    if len(missing):
        notes.append(f"WARNING: {len(missing)} expected runs are missing; see missing.md.")
    overall = aggregate.summary.get("overall") or {}
    if overall.get("excluded"):
        notes.append("Left out of the overall scope for lacking cells: " + "; ".join(
            f"{method} ({len(cells)} of {overall.get('cells')} cells missing)"
            for method, cells in overall["excluded"].items()) + ".")

    reports_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=reports_root, prefix=f".{name}.", suffix=".tmp"))
    try:
        figures = plots.plot_all(aggregate, staging / "figures",
                                 metrics=metrics if metrics is not None else plots.stored_report_metrics(aggregate.metric_curves))
        files = {
            "leaderboard.csv": _csv_bytes(board),
            "leaderboard.md": leaderboard_markdown(board, title, notes).encode(),
            "leaderboard.tex": leaderboard_tex(board).encode(),
            "index.html": index_html(title, board, figures, notes, bool(len(missing))).encode(),
        }
        if len(missing):
            files["missing.md"] = missing_markdown(missing).encode()
        for file, data in files.items():
            atomic_write_bytes(staging / file, data)
        manifest = {
            "version": name,
            "date": date,
            **provenance,
            "versions": package_versions(REPORT_PACKAGES),
            "config": matrix.get("config"),
            "aggregate": {key: aggregate.summary.get(key)
                          for key in ("reps", "seed", "confidence", "last_n", "allow_missing", "baseline")},
            "run_ids": aggregate.scores["run_id"].tolist(),
            "missing_run_ids": missing["run_id"].tolist(),
            "dropped": matrix.get("dropped", []),
            "files": sorted([*files, MANIFEST] + [f"figures/{p.name}" for p in figures]),
        }
        write_json(staging / MANIFEST, manifest)
        # A published report is readable by all, whatever the umask (mkdtemp makes the
        # folder private; the figures are written by matplotlib).
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
        if target.exists():  # another build published it meanwhile
            raise ReportError(f"{target} appeared while this report was built; it is left as it is")
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    write_reports_index(reports_root)
    return target
