"""A report's index.html in a real headless browser (Debian's chromium): every figure and table
is in the DOM after load, every image decodes, and the sort script sorts without error.

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
CHROMIUM = next((path for path in map(shutil.which, BROWSERS) if path), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=f"no headless browser: none of {', '.join(BROWSERS)} on "
                                                         "PATH (apt-get install chromium; .ci/run installs it)")

#: Appended to a copy of the page: after load, it records what the page holds, then clicks the
#: IQM header of the first leaderboard twice and records the IQM column after each click.
PROBE = """
<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.querySelectorAll('figure img'));
  var board = Array.prototype.slice.call(document.querySelectorAll('table')).filter(function (t) {
    return t.tHead.rows[0].cells.length > 2 && t.tHead.rows[0].cells[2].textContent === 'IQM'; })[0];
  var record = {
    images: images.map(function (img) { return [img.getAttribute('src'), img.complete && img.naturalWidth > 0]; }),
    tables: document.querySelectorAll('table').length,
    ready: document.querySelectorAll('table[data-sortable=ready]').length};
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
                               "--v=0", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
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


def test_report_page_in_a_headless_browser(toy_report):
    check_page(toy_report)
    record, log = probe(toy_report.parent / "index.html")  # the index of all versions
    assert "Uncaught" not in log and record["ready"] == record["tables"] == 1


@pytest.mark.parametrize("folder", published_reports(), ids=lambda folder: folder.name)
def test_published_report_pages_in_a_headless_browser(folder):
    check_page(folder)
