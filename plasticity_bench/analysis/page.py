"""The HTML pages of the reports: a version's ``index.html`` and the index of every version.

A version's page is self-contained (inline CSS and JavaScript, no network) and puts the
results first: a short summary with any warning, a table of contents, the claims (their
table beside their forest plot) when the config lists claims, then per scope its notes, its
leaderboard and its figures with captions saying what to read from them, the sensitivity
figures; the recipe (normalisation with each task's random and reference returns and their
sources, the final score, the CI method, how to recompute a row, downloads) closes the page
in a collapsible section. Every table sorts by a click on its header (``SORT_SCRIPT``; the
script marks each table it made sortable with ``data-sortable="ready"``); number cells never
wrap (a table wider than the window scrolls instead). Figures are shown at their physical
size times ``FIGURE_ZOOM`` (``width``/``height`` from the PNG and its dpi), never wider than
the page.
"""

from __future__ import annotations

import html
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from plasticity_bench.analysis.claims import CLAIM_HEADER, CLAIMS_NOTE, claim_rows
from plasticity_bench.analysis.display import DisplayNames
from plasticity_bench.analysis.leaderboard import BASELINE_NOTE, HEADER, RANKING_NOTE, display_rows, scope_notes
from plasticity_bench.analysis.style import PNG_DPI, Drawn, scope_slug
from plasticity_bench.analysis.vocabulary import LEARNED_ABOVE, SCOPE

CSS_PIXELS_PER_INCH = 96
#: Figures are shown this much larger than their printed size: a paper read on a screen is
#: zoomed about as much, and 8 pt text then reads at about 14 CSS px (10.7 px at 100%).
FIGURE_ZOOM = 1.3

STYLE = (
    "body{font-family:sans-serif;max-width:1340px;margin:1.5em auto;padding:0 1em;line-height:1.4}"
    "p,figcaption,li{max-width:60em}"
    ".scroll{overflow-x:auto;margin-bottom:1.5em}"
    "table{border-collapse:collapse;font-size:0.82em}"
    "th,td{border-bottom:1px solid #ccc;padding:0.25em 0.5em;text-align:right;vertical-align:top}"
    "td:not(.text),th:not(.text){white-space:nowrap}"
    "th:first-child,td:first-child,.text{text-align:left}"
    ".claims{display:flex;gap:1.5em;align-items:flex-start}.claims .scroll{flex:1 1 0;min-width:0}"
    ".claims figure{margin:0;flex:0 0 auto;width:min-content}.claims img{max-width:none}"
    ".claims td.text{min-width:9em}"
    ".claims td.text:nth-child(2){min-width:16em}"
    # the detail column holds a claim's group sizes and notes: wide, so a long note does
    # not make its row many lines tall
    ".claims td.text:last-child{min-width:24em}"
    "details{margin:2em 0}summary{font-size:1.3em;font-weight:bold;cursor:pointer}"
    ".warning{background:#fff4e5;border-left:4px solid #D55E00;padding:0.4em 0.8em}"
    "table[data-sortable] th{cursor:pointer;user-select:none;background:#f4f4f4}"
    "th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}"
    "figure{margin:1em 0 2em}figcaption{font-size:0.9em;color:#333}"
    "img{max-width:100%;height:auto}nav ul{columns:2}td.source{font-size:0.85em;max-width:40em}"
)

#: Sorts a table by a click on a header: numbers by the first number of a cell ("0.512 [0.4, 0.6]"),
#: otherwise as text; empty and "-" cells last. Marks each table it made sortable.
SORT_SCRIPT = """
(function () {
  function key(cell) {
    var text = (cell.getAttribute('data-sort') || cell.textContent).trim();
    if (text === '' || text === '-') return null;
    var number = parseFloat(text);
    return isNaN(number) ? text.toLowerCase() : number;
  }
  function compare(a, b, direction) {
    if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);
    if (typeof a !== typeof b) return (typeof a === 'number' ? -1 : 1);
    return (a < b ? -1 : a > b ? 1 : 0) * direction;
  }
  function sortBy(table, column, header) {
    var direction = header.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    table.querySelectorAll('th').forEach(function (th) { th.removeAttribute('aria-sort'); });
    header.setAttribute('aria-sort', direction === 1 ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) { return compare(key(x.cells[column]), key(y.cells[column]), direction); });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll('table[data-sortable]').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (header, column) {
      header.addEventListener('click', function () { sortBy(table, column, header); });
    });
    table.setAttribute('data-sortable', 'ready');
  });
})();
"""


def _esc(text) -> str:
    return html.escape(str(text))


def table_html(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: Iterable[int] = (0,),
               classes: Mapping[int, str] | None = None) -> str:
    """A sortable table; ``text_columns`` are left-aligned."""
    text_columns = set(text_columns)
    classes = dict(classes or {})

    def cell(i: int, value) -> str:
        names = " ".join(name for name in (("text" if i in text_columns else ""), classes.get(i, "")) if name)
        return f"<td class=\"{names}\">{_esc(value)}</td>" if names else f"<td>{_esc(value)}</td>"

    parts = ["<table data-sortable><thead><tr>" + "".join(
        f"<th class=\"text\">{_esc(h)}</th>" if i in text_columns else f"<th>{_esc(h)}</th>"
        for i, h in enumerate(header)) + "</tr></thead><tbody>"]
    parts += ["<tr>" + "".join(cell(i, value) for i, value in enumerate(row)) + "</tr>" for row in rows]
    return "<div class=\"scroll\">" + "\n".join(parts + ["</tbody></table>"]) + "</div>"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    with open(path, "rb") as file:
        header = file.read(24)
    return struct.unpack(">II", header[16:24])


def figure_html(figure: Drawn) -> str:
    """The PNG at its printed size times FIGURE_ZOOM (capped by the page width), its caption and a
    link to the PDF."""
    png = next((p for p in figure.paths if p.suffix == ".png"), None)
    if png is None:
        return ""
    width, height = (round(n * CSS_PIXELS_PER_INCH * FIGURE_ZOOM / PNG_DPI) for n in png_size(png))
    pdf = next((p for p in figure.paths if p.suffix == ".pdf"), None)
    link = f" (<a href=\"figures/{_esc(pdf.name)}\">PDF</a>)" if pdf else ""
    return (f"<figure id=\"fig-{_esc(png.stem)}\"><img src=\"figures/{_esc(png.name)}\" width=\"{width}\" "
            f"height=\"{height}\" alt=\"{_esc(figure.caption)}\"><figcaption>{_esc(figure.caption)}{link}"
            "</figcaption></figure>")


@dataclass(frozen=True)
class TaskNormalisation:
    suite: str
    task: str
    random: float | None
    reference: float | None
    source: str


def task_normalisations(scores: pd.DataFrame) -> list[TaskNormalisation]:
    """Random and reference returns, with their sources, of every (suite, task) of ``scores``, from
    the suite files (``environments.suites``)."""
    from plasticity_bench.environments.suites import load_suite  # data files, read only for this table

    rows = []
    for suite_name, task in sorted(set(zip(scores["suite"], scores["task"]))):
        try:
            score = load_suite(suite_name).tasks[task]
        except (ValueError, KeyError) as error:
            rows.append(TaskNormalisation(suite_name, task, None, None, f"not found: {error}"))
            continue
        rows.append(TaskNormalisation(suite_name, task, score.random, score.reference, score.source))
    return rows


def method_html(summary: Mapping, tasks: list[TaskNormalisation], names: DisplayNames) -> list[str]:
    """How the numbers are made: normalisation, the task table, the CI method."""
    confidence = summary.get("confidence", 0.95)
    rows = [[names.suite(t.suite), names.task(t.task), "-" if t.random is None else f"{t.random:g}",
             "-" if t.reference is None else f"{t.reference:g}", t.source] for t in tasks]
    return [
        "<p>Every score is normalised per task: (return &minus; random) / (reference &minus; random), so 0 is the "
        "return of a uniform random policy and 1 the reference return. The random and reference returns of this "
        "report's tasks, from the suite files (<code>plasticity_bench/suites/*.yaml</code>):</p>",
        table_html(["suite", "task", "random", "reference", "source"], rows, text_columns=(0, 1, 4),
                   classes={4: "source"}),
        f"<p>Intervals are {confidence:.0%} percentile confidence intervals from a stratified bootstrap over runs "
        f"(tasks are strata; {_esc(summary.get('reps'))} resamples, seed {_esc(summary.get('seed'))}): rliable for "
        "the score statistics, probability of improvement, performance profiles and sample-efficiency curves; a "
        "vectorised numpy bootstrap of the mean over runs for the per-task return and metric curves. Raw returns "
        "in the per-task and per-run figures are not normalised.</p>",
    ]


def three_significant(value) -> str:
    """A claim's number at 3 significant digits ("-0.0211", "0.84", "0")."""
    return "" if pd.isna(value) else f"{float(value):.3g}"


def claim_table_rows(claims: pd.DataFrame) -> list[list[str]]:
    """The claims' cells (``CLAIM_HEADER`` after a number column), numbers at 3 significant digits."""
    rows = []
    for number, (cells, claim) in enumerate(zip(claim_rows(claims), claims.itertuples()), start=1):
        cells[4] = three_significant(claim.measured)
        cells[5] = "" if pd.isna(claim.ci_low) else \
            f"[{three_significant(claim.ci_low)}, {three_significant(claim.ci_high)}]"
        rows.append([str(number), *cells])
    return rows


#: Columns of the claims table read as text (left-aligned, may wrap): claim, source, statistic,
#: expected side, verdict, detail (after the number column).
CLAIM_TEXT_COLUMNS = (1, 2, 3, 4, 7, 9)


def _section(anchor: str, title: str) -> str:
    return f"<section id=\"{_esc(anchor)}\"><h2>{_esc(title)}</h2>"


def version_page(title: str, board: pd.DataFrame, figures: list[Drawn], notes: list[str], downloads: list[str],
                 summary: Mapping, tasks: list[TaskNormalisation], names: DisplayNames,
                 learned_above: float = LEARNED_ABOVE, claims: pd.DataFrame | None = None,
                 recipe: Sequence[str] = (), warnings: Sequence[str] = ()) -> str:
    """A report version's ``index.html`` (see the module docstring).

    ``notes`` open the page (what was built from what), ``warnings`` follow them highlighted
    (missing runs, unlearned scopes), ``recipe`` goes to the closing section with the
    normalisation table and the downloads.
    """
    by_scope: dict[tuple | None, list[Drawn]] = {}
    for figure in figures:
        if figure.kind != "claims":
            by_scope.setdefault(None if figure.scope is None else tuple(figure.scope), []).append(figure)
    claim_figures = [figure for figure in figures if figure.kind == "claims"]
    scope_rows = display_rows(board, names.method)
    groups = dict(list(board.groupby(SCOPE, sort=False)))
    has_claims = claims is not None and len(claims) > 0

    toc = []
    if has_claims:
        toc.append("<li><a href=\"#claims\">Claims of the seed papers</a></li>")
    toc += [f"<li><a href=\"#{_esc(scope_slug(*scope))}\">{_esc(names.scope(scope))}</a></li>" for scope in scope_rows]
    if None in by_scope:
        toc.append("<li><a href=\"#sensitivity\">Sensitivity to method options</a></li>")
    toc.append("<li><a href=\"#recipe\">How the numbers are made, downloads</a></li>")
    toc.append("<li><a href=\"../index.html\">All report versions</a></li>")

    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>{_esc(title)}</title>",
             f"<style>{STYLE}</style>", "</head><body>", f"<h1>{_esc(title)}</h1>"]
    parts += [f"<p>{_esc(note)}</p>" for note in notes]
    parts += [f"<p class=\"warning\">{_esc(warning)}</p>" for warning in warnings]
    parts.append("<nav><h2>Contents</h2><ul>" + "".join(toc) + "</ul></nav>")
    if has_claims:
        parts += [_section("claims", "Claims of the seed papers, re-measured"), f"<p>{_esc(CLAIMS_NOTE)}</p>",
                  "<div class=\"claims\">",
                  table_html(["#", *CLAIM_HEADER], claim_table_rows(claims), text_columns=CLAIM_TEXT_COLUMNS)]
        parts += [figure_html(figure) for figure in claim_figures]
        parts += ["</div>", "</section>"]
    for scope, rows in scope_rows.items():
        parts.append(_section(scope_slug(*scope), names.scope(scope)))
        named = groups[scope].assign(method=groups[scope]["method"].map(names.method))  # notes name methods too
        parts += [f"<p>{_esc(note)}</p>" for note in scope_notes(named, learned_above)]
        parts.append(table_html(HEADER, rows, text_columns=(1,)))
        parts += [figure_html(figure) for figure in by_scope.get(tuple(scope), [])]
        parts.append("</section>")
    if None in by_scope:
        parts.append(_section("sensitivity", "Sensitivity to method options"))
        parts += [figure_html(figure) for figure in by_scope[None]]
        parts.append("</section>")
    parts += ["<details id=\"recipe\"><summary>How the numbers are made, downloads</summary>",
              f"<p>{_esc(RANKING_NOTE)} {_esc(BASELINE_NOTE)}</p>"]
    parts += [f"<p>{_esc(note)}</p>" for note in recipe]
    parts += method_html(summary, tasks, names)
    parts.append("<p>Downloads: " + ", ".join(downloads) + "</p></details>")
    parts += [f"<script>{SORT_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def versions_page(rows: list[list[str]], header: Sequence[str]) -> str:
    """``reports/index.html``: one row per version (the first cell links to its page)."""
    body = []
    for row in rows:
        version, *rest = row
        body.append(f"<tr><td class=\"text\"><a href=\"{_esc(version)}/index.html\">{_esc(version)}</a></td>"
                    + "".join(f"<td>{_esc(cell)}</td>" for cell in rest) + "</tr>")
    return "\n".join([
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>plasticity-bench reports</title>",
        f"<style>{STYLE}</style></head><body>", "<h1>plasticity-bench reports</h1>",
        "<p>One folder per version; a version is never overwritten by another code version or config.</p>",
        "<table data-sortable><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>",
        *body, "</tbody></table>", f"<script>{SORT_SCRIPT}</script>", "</body></html>"]) + "\n"
