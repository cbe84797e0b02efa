"""CLI commands of the analysis half of the pipeline: ``aggregate`` and ``report``.

Plain functions with typer annotations; ``cli.py`` mounts them with
``app.command("aggregate")(aggregate_command)`` and ``app.command("report")(report_command)``.
User errors (missing runs, unreadable inputs, a taken report version) print one line to
stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

USER_ERROR_EXIT = 2


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(USER_ERROR_EXIT)


def aggregate_command(
    matrix: Annotated[Path, typer.Option(help="matrix.json written by the workflow (expected runs).")],
    runs: Annotated[Path, typer.Option(help="Directory holding one folder per run (results/runs).")],
    out: Annotated[Path, typer.Option(help="Aggregate directory to write the CSVs into.")],
    reps: Annotated[int, typer.Option(min=1, help="Bootstrap replications per estimate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of numpy's global RNG before every rliable call.")] = 0,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Aggregate even if expected runs are missing (listed in missing.csv).")] = False,
) -> None:
    """Aggregate run records into rliable interval estimates, curves and a missing-run table."""
    from plasticity_bench import stats  # heavy imports only when the command runs

    try:
        matrix_data = stats.load_matrix(matrix)
        if not runs.is_dir():
            _fail(f"runs directory not found: {runs}")
        result = stats.aggregate(matrix_data, runs, out, reps=reps, seed=seed, allow_missing=allow_missing)
    except stats.StatsError as error:
        _fail(str(error))
    missing = len(result.missing)
    typer.echo(f"aggregated {len(result.scores)} runs into {out}"
               + (f" ({missing} missing, listed in {out / stats.FILES['missing']})" if missing else ""))


def report_command(
    aggregate: Annotated[Path, typer.Option(help="Aggregate directory written by `aggregate`.")],
    matrix: Annotated[Path, typer.Option(help="matrix.json the aggregate was made from.")],
    reports: Annotated[Path, typer.Option(help="Root of the versioned reports.")] = Path("reports"),
    version: Annotated[Optional[str], typer.Option(
        help="Report version name (default v<package>-<config hash>); never overwrites another build.")] = None,
) -> None:
    """Build the versioned report: leaderboard (md/csv/tex), figures, index.html, manifest."""
    from plasticity_bench import report, stats

    try:
        target = report.build_report(aggregate, reports, matrix, version=version)
    except (stats.StatsError, report.ReportError) as error:
        _fail(str(error))
    typer.echo(f"report written to {target}")
