"""Versioned reports: leaderboard (md/csv/tex), figures, index.html and a manifest.

``build_report`` turns an aggregate dir (``analysis.aggregate``) into
``<reports_root>/<version>/``::

    leaderboard.md  leaderboard.csv  leaderboard.tex  missing.md (only if runs were missing)
    claims.md  claims.csv (only if the config lists claims: analysis.claims)
    scores.csv      figures/*.pdf figures/*.png      index.html       manifest.json
    data/*.parquet  data/aggregate.json

``data/`` holds what the figures are drawn from: every table of the aggregate as Parquet
(per-run eval curves included: ``run_curves``) with its ``aggregate.json``, and, when the run
records are at hand, every run's metric curves over training (``run_metrics.parquet``: the
monitor's rows over all layers of a network, ``layer == "all"``; per-layer rows stay in each
run's ``metrics.parquet``). ``read_report_data`` reads it back as an ``Aggregate``, so
``plasticity-bench plot --aggregate reports/<version>`` redraws any figure from the folder
alone, into another folder.

and regenerates ``<reports_root>/index.md`` and ``index.html`` (``analysis.page``) from the manifests
of every version there.

The leaderboard and its renderings are ``analysis.leaderboard``'s. ``scores.csv`` holds one row
per aggregated run (run id, scope, method, task, seed, raw final return, normalised score,
AUC, whether it is in the overall scope): with the bootstrap settings in ``manifest.json``
every leaderboard row can be recomputed from it with rliable alone (``reproduction_note``).

Versions and overwriting. The default version is ``v<package version>-<config_hash[:8]>-
<git sha[:7]>`` (``-dirty`` with uncommitted changes; ``provenance.default_version``), the
name the workflow gives the same report. A report's *provenance* is (package version, git sha, git dirty flag, hash of the
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
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

import plasticity_bench
from plasticity_bench.analysis import curve_plots, plots
from plasticity_bench.analysis.claims import claims_markdown
from plasticity_bench.analysis.latex import leaderboard_tex
from plasticity_bench.analysis.leaderboard import leaderboard, leaderboard_markdown
from plasticity_bench.analysis.page import task_normalisations, version_page, versions_page
from plasticity_bench.analysis.runs import load_matrix
from plasticity_bench.analysis.vocabulary import (AGGREGATE_SCORE_COLUMNS, FILES, LEARNED_ABOVE, SCOPE, SUMMARY,
                                                  Aggregate, AnalysisError, read_aggregate, scope_title)
from plasticity_bench.provenance import code_groups, code_version, default_version, package_versions
from plasticity_bench.results import (DIR_MODE, FILE_MODE, CorruptRecordError, atomic_write_bytes, read_manifest,
                                      write_json, write_parquet)

PROVENANCE_KEYS = ("package_version", "git_sha", "git_dirty", "git_diff_sha256", "config_hash", "aggregate_sha256")
REPORT_PACKAGES = ("plasticity-bench", "torch", "numpy", "pandas", "scipy", "rliable",
                      "arch", "matplotlib", "seaborn")
MANIFEST = "manifest.json"
SCORES = "scores.csv"
#: The aggregate settings a reader needs to recompute the report (copied into its manifest).
AGGREGATE_SETTINGS = ("reps", "seed", "confidence", "final_window", "learned_above", "allow_missing", "baseline")


DATA = "data"
#: Every run's metric curves in a report's data folder (columns ``RUN_METRIC_COLUMNS``).
RUN_METRICS = "run_metrics.parquet"
RUN_METRIC_COLUMNS = ["run_id", "step", "network", "metric", "value"]


class ReportError(Exception):
    """A user-facing problem building a report (inputs disagree, version taken...)."""


# ----------------------------------------------------------------------------- data


def run_metric_curves(run_ids: Iterable[str], runs_dir: Path) -> pd.DataFrame:
    """The ``layer == "all"`` rows of each run's ``metrics.parquet`` (runs without one: none)."""
    frames = []
    for run_id in run_ids:
        path = Path(runs_dir) / run_id / "metrics.parquet"
        if not path.exists():
            continue
        rows = pd.read_parquet(path)
        rows = rows[rows["layer"] == "all"]
        frames.append(rows.assign(run_id=run_id)[RUN_METRIC_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=RUN_METRIC_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def write_report_data(aggregate: Aggregate, folder: Path, runs_dir: Path | None = None) -> list[str]:
    """Write the aggregate's tables as Parquet, its summary and (given ``runs_dir``) every run's
    metric curves into ``folder``; returns the file names."""
    folder = Path(folder)
    names = []
    for name, table in aggregate.tables().items():
        write_parquet(folder / f"{name}.parquet", table)
        names.append(f"{name}.parquet")
    if runs_dir is not None:
        write_parquet(folder / RUN_METRICS, run_metric_curves(aggregate.scores["run_id"], runs_dir))
        names.append(RUN_METRICS)
    write_json(folder / SUMMARY, aggregate.summary)
    return names + [SUMMARY]


def read_report_data(report: Path) -> Aggregate:
    """The aggregate a published report was drawn from (its ``data/`` folder).

    Raises AnalysisError when the folder is no report, or a report published before reports
    carried their data."""
    report = Path(report)
    folder = report / DATA
    if not (folder / SUMMARY).exists():
        if (report / MANIFEST).exists():
            raise AnalysisError(f"report {report} predates report data (no {DATA}/{SUMMARY}): redraw it from the "
                                "aggregate folder it was built from (results/aggregate/<config>) or rebuild it")
        raise AnalysisError(f"{report} is neither an aggregate nor a report folder (no {SUMMARY}, no {DATA}/{SUMMARY})")
    tables = {}
    for name in FILES:
        path = folder / f"{name}.parquet"
        if not path.exists():
            raise AnalysisError(f"report {report} lacks {DATA}/{name}.parquet")
        tables[name] = pd.read_parquet(path)
    return Aggregate(**tables, summary=json.loads((folder / SUMMARY).read_text()))


def report_metrics(report: Path) -> list[str] | None:
    """The metrics a published report drew curves of (its manifest's ``report_metrics``)."""
    manifest = Path(report) / MANIFEST
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("report_metrics")


def published_report_of(path: Path) -> Path | None:
    """The published report folder that holds ``path`` (or is it), if any: it has a manifest
    naming its version and a page."""
    for folder in [Path(path).resolve(), *Path(path).resolve().parents]:
        manifest = folder / MANIFEST
        if manifest.exists() and (folder / "index.html").exists():
            try:
                if "version" in json.loads(manifest.read_text()):
                    return folder
            except (json.JSONDecodeError, OSError):
                continue
    return None


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


# ----------------------------------------------------------------------------- provenance


def aggregate_digest(aggregate_dir: Path) -> str:
    """SHA-256 over the files ``vocabulary.write_aggregate`` wrote (same runs, same digest)."""
    digest = hashlib.sha256()
    for name in sorted([*FILES.values(), SUMMARY]):
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


VERSIONS_HEADER = ["version", "date", "package", "git sha", "dirty", "config hash", "runs", "missing"]


def write_reports_index(reports_root: Path) -> list[Path]:
    """Regenerate ``reports_root/index.md`` and ``index.html`` from every version's manifest (newest first)."""
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
    rows = [[str(m.get("version")), m.get("date"), m.get("package_version"), (m.get("git_sha") or "-")[:12],
             m.get("git_dirty"), str(m.get("config_hash"))[:12], len(m.get("run_ids", [])),
             len(m.get("missing_run_ids", []))] for m in manifests]
    lines = ["# Reports", "", "One directory per version; a version is never overwritten by another code "
             "version or config.", "",
             "| " + " | ".join(VERSIONS_HEADER) + " |", "|---|---|---|---|---|---|---:|---:|"]
    for version, *rest in rows:
        cells = [f"[{version}]({version}/index.html)", *rest]
        lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    paths = [reports_root / "index.md", reports_root / "index.html"]
    atomic_write_bytes(paths[0], ("\n".join(lines) + "\n").encode())
    html_rows = [[cell if cell is not None else "-" for cell in row] for row in rows]
    atomic_write_bytes(paths[1], versions_page(html_rows, VERSIONS_HEADER).encode())
    return paths


# ----------------------------------------------------------------------------- build


def final_score_note(summary: Mapping) -> str:
    window = summary.get("final_window")
    return (f"Final score of a run: the mean normalised return of its evaluations in the last {window:.0%} of its step "
            f"budget (steps >= last eval step - {window:g} x budget; the last evaluation alone when no other falls in "
            "it); scores.csv gives each run's final_evals.")


def reproduction_note(summary: Mapping) -> str:
    """How to recompute a leaderboard row from scores.csv with rliable alone."""
    return (
        f"To recompute a row from {SCORES}: take the row's runs (its scope and method; for the overall scope the "
        "method's runs with in_overall true, each task named suite/algo/arch/task), build the (seeds x tasks) matrix "
        "of their score column (tasks in alphabetical order as columns, seeds ascending as rows), then call "
        f"np.random.seed({summary.get('seed')}) and rliable.library.get_interval_estimates({{method: matrix}}, "
        "lambda x: np.array([rliable.metrics.aggregate_iqm(x)]), "
        f"reps={summary.get('reps')}, confidence_interval_size={summary.get('confidence')}) (the AUC column: the "
        "same on the auc column). Seed numpy before each call: rliable 1.2.0 ignores random_state and draws its "
        "bootstrap from numpy's global RNG.")


def _downloads(has_missing: bool, has_claims: bool) -> list[str]:
    """Links (HTML) to the report's files besides the page."""
    files = [("leaderboard.csv", ""), ("leaderboard.tex", ""), (SCORES, " (one row per run)"), (MANIFEST, ""),
             (f"{DATA}/", " (what the figures are drawn from: plasticity-bench plot --report redraws them)")]
    files += [("missing.md", "")] if has_missing else []
    files += [("claims.md", ""), ("claims.csv", "")] if has_claims else []
    return [f"<a href=\"{name}\">{name}</a>{note}" for name, note in files]


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def runs_code(runs_dir: Path, run_ids: Iterable[str]) -> dict[str, list[str]]:
    """Package fingerprint → the runs of ``run_ids`` that it trained (provenance.code_groups)."""
    manifests = {}
    for run_id in run_ids:
        try:
            manifests[run_id] = read_manifest(runs_dir / run_id) or {}
        except CorruptRecordError:
            manifests[run_id] = {}
    return code_groups(manifests)


def runs_groupings(runs_dir: Path, run_ids: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """Configurations (a spec without its seed) whose runs trained in stacks of different
    sizes: cell → {stack sizes, e.g. "5" or "5,1" after a change: the runs}. A seed's numbers
    depend in the last bits on its stack's size (training/stack.py), so such runs are not
    trained alike. Runs without the record (older manifests) are left out."""
    cells: dict[str, dict[str, list[str]]] = {}
    for run_id in run_ids:
        try:
            manifest = read_manifest(runs_dir / run_id) or {}
        except CorruptRecordError:
            continue
        history, spec = manifest.get("trained_with"), manifest.get("spec")
        if not isinstance(history, list) or not history or not isinstance(spec, dict):
            continue
        cell = json.dumps({key: value for key, value in spec.items() if key != "seed"}, sort_keys=True)
        label = f"{spec.get('algo')}-{spec.get('arch')}-{spec.get('method')}-{spec.get('task')} {cell}"
        sizes = ",".join(str(len(entry.get("stack") or [])) for entry in history if isinstance(entry, dict))
        cells.setdefault(label, {}).setdefault(sizes, []).append(run_id)
    return {cell: {sizes: sorted(ids) for sizes, ids in sorted(by_size.items())}
            for cell, by_size in sorted(cells.items()) if len(by_size) > 1}


def build_report(
    aggregate_dir: Path,
    reports_root: Path,
    matrix: Mapping | Path,
    version: str | None = None,
    metrics: Iterable[str] | None = None,
    runs_dir: Path | None = None,
    strict_code: bool = False,
) -> Path:
    """Assemble ``reports_root/<version>/`` from an aggregate dir; returns that directory.

    Args:
      aggregate_dir: written by ``analysis.aggregate`` (must carry the matrix's config hash).
      reports_root: parent of all versions; its ``index.md`` and ``index.html`` are regenerated.
      matrix: the ``matrix.json`` dict or its path.
      version: explicit version name; default ``v<package>-<config_hash[:8]>`` (+ suffix).
      metrics: metrics to draw curves of (names or ``name@`` prefixes, as ``plasticity-bench
        plot``); default the stored ones of ``plots.REPORT_METRICS``.
      runs_dir: the run records (``results/runs``); given, ``data/`` carries every run's metric
        curves too.
        The report then also says which package code trained which runs when they differ
        (``strict_code``: refuse such a report).
    Raises:
      ReportError: the aggregate belongs to another matrix, or ``version`` is taken by a
        report with another provenance.
      AnalysisError: the aggregate dir or matrix cannot be read.
    """
    reports_root = Path(reports_root)
    if not isinstance(matrix, Mapping):
        matrix = load_matrix(Path(matrix))
    aggregate = read_aggregate(aggregate_dir)
    config_hash = matrix.get("config_hash")
    if not config_hash:
        raise ReportError("the matrix has no config_hash")
    if aggregate.summary.get("config_hash") != config_hash:
        raise ReportError(f"aggregate {aggregate_dir} was made from config {aggregate.summary.get('config_hash')}, "
                          f"not the matrix's {config_hash}; rerun aggregate")

    code = runs_code(Path(runs_dir), aggregate.scores["run_id"]) if runs_dir is not None else {}
    mixed = "; ".join(f"{fingerprint[:12]}: {', '.join(ids)}" for fingerprint, ids in code.items()) if len(code) > 1 else ""
    if mixed and strict_code:
        raise ReportError(f"the runs were trained by different package code (fingerprint: runs): {mixed}; "
                          "retrain them with one version of the code, or build without --strict-code")
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
    summary = aggregate.summary
    learned_above = summary.get("learned_above", LEARNED_ABOVE)
    headline = [
        f"Config {config_hash}; code {provenance['git_sha'] or 'unknown'}"
        + (" (uncommitted changes)" if provenance["git_dirty"] else "") + f"; built {date}.",
        f"{len(aggregate.scores)} runs aggregated; {len(missing)} expected runs missing; bootstrap "
        f"reps {summary.get('reps')}, seed {summary.get('seed')}, confidence {summary.get('confidence')}.",
    ]
    recipe = [final_score_note(summary), reproduction_note(summary)]
    warnings = []
    if len(missing):
        warnings.append(f"WARNING: {len(missing)} expected runs are missing; see missing.md.")
    if mixed:
        warnings.append(f"WARNING: runs trained by different package code (fingerprint: runs): {mixed}.")
    groupings = runs_groupings(Path(runs_dir), aggregate.scores["run_id"]) if runs_dir is not None else {}
    if groupings:
        warnings.append("WARNING: runs of one configuration trained in different seed groupings (stack sizes: "
                        "runs; a seed's numbers depend in the last bits on its stack's size): " + "; ".join(
                            " / ".join(f"{sizes}: {', '.join(ids)}" for sizes, ids in by_size.items())
                            for by_size in groupings.values()) + ".")
    if summary.get("unlearned_scopes"):
        warnings.append(f"Unlearned at this budget (no method's IQM CI upper bound above {learned_above:g}), flagged "
                        "below and left out of the overall scope: " + "; ".join(
                            scope_title(tuple(scope[column] for column in SCOPE))
                            for scope in summary["unlearned_scopes"]) + ".")
    overall = aggregate.summary.get("overall") or {}
    if overall.get("excluded"):
        warnings.append("Left out of the overall scope for lacking cells: " + "; ".join(
            f"{method} ({len(cells)} of {overall.get('cells')} cells missing)"
            for method, cells in overall["excluded"].items()) + ".")
    notes = headline + recipe + warnings  # leaderboard.md: all of them, in this order

    reports_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=reports_root, prefix=f".{name}.", suffix=".tmp"))
    try:
        drawn_metrics = curve_plots.metric_names(aggregate.metric_curves, metrics) if metrics is not None \
            else curve_plots.stored_report_metrics(aggregate.metric_curves)
        look = plots.aggregate_look(aggregate)
        figures = plots.plot_all(aggregate, staging / "figures", metrics=drawn_metrics, look=look)
        data_files = write_report_data(aggregate, staging / DATA, runs_dir)
        page = version_page(title, board, figures, headline,
                            _downloads(bool(len(missing)), bool(len(aggregate.claims))), summary,
                            task_normalisations(aggregate.scores), look.names,
                            learned_above, aggregate.claims, recipe=recipe, warnings=warnings)
        files = {
            "leaderboard.csv": _csv_bytes(board),
            "leaderboard.md": leaderboard_markdown(board, title, notes, learned_above).encode(),
            "leaderboard.tex": leaderboard_tex(board, look.names, confidence=summary.get("confidence", 0.95)).encode(),
            SCORES: _csv_bytes(aggregate.scores[AGGREGATE_SCORE_COLUMNS]),
            "index.html": page.encode(),
        }
        if len(missing):
            files["missing.md"] = missing_markdown(missing).encode()
        if len(aggregate.claims):
            files["claims.csv"] = _csv_bytes(aggregate.claims)
            files["claims.md"] = claims_markdown(aggregate.claims, summary.get("reps")).encode()
        for file, data in files.items():
            atomic_write_bytes(staging / file, data)
        manifest = {
            "version": name,
            "date": date,
            **provenance,
            "versions": package_versions(REPORT_PACKAGES),
            "config": matrix.get("config"),
            "aggregate": {key: summary.get(key) for key in AGGREGATE_SETTINGS},
            "reproduce": reproduction_note(summary),
            "run_ids": aggregate.scores["run_id"].tolist(),
            "code": code,  # package fingerprint → the runs it trained (with runs_dir)
            "seed_groupings": groupings,  # configurations whose runs trained in stacks of different sizes
            "missing_run_ids": missing["run_id"].tolist(),
            "dropped": matrix.get("dropped", []),
            "report_metrics": drawn_metrics,
            "files": sorted([*files, MANIFEST] + [f"figures/{p.name}" for figure in figures for p in figure.paths]
                            + [f"{DATA}/{name}" for name in data_files]),
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
