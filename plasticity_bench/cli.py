"""Command line: ``plasticity-bench list | train | status | aggregate | report | plot | compare``.

User errors (bad names, invalid combinations, bad overrides) print one line naming the bad
value and the valid choices, and exit with status 2 before anything is built or written.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Optional

import typer

from plasticity_bench import cli_pipeline, registry

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark suite for plasticity loss in deep RL.")


RUN_FAILED_EXIT = 3
# The machine ran out of disk or memory (EX_TEMPFAIL): the runs stay resumable and a rerun
# (the workflow's next start) resumes them; not a verdict on the runs, unlike RUN_FAILED_EXIT.
RESOURCE_EXIT = 75


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("list")
def list_components() -> None:
    """Print the available algorithms, architectures, methods, metrics and task families."""
    from plasticity_bench.environments import TASK_FAMILIES
    from plasticity_bench.metrics import METRICS

    sections = {
        "algorithms": {name: desc for name, (_, desc) in registry.ALGOS.items()},
        "architectures": {name: desc for name, (_, desc) in registry.ARCHS.items()},
        "methods": {name: desc for name, (_, desc) in registry.METHODS.items()},
        "metrics": METRICS,
        "task families": TASK_FAMILIES,
    }
    for title, entries in sections.items():
        typer.echo(f"{title}:")
        width = max(len(name) for name in entries)
        for name, description in entries.items():
            typer.echo(f"  {name:<{width}}  {description}")


@app.command()
def train(
    algo: str = typer.Option(..., help="algorithm: " + ", ".join(registry.ALGOS)),
    arch: str = typer.Option("mlp", help="architecture: " + ", ".join(registry.ARCHS)),
    method: str = typer.Option("none", help="method(s), joined by '+': " + ", ".join(registry.METHODS)),
    task: str = typer.Option(..., help="family:name, e.g. dmc:cheetah-run, mujoco:HalfCheetah-v5, gym:CartPole-v1"),
    seed: Optional[int] = typer.Option(None, help="random seed (default 0)"),
    seeds: Optional[str] = typer.Option(
        None, help="several seeds of the cell, comma-separated (e.g. 0,1,2; instead of --seed): trained together "
        "in one process, each into <runs-dir>/<run_id> under the run id its one-seed run has; exit 3 when any "
        "of them failed (after all ran)"),
    steps: int = typer.Option(..., help="environment steps to train for"),
    out: Optional[Path] = typer.Option(None, help="run folder of a one-seed run (default <runs-dir>/<run_id>); "
                                       "not with several --seeds"),
    runs_dir: Path = typer.Option(Path("results") / "runs", help="folder of the run folders, each named by its run id"),
    set_: list[str] = typer.Option([], "--set", help="override a hyperparameter or method option: key=value, method.option=value"),
    threads: int = typer.Option(1, help="torch threads (1 lets parallel jobs share the CPU)"),
    device: str = typer.Option("auto", help="torch device: auto (CUDA when visible, else CPU), cpu, cuda, cuda:N"),
    gpu_slots: Optional[Path] = typer.Option(None, help="with --device auto and several GPUs: folder of slot locks "
                                             "that spreads parallel jobs over the GPUs (see plasticity_bench/devices.py)"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    print_spec: bool = typer.Option(False, "--print-spec", help="print the resolved spec as JSON and exit (with "
                                    "--seeds: a JSON list, one spec per seed)"),
    expect_run_id: Optional[str] = typer.Option(None, help="fail unless the resolved spec has this run id (workflow "
                                                "check); with --seeds, the run ids comma-separated in the seeds' order"),
    restart: bool = typer.Option(False, "--restart", help="delete the run's records (manifest, eval, metrics, "
                                 "checkpoint) and train it from scratch, e.g. after its checkpoint was damaged; with "
                                 "--seeds, only the seeds whose records are damaged (all of them when none is)"),
    allow_short_budget: bool = typer.Option(
        False, "--allow-short-budget", envvar="PLASTICITY_BENCH_ALLOW_SHORT_BUDGET",
        help="train even when the budget makes no gradient update, never reaches eval_every_steps or monitor_every_updates, "
             "or ends before a method first acts (refused otherwise, naming the numbers); the environment "
             "variable lets workflow jobs through"),
    tensorboard: bool = typer.Option(True, help="write TensorBoard event files into <out>/tensorboard (train.parquet "
                                     "is written either way)"),
    track: bool = typer.Option(False, "--track", help="also log to Weights & Biases (pip install "
                               "'plasticity-bench[wandb]'; project: $WANDB_PROJECT, else plasticity-bench)"),
) -> None:
    """Train one run (or, with --seeds, several seeds of one cell in one process) and write its record
    (manifest, eval, metrics, train, checkpoint, TensorBoard events); resumes after a kill."""
    import json

    from plasticity_bench.budget import cadences
    from plasticity_bench.spec import SpecError, build_spec

    if threads <= 0:
        fail(f"threads must be positive, got {threads}")
    if seeds is not None and seed is not None:
        fail(f"give either --seed {seed} or --seeds {seeds}, not both")
    seed_list = [0 if seed is None else seed] if seeds is None else parse_seeds(seeds)
    several = len(seed_list) > 1
    if several and out is not None:
        fail(f"--out names one run's folder, but --seeds {seeds} trains {len(seed_list)} runs: drop --out (each run "
             f"goes to <--runs-dir>/<run_id>, --runs-dir {runs_dir}) or give one seed")
    expected = None if expect_run_id is None else [part.strip() for part in expect_run_id.split(",")]
    if expected is not None and len(expected) != len(seed_list):
        fail(f"--expect-run-id names {len(expected)} run id(s) for {len(seed_list)} seed(s); give one per seed of "
             f"--seeds, comma-separated in the same order")
    try:
        specs = [build_spec(algo, arch, method, task, one_seed, steps, set_) for one_seed in seed_list]
    except SpecError as error:
        fail(str(error))
    for spec, expected_id in zip(specs, expected or []):
        if spec.run_id != expected_id:
            fail(f"the arguments resolve to run {spec.run_id!r}, not the expected {expected_id!r}")
    if print_spec:
        resolved = [{"run_id": spec.run_id, **spec.to_dict(), "cadences": cadences(spec)} for spec in specs]
        typer.echo(json.dumps(resolved if seeds is not None else resolved[0], indent=2))
        return

    run_dirs = [out or runs_dir / spec.run_id for spec in specs]
    check_writable_folder(run_dirs[0], "--out" if out is not None else "--runs-dir")
    if track:
        from plasticity_bench.training_log import TrackingUnavailableError, check_tracking_available

        try:
            check_tracking_available()
        except TrackingUnavailableError as error:
            fail(str(error))
        if not wandb_credentials():
            fail("--track logs to Weights & Biases, but no W&B API key is set: run `wandb login`, set "
                 "WANDB_API_KEY, or set WANDB_MODE=offline to log locally (nothing was written)")

    import traceback

    from plasticity_bench.budget import ShortBudgetError
    from plasticity_bench.devices import DeviceError, select_training_device
    from plasticity_bench.results import CorruptRecordError, ResourceExhaustedError, RunLockedError
    from plasticity_bench.training import train_seeds
    from plasticity_bench.training.run import RunConflictError, RunFailedError
    from plasticity_bench.training import train as run_training
    from plasticity_bench.training.graphs import check_device as check_graphs_device

    folder_option = f"--out {out}" if out is not None else f"--runs-dir {runs_dir}"
    try:  # one GPU slot for the process, whatever the number of seeds
        torch_device, slot = select_training_device(device, gpu_slots)
        check_graphs_device(specs[0].hyperparams, torch_device)  # compile: graphs on a CPU: refused here
    except DeviceError as error:
        fail(str(error))
    try:
        if several:
            manifests = train_seeds(specs, run_dirs, threads=threads, device=torch_device, progress=progress,
                                    restart=restart, allow_short_budget=allow_short_budget, tensorboard=tensorboard,
                                    track=track)
        else:
            manifests = [run_training(specs[0], run_dirs[0], threads=threads, device=torch_device, progress=progress,
                                      restart=restart, allow_short_budget=allow_short_budget,
                                      tensorboard=tensorboard, track=track)]
    except (ShortBudgetError, RunConflictError, RunLockedError) as error:
        fail(str(error))
    except ResourceExhaustedError as error:
        fail(f"out of disk or memory: {error}; the runs are not failed: free space or memory and run the same "
             "command again, they resume from their checkpoints", code=RESOURCE_EXIT)
    except OSError as error:  # before training started: the folder cannot be written
        fail(f"{folder_option} cannot be written: {error}")
    except CorruptRecordError as error:
        fail(f"{error}; rerun with --restart to train {'the runs whose records are damaged' if several else 'this run'} "
             f"from scratch (their records in {folder_option.split(' ', 1)[1]} are replaced"
             + ("; the other seeds resume or stay completed)" if several else ")"))
    except RunFailedError as error:
        # Recorded as failed in the manifest; a distinct code lets the workflow go on and
        # let aggregation report the run as failed instead of stopping every other job.
        # The traceback goes to the job's log for whoever debugs a method or a metric.
        if error.__cause__ is not None:
            traceback.print_exception(error.__cause__, file=sys.stderr)
        fail(f"run failed: {error}", code=RUN_FAILED_EXIT)
    finally:
        if slot is not None:
            slot.release()
    failed = []
    for spec, run_dir, manifest in zip(specs, run_dirs, manifests):
        status = manifest.get("status")
        reason = f" ({manifest.get('error')})" if status != "completed" and manifest.get("error") else ""
        typer.echo(f"{spec.run_id}: {status} at step {manifest.get('step')}{reason}; record in {run_dir}")
        if status != "completed":
            failed.append(spec.run_id)
    if failed:  # several seeds: each ran to its end; the failed ones are results too (exit 3, as one run)
        fail(f"{len(failed)} of {len(specs)} runs failed: {', '.join(failed)} (their manifests say why)",
             code=RUN_FAILED_EXIT)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → [0, 1, 2]; anything else fails with one line (exit 2)."""
    parts = [part.strip() for part in text.split(",")]
    # ASCII digits only: str.isdigit also accepts "²" and "٣", which int() refuses or reads
    if not all(re.fullmatch(r"-?[0-9]+", part) for part in parts):
        fail(f"--seeds {text!r} is not a list of seeds; give non-negative integers separated by ',', e.g. 0,1,2")
    seed_list = [int(part) for part in parts]
    negative = [value for value in seed_list if value < 0]
    if negative:
        fail(f"--seeds {text}: seeds must be non-negative, got {', '.join(map(str, negative))}")
    duplicates = sorted({value for value in seed_list if seed_list.count(value) > 1})
    if duplicates:
        fail(f"--seeds {text} names seed {', '.join(map(str, duplicates))} more than once; give each seed once")
    return seed_list


def wandb_credentials() -> bool:
    """Whether wandb.init would find a key, or needs none (offline or disabled mode): checked
    before training, since wandb's own refusal comes after the run's records are written."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return True
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_writable_folder(path: Path, option: str) -> None:
    """Fail with one line unless ``path`` is, or can be created as, a writable folder
    (nothing is created here)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == Path(path) else f" (its parent {existing} is a file)"
        fail(f"{option} {path} is not a folder{where}; give a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(f"{option} {path} is not writable ({existing} is read-only for this user); give a folder you can write to")


@app.command()
def status(folder: Path = typer.Argument(Path("results"), help="a results folder (runs/ and matrix-*.json "
                                         "inside) or a folder of run folders")) -> None:
    """Every run of a workflow: running / stopped / failed / completed / pending, its step,
    last evaluation return, steps per second and estimated time left."""
    from plasticity_bench.status import status_table, workflow_status

    try:
        statuses = workflow_status(folder)
    except FileNotFoundError as error:
        fail(str(error))
    except OSError as error:  # the folder itself cannot be listed
        fail(f"{folder} cannot be read: {error.strerror or error}")
    typer.echo(status_table(statuses))


def show_version(value: bool) -> None:
    if value:
        from plasticity_bench import __version__

        typer.echo(f"plasticity-bench {__version__}")
        raise typer.Exit()


@app.callback()
def options(version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                         help="print the package version and exit")) -> None:
    """Benchmark suite for plasticity loss in deep RL."""


app.command("aggregate")(cli_pipeline.aggregate_command)
app.command("report")(cli_pipeline.report_command)
app.command("plot")(cli_pipeline.plot_command)
app.command("compare")(cli_pipeline.compare_command)


def main() -> None:
    sys.exit(app())
