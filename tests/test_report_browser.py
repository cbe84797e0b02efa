"""A report's index.html in a real headless browser (Debian's chromium) at 1400 px: every figure
and table is in the DOM after load, every image decodes, the sort script sorts without error;
on pages of the current layout the results come first (contents, claims, scopes with their
leaderboard before their figures, the recipe last and folded) and no number cell wraps.

Skipped, saying why, when no chromium binary is installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from plasticity_bench.analysis import report
from plasticity_bench.analysis.aggregate import aggregate

from test_stats import make_runs, write_suite

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH = 1400  # px: a laptop's browser window, the width the page is read at
CHROMIUM = next((path for path in map(shutil.which, BROWSERS) if path), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=f"no headless browser: none of {', '.join(BROWSERS)} on "
                                                         "PATH (apt-get install chromium; .ci/run installs it)")

#: Appended to a copy of the page: after load, it records what the page holds, then clicks the
#: IQM header of the longest leaderboard twice and records the IQM column after each click.
PROBE = """
<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.querySelectorAll('figure img'));
  // The leaderboard with the most methods (a scope of one method has nothing to sort).
  var board = Array.prototype.slice.call(document.querySelectorAll('table')).filter(function (t) {
    return t.tHead.rows[0].cells.length > 2 && t.tHead.rows[0].cells[2].textContent === 'IQM'; }).sort(
    function (a, b) { return b.tBodies[0].rows.length - a.tBodies[0].rows.length; })[0];
  // The lines a cell's text takes: the distinct tops of its text's boxes.
  function lines(cell) {
    var range = document.createRange();
    range.selectNodeContents(cell);
    var tops = {};
    Array.prototype.forEach.call(range.getClientRects(), function (r) {
      if (r.width > 0) tops[Math.round(r.top)] = 1; });
    return Object.keys(tops).length;
  }
  var wrapped = Array.prototype.filter.call(document.querySelectorAll('td:not(.text)'), function (cell) {
    return lines(cell) > 1; }).map(function (cell) { return cell.textContent; });
  var order = Array.prototype.map.call(document.querySelectorAll('body > nav, body > section, body > details, ' +
    'section > .scroll, section > figure, section > .claims'), function (node) {
      var tag = node.tagName.toLowerCase();
      return tag === 'section' || tag === 'details' ? node.id : tag + (node.className ? '.' + node.className : ''); });
  var recipe = document.getElementById('recipe');
  var record = {
    images: images.map(function (img) { return [img.getAttribute('src'), img.complete && img.naturalWidth > 0]; }),
    tables: document.querySelectorAll('table').length,
    ready: document.querySelectorAll('table[data-sortable=ready]').length,
    width: window.innerWidth, wrapped: wrapped, order: order,
    recipeOpen: recipe ? recipe.open : null};
  if (board) {
    var iqm = board.tHead.rows[0].cells[2];
    var column = function () { return Array.prototype.map.call(board.tBodies[0].rows, function (row) {
      return row.cells[2].textContent; }); };
    iqm.click(); record.ascending = column();
    iqm.click(); record.descending = column();
    record.sort = iqm.getAttribute('aria-sort');
  }
  document.body.setAttribute('data-probe', JSON.stringify(record));
});
</script>
"""


def probe(page: Path) -> tuple[dict, str]:
    """Load a copy of ``page`` with PROBE in chromium; (the probe's record, chromium's log)."""
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    try:
        done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                               "--v=0", f"--window-size={WIDTH},900", "--hide-scrollbars",
                               "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                              capture_output=True, text=True, timeout=120)
    finally:
        probed.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"data-probe=\"([^\"]*)\"", done.stdout)
    assert found, "the probe did not run: " + done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")), done.stderr


def leading_number(cell: str) -> float:
    return float(cell.split()[0])


@pytest.fixture(scope="module")
def toy_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(root / "suites")))
        matrix, runs = make_runs(root, [(m, arch) for m in ("none", "regrama", "redo") for arch in ("mlp", "residual")])
        aggregate(matrix, runs, root / "aggregate", reps=200, seed=0)
        return report.build_report(root / "aggregate", root / "reports", matrix)


def published_reports() -> list[Path]:
    """Committed reports whose page has the sortable tables (the newest layout)."""
    return sorted(page.parent for page in (ROOT / "reports").glob("*/index.html")
                  if "data-sortable" in page.read_text())


def check_page(folder: Path) -> None:
    page = folder / "index.html"
    record, log = probe(page)
    assert "Uncaught" not in log, log[-2000:]  # no script error
    pngs = sorted(p.name for p in (folder / "figures").glob("*.png"))
    assert sorted(src.removeprefix("figures/") for src, _ in record["images"]) == pngs
    assert all(loaded for _, loaded in record["images"]), [src for src, loaded in record["images"] if not loaded]
    assert record["tables"] == page.read_text().count("<table") and record["tables"] >= 2
    assert record["ready"] == record["tables"]  # the sort script made every table sortable
    ascending = [leading_number(iqm) for iqm in record["ascending"] if iqm != "-"]
    descending = [leading_number(iqm) for iqm in record["descending"] if iqm != "-"]
    assert len(ascending) >= 2
    assert ascending == sorted(ascending) and descending == sorted(descending, reverse=True)
    assert record["sort"] == "descending"
    if "id=\"recipe\"" in page.read_text():  # the current layout (older published pages predate it)
        check_layout(record)


def check_layout(record: dict) -> None:
    """Contents first, then the results (claims; each scope's leaderboard before its figures), the
    recipe last and folded; no number cell wraps at WIDTH px."""
    assert record["width"] == WIDTH
    assert record["wrapped"] == [], record["wrapped"][:5]
    order = record["order"]
    assert order[0] == "nav" and order[-1] == "recipe" and record["recipeOpen"] is False
    sections = [i for i, item in enumerate(order) if item not in ("nav", "recipe", "div.scroll", "figure",
                                                                  "div.claims")]
    assert sections, order
    for start, end in zip(sections, sections[1:] + [len(order) - 1]):
        inside = order[start + 1:end]
        if order[start] == "claims":
            assert inside == ["div.claims"], inside
        elif order[start] != "sensitivity":  # a scope: its leaderboard, then its figures
            assert inside[:1] == ["div.scroll"] and "div.scroll" not in inside[1:], (order[start], order)


def test_report_page_in_a_headless_browser(toy_report):
    check_page(toy_report)
    record, log = probe(toy_report.parent / "index.html")  # the index of all versions
    assert "Uncaught" not in log and record["ready"] == record["tables"] == 1


@pytest.mark.parametrize("folder", published_reports(), ids=lambda folder: folder.name)
def test_published_report_pages_in_a_headless_browser(folder):
    check_page(folder)
