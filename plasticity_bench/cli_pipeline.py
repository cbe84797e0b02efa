"""CLI commands of the analysis half of the pipeline: ``aggregate``, ``report``, ``plot`` and ``compare``.

Plain functions with typer annotations; ``cli.py`` mounts them with
``app.command("aggregate")(aggregate_command)``, ``app.command("report")(report_command)``,
``app.command("plot")(plot_command)`` and ``app.command("compare")(compare_command)``.
User errors (missing runs, unreadable inputs, a taken report version) print one line to
stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

USER_ERROR_EXIT = 2
FINAL_WINDOW_HELP = ("Fraction of each run's step budget whose evaluations the final score averages, "
                     "0 to 1 (0: the last evaluation alone).")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(USER_ERROR_EXIT)


def aggregate_command(
    matrix: Annotated[Path, typer.Option(help="matrix.json written by the workflow (expected runs).")],
    runs: Annotated[Path, typer.Option(help="Directory holding one folder per run (results/runs).")],
    out: Annotated[Path, typer.Option(help="Aggregate directory to write the CSVs into.")],
    reps: Annotated[int, typer.Option(min=1, help="Bootstrap replications per estimate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of numpy's global RNG before every rliable call.")] = 0,
    final_window: Annotated[float, typer.Option(help=FINAL_WINDOW_HELP)] = 0.1,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Aggregate even if expected runs are missing (listed in missing.csv).")] = False,
) -> None:
    """Aggregate run records into rliable interval estimates, curves and a missing-run table."""
    # heavy imports only when the command runs
    from plasticity_bench.analysis.aggregate import aggregate as aggregate_runs
    from plasticity_bench.analysis.runs import load_matrix
    from plasticity_bench.analysis.vocabulary import FILES, AnalysisError

    try:
        matrix_data = load_matrix(matrix)
        if not runs.is_dir():
            _fail(f"runs directory not found: {runs}")
        result = aggregate_runs(matrix_data, runs, out, reps=reps, seed=seed, final_window=final_window,
                                allow_missing=allow_missing)
    except AnalysisError as error:
        _fail(str(error))
    except OSError as error:  # e.g. --out is a file, or a place this user cannot write
        _fail(str(error))
    missing = len(result.missing)
    typer.echo(f"aggregated {len(result.scores)} runs into {out}"
               + (f" ({missing} missing, listed in {out / FILES['missing']})" if missing else ""))


def report_command(
    aggregate: Annotated[Path, typer.Option(help="Aggregate directory written by `aggregate`.")],
    matrix: Annotated[Path, typer.Option(help="matrix.json the aggregate was made from.")],
    reports: Annotated[Path, typer.Option(help="Root of the versioned reports.")] = Path("reports"),
    version: Annotated[Optional[str], typer.Option(
        help="Report version name (default v<package>-<config hash>); never overwrites another build.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option(
        help="Metrics to draw curves of, comma-separated or repeated; 'dormant_ratio' matches "
             "'dormant_ratio@0.1' [default: the stored ones of plots.REPORT_METRICS].")] = None,
    runs: Annotated[Optional[Path], typer.Option(
        help="The run records (results/runs): the report's data/ then carries every run's metric curves.")] = None,
    strict_code: Annotated[bool, typer.Option(
        "--strict-code", help="Refuse a report whose runs (--runs) were trained by different package code.")] = False,
) -> None:
    """Build the versioned report: leaderboard (md/csv/tex), figures, index.html, manifest, data/."""
    from plasticity_bench.analysis.report import ReportError, build_report
    from plasticity_bench.analysis.style import PlotError
    from plasticity_bench.analysis.vocabulary import AnalysisError

    try:
        if runs is not None and not runs.is_dir():
            _fail(f"runs directory not found: {runs}")
        target = build_report(aggregate, reports, matrix, version=version, metrics=_split(metric), runs_dir=runs,
                              strict_code=strict_code)
    except (AnalysisError, ReportError, PlotError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(str(error))
    typer.echo(f"report at {target}")


FIGURE_NAMES = ("interval_estimates", "plasticity_ratio", "sequence_returns", "performance_profile",
                "probability_of_improvement", "sample_efficiency", "task_curves", "run_curves", "sensitivity",
                "inactive_vs_dormant", "metric_curves", "claims")  # plots.FIGURES, without importing matplotlib here
COLUMNS = ("single", "double")  # style.WIDTHS


def _split(values: list[str] | None) -> list[str] | None:
    """Options given as ``a,b`` and/or repeated: one flat list (None when not given)."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _check_choices(option: str, given: list[str], valid: list[str] | tuple[str, ...]) -> None:
    for value in given:
        if value not in valid:
            _fail(f"{option}: unknown value {value!r}; valid: {', '.join(valid)}")


def _display_names(path: Optional[Path], renames: Optional[list[str]], summary: dict):
    """The aggregate's display names, overlaid with a --display-names file (the config's
    ``display_names`` mapping, YAML or JSON) and --method-name LABEL=NAME pairs."""
    import yaml

    from plasticity_bench.analysis.display import DisplayNames

    given = dict((summary.get("config") or {}).get("display_names") or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            _fail(f"--display-names {path}: {error}")
        if not isinstance(loaded, dict):
            _fail(f"--display-names {path}: give a mapping of sections (methods, metrics, ...) to names")
        loaded = loaded.get("display_names", loaded)  # a whole config file works too
        for section, names in loaded.items():  # each name over the config's; DisplayNames checks the sections
            given[section] = {**dict(given.get(section) or {}), **names} if isinstance(names, dict) else names
    for pair in renames or []:
        label, equals, name = pair.partition("=")
        if not equals or not label.strip() or not name.strip():
            _fail(f"--method-name {pair!r}: write LABEL=NAME, e.g. regrama='ReGraMa (ours)'")
        given.setdefault("methods", {})
        given["methods"] = {**dict(given["methods"]), label.strip(): name.strip()}
    return DisplayNames.from_config({"display_names": given})


def plot_command(
    out: Annotated[Path, typer.Option(help="Directory to write the figures into (never a published report).")],
    aggregate: Annotated[Optional[Path], typer.Option(
        "--aggregate", "--report",
        help="An aggregate folder written by `aggregate`, or a published report folder (reports/<version>), "
             "whose data/ holds what its figures were drawn from (no recomputation).")] = None,
    matrix: Annotated[Optional[Path], typer.Option(help="matrix.json of the runs (with --runs).")] = None,
    runs: Annotated[Optional[Path], typer.Option(help="Directory holding one folder per run (with --matrix).")] = None,
    figure: Annotated[Optional[list[str]], typer.Option(
        help="Figures to draw, comma-separated or repeated: " + ", ".join(FIGURE_NAMES) + " [default: all]")] = None,
    methods: Annotated[Optional[str], typer.Option(
        help="Comma-separated methods to show. From --aggregate: their stored statistics (colours as in the "
             "full figures); from --matrix/--runs: recomputed from their run records.")] = None,
    tasks: Annotated[Optional[str], typer.Option(
        help="Comma-separated subset of the matrix's tasks; recomputes the statistics from the run records.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option(
        help="Metrics for metric_curves, comma-separated or repeated; 'dormant_ratio' matches "
             "'dormant_ratio@0.1' [default: a report's own, else every stored metric].")] = None,
    format: Annotated[str, typer.Option(help="Comma-separated figure formats: pdf, png, svg.")] = "pdf,png",
    column: Annotated[Optional[str], typer.Option(
        help="Draw every figure one column (single, 3.25 in) or two columns (double, 6.75 in) wide "
             "[default: each figure its own].")] = None,
    font_size: Annotated[float, typer.Option(help="Font size in points at the printed width, 8 to 16.")] = 8.0,
    display_names: Annotated[Optional[Path], typer.Option(
        help="YAML/JSON file with display names, as a config's display_names (methods, metrics, suites, algos, "
             "archs, tasks, networks, variants).")] = None,
    method_name: Annotated[Optional[list[str]], typer.Option(
        help="A method's display name, LABEL=NAME, repeatable (e.g. --method-name 'regrama=ReGraMa (ours)').")] = None,
    reps: Annotated[int, typer.Option(min=1, help="Bootstrap replications when recomputing.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of numpy's global RNG before every rliable call.")] = 0,
    final_window: Annotated[float, typer.Option(help=FINAL_WINDOW_HELP + " When recomputing.")] = 0.1,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="When recomputing, go on without the expected runs that are missing.")] = False,
) -> None:
    """Redraw figures from a report folder, an aggregate or run records, without retraining.

    With --aggregate (an aggregate or a published report folder) the stored statistics are
    drawn as they are. With --matrix and --runs they are computed (in memory, seeded) from
    the run records, restricted to --methods / --tasks when given. Published report folders
    are never written to: --out must lie outside them.
    """
    figures = _split(figure) or list(FIGURE_NAMES)
    _check_choices("--figure", figures, FIGURE_NAMES)
    formats = _split([format]) or []
    if not formats:
        _fail("--format: give at least one of pdf, png, svg")
    _check_choices("--format", formats, ("pdf", "png", "svg"))
    if column is not None:
        _check_choices("--column", [column], COLUMNS)
    if aggregate is not None and (matrix is not None or runs is not None):
        _fail("give either --aggregate or --matrix with --runs, not both")
    if aggregate is None and (matrix is None or runs is None):
        _fail("give --aggregate (an aggregate or report folder), or --matrix with --runs")
    if aggregate is not None and tasks is not None:
        _fail("--tasks recomputes the statistics from the run records: give --matrix and --runs instead of "
              "--aggregate")
    wanted_methods = None if methods is None else _split([methods]) or []
    if wanted_methods == []:
        _fail("--methods: empty list")

    # heavy imports only when the command runs
    from plasticity_bench.analysis import curve_plots, plots
    from plasticity_bench.analysis.aggregate import aggregate as aggregate_runs
    from plasticity_bench.analysis.report import published_report_of, read_report_data, report_metrics
    from plasticity_bench.analysis.runs import load_matrix
    from plasticity_bench.analysis.vocabulary import SUMMARY, AnalysisError, read_aggregate

    published = published_report_of(out)
    if published is not None:
        _fail(f"--out {out} is inside the published report {published}, which is never modified; write the "
              "figures elsewhere")
    try:
        default_metrics = None
        if aggregate is not None:
            if (aggregate / SUMMARY).exists() or not aggregate.exists():
                result = read_aggregate(aggregate)
            else:
                result = read_report_data(aggregate)
                default_metrics = report_metrics(aggregate)
            if wanted_methods is not None:
                _check_choices("--methods", wanted_methods, plots.method_order(plots.aggregate_methods(result)))
        else:
            matrix_data = load_matrix(matrix)
            if not runs.is_dir():
                _fail(f"runs directory not found: {runs}")
            planned = matrix_data["runs"]
            for option, column_name, given in (("--methods", "method", methods), ("--tasks", "task", tasks)):
                if given is None:
                    continue
                wanted = _split([given]) or []
                if not wanted:
                    _fail(f"{option}: empty list")
                valid = sorted({run[column_name] for run in planned})
                _check_choices(option, wanted, valid)
                planned = [run for run in planned if run[column_name] in wanted]
            result = aggregate_runs({**matrix_data, "runs": planned}, runs, reps=reps, seed=seed,
                                    final_window=final_window, allow_missing=allow_missing)
            wanted_methods = None  # the recomputed aggregate holds just those methods
        metrics = _split(metric) or default_metrics
        if metrics is not None and "metric_curves" in figures:
            metrics = curve_plots.metric_names(result.metric_curves, metrics)  # unknown names: PlotError below
        look = plots.aggregate_look(result, _display_names(display_names, method_name, result.summary),
                                    font_size=font_size, column=column)
        drawn = plots.plot_all(result, out, figures=figures, formats=formats, metrics=metrics, look=look,
                               methods=wanted_methods)
    except (AnalysisError, plots.PlotError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(str(error))
    kinds = {figure.kind for figure in drawn}
    for name in figures:
        if name not in kinds:
            typer.echo(f"note: {name}: nothing to draw (the records hold no data for it)", err=True)
    typer.echo(f"wrote {sum(len(figure.paths) for figure in drawn)} files to {out}")


def compare_command(
    report_a: Annotated[Path, typer.Argument(help="Report folder A (reports/<version>), the reference.")],
    report_b: Annotated[Path, typer.Argument(help="Report folder B, compared with A.")],
    out: Annotated[Path, typer.Option(help="Folder to write compare.csv and compare.md into.")] = Path("compare"),
) -> None:
    """Per scope and method, the change in IQM from report A to report B, with both CIs."""
    from plasticity_bench.analysis.compare import compare, comparison_markdown, write_comparison
    from plasticity_bench.analysis.vocabulary import AnalysisError

    try:
        comparison = compare(report_a, report_b)
        paths = write_comparison(comparison, out)
    except AnalysisError as error:
        _fail(str(error))
    except OSError as error:
        _fail(str(error))
    typer.echo(comparison_markdown(comparison))
    typer.echo(f"wrote {', '.join(str(path) for path in paths)}")
