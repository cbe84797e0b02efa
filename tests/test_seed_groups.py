"""Seeds as a batch dimension, the workflow side (issue 12): `plasticity-bench train --seeds`
trains several seeds of a cell in one process, and the workflow groups a cell's planned runs
into jobs of config `seeds_per_job` runs (default all of the cell's seeds)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from plasticity_bench.matrix import cell_key, expand, train_jobs
from plasticity_bench.methods.base import Method
from plasticity_bench.spec import SpecError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "workflow" / "config" / "smoke.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

# A DQN CartPole cell of a few seconds: 20 updates, evaluations at steps 150 and 300. Too
# short to reach the monitor, hence --allow-short-budget.
TINY = ["--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "300", "--set", "learning_starts=100",
        "--set", "eval_every_steps=150", "--set", "eval_episodes=1", "--set", "hidden_sizes=[16]",
        "--allow-short-budget", "--no-progress", "--no-tensorboard"]
TINY_CONFIG = {"name": "groups", "algos": ["dqn"], "archs": ["mlp"], "suites": ["classic_control"],
               "methods": ["none", "redo"], "tasks": {"classic_control": ["gym:CartPole-v1"]},
               "seeds": [0, 1, 2, 3, 4], "steps": {"classic_control": 300},
               "overrides": {"dqn": {"learning_starts": 100, "eval_every_steps": 150, "eval_episodes": 1,
                                     "hidden_sizes": [16]}},
               "method_options": {"redo": {"period": 5}},
               "aggregate": {"reps": 100, "allow_missing": True}, "report_metrics": ["dormant_ratio@0.1"]}


class FailingMethod(Method):
    """Raises after the fifth update, as a buggy user method would (every seed fails alone)."""

    def after_update(self, roles, update_step, sample_batch):
        if update_step == 5:
            raise ZeroDivisionError("raised by a test method")
        return {}


def env_with_tests() -> dict[str, str]:
    """The environment of a subprocess that finds the venv's commands and this module."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}


def plasticity_bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plasticity_bench", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env_with_tests())


# ---- grouping ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_runs():
    return expand(yaml.safe_load(SMOKE.read_text()))[0]


def test_smoke_config_groups_each_cell_s_seeds_into_one_job(smoke_runs):
    jobs = train_jobs(smoke_runs)
    assert len(smoke_runs) == 72 and len(jobs) == 36  # seeds [0, 1]: one job per cell
    assert sorted(run_id for job in jobs for run_id in job.run_ids) == sorted(run.spec.run_id for run in smoke_runs)
    for job in jobs:
        assert job.seeds == [0, 1]
        assert len({cell_key(run.spec) for run in job.runs}) == 1
        assert job.name == f"{job.run_ids[0]}--2seeds"
    assert len({job.name for job in jobs}) == len(jobs)
    # Every cell is its own job: runs that differ in more than the seed (here the swept taus
    # of ReGraMa, the same method) never share one.
    assert len({cell_key(job.runs[0].spec) for job in jobs}) == len(jobs)
    taus = {job.runs[0].spec.method_options["regrama"]["tau"] for job in jobs
            if job.runs[0].spec.method == "regrama" and job.runs[0].spec.algo == "dqn"}
    assert taus >= {0.0, 0.1}


def test_one_seed_per_job_is_one_job_per_run_named_by_its_run_id(smoke_runs):
    jobs = train_jobs(smoke_runs, 1)
    assert [job.name for job in jobs] == [run.spec.run_id for run in smoke_runs]
    assert all(len(job.runs) == 1 for job in jobs)
    # A job of one run is today's one-seed command.
    assert jobs[0].cli_args() == smoke_runs[0].cli_args()
    assert "--seed" in jobs[0].cli_args() and "--seeds" not in jobs[0].cli_args()


def test_seeds_per_job_chunks_each_cell_in_planned_order():
    runs, _ = expand(TINY_CONFIG)
    assert len(runs) == 10  # 2 methods x 5 seeds
    chunks = train_jobs(runs, 2)
    assert [(job.runs[0].spec.method, job.seeds) for job in chunks] == [
        ("none", [0, 1]), ("none", [2, 3]), ("none", [4]), ("redo", [0, 1]), ("redo", [2, 3]), ("redo", [4])]
    assert chunks[2].name == chunks[2].run_ids[0]  # a lone run keeps its run id as job name
    # More per job than the cell has seeds, or no limit: the whole cell.
    for size in (5, 7, None):
        assert [job.seeds for job in train_jobs(runs, size)] == [[0, 1, 2, 3, 4]] * 2
    args = chunks[1].cli_args()
    assert args[args.index("--seeds") + 1] == "2,3" and "--seed" not in args


def test_grouping_uses_the_resolved_spec_not_the_overrides_as_written():
    """Two experiments that write the same settings differently (one states a default) plan
    runs of one cell; runs of other settings are a cell of their own."""
    config = {**TINY_CONFIG, "methods": ["none"], "seeds": [0, 1], "method_options": {},
              "experiments": [{"seeds": [2], "overrides": {"dqn": {"gamma": 0.99}}},  # DQN's default gamma
                              {"seeds": [3], "overrides": {"dqn": {"gamma": 0.9}}, "variant": "gamma09"}]}
    runs, _ = expand(config)
    jobs = train_jobs(runs)
    assert sorted(job.seeds for job in jobs) == [[0, 1, 2], [3]]


@pytest.mark.parametrize("value", [0, -1, True, "2", 1.5])
def test_train_jobs_refuses_a_bad_group_size(value):
    runs, _ = expand(TINY_CONFIG)
    with pytest.raises(SpecError, match="seeds_per_job"):
        train_jobs(runs, value)


def test_a_job_s_arguments_rebuild_its_run_ids(tmp_path):
    runs, _ = expand(TINY_CONFIG)
    job = train_jobs(runs, 3)[0]
    result = plasticity_bench("train", *job.cli_args(), "--print-spec", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [spec["run_id"] for spec in json.loads(result.stdout)] == job.run_ids == [run.spec.run_id
                                                                                   for run in runs[:3]]


# ---- schema ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -2, "two", 1.5, True, [2]])
def test_schema_rejects_a_bad_seeds_per_job(value):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    with pytest.raises(WorkflowError, match="seeds_per_job"):
        validate({**TINY_CONFIG, "seeds_per_job": value}, str(SCHEMA))


def test_schema_accepts_seeds_per_job_and_adds_no_default():
    from snakemake.utils import validate

    config = dict(TINY_CONFIG)
    validate(config, str(SCHEMA))
    assert "seeds_per_job" not in config  # a config without it keeps its hash
    validate({**TINY_CONFIG, "seeds_per_job": 3}, str(SCHEMA))


# ---- the CLI --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, must_mention",
    [
        (["--seeds", "0,1,1"], ["--seeds", "1", "more than once"]),
        (["--seeds", "0,-1"], ["--seeds", "-1", "non-negative"]),
        (["--seeds", "a,b"], ["'a,b'", "0,1,2"]),
        (["--seeds", "0,,1"], ["'0,,1'", "0,1,2"]),
        (["--seeds", ""], ["--seeds", "0,1,2"]),
        (["--seed", "1", "--seeds", "0,1"], ["--seed 1", "--seeds 0,1", "not both"]),
        (["--seeds", "0,1", "--out", "one-run"], ["--out", "--runs-dir", "2 runs"]),
        (["--seeds", "0,1", "--expect-run-id", "x"], ["--expect-run-id", "1 run id", "2 seed"]),
        (["--seeds", "0,1", "--expect-run-id", "x,y"], ["'x'"]),
    ],
)
def test_bad_seeds_are_one_line_before_anything_is_written(tmp_path, args, must_mention):
    result = plasticity_bench("train", *TINY, "--runs-dir", str(tmp_path / "runs"), *args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for text in must_mention:
        assert text in lines[0], (text, lines[0])
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_seeds_print_each_spec(tmp_path):
    result = plasticity_bench("train", *TINY, "--seeds", "2,0", "--print-spec", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    specs = json.loads(result.stdout)
    assert [spec["seed"] for spec in specs] == [2, 0]
    single = json.loads(plasticity_bench("train", *TINY, "--seed", "2", "--print-spec", cwd=tmp_path).stdout)
    assert specs[0] == single  # --seed prints one object, as it always did


def test_two_seeds_train_in_one_process_into_ordinary_run_folders(tmp_path):
    ids = [json.loads(plasticity_bench("train", *TINY, "--seed", str(seed), "--print-spec", cwd=tmp_path).stdout)
           ["run_id"] for seed in (0, 1)]
    result = plasticity_bench("train", *TINY, "--seeds", "0,1", "--expect-run-id", ",".join(ids),
                              "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == sorted(ids)
    for seed, run_id in enumerate(ids):
        run_dir = tmp_path / "runs" / run_id
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["run_id"] == run_id
        assert manifest["spec"]["seed"] == seed
        assert list(pd.read_parquet(run_dir / "eval.parquet")["step"]) == [150, 300]
        assert f"{run_id}: completed at step 300; record in {run_dir}" in result.stdout
    assert not (tmp_path / "results").exists()  # --runs-dir, not the default folder


def test_completed_seeds_are_not_retrained(tmp_path):
    """What a rerun of a workflow job after a kill meets: one seed completed, one not begun."""
    first = plasticity_bench("train", *TINY, "--seed", "0", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    manifest = tmp_path / "results" / "runs" / first.stdout.split(":")[0] / "manifest.json"
    written = manifest.stat().st_mtime_ns
    both = plasticity_bench("train", *TINY, "--seeds", "0,1", cwd=tmp_path)
    assert both.returncode == 0, both.stdout + both.stderr
    assert both.stdout.count("completed at step 300") == 2
    assert manifest.stat().st_mtime_ns == written  # seed 0 was not retrained
    again = plasticity_bench("train", *TINY, "--seeds", "0,1", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("completed at step 300") == 2


def test_seeds_that_fail_exit_3_after_every_seed_ran(tmp_path):
    result = plasticity_bench("train", *TINY, "--method", "test_seed_groups:FailingMethod", "--seeds", "0,1",
                              cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    status_lines = [line for line in result.stdout.splitlines() if ": failed at step" in line]
    assert len(status_lines) == 2 and all("ZeroDivisionError: raised by a test method" in line
                                          for line in status_lines)
    assert "2 of 2 runs failed" in result.stderr.strip().splitlines()[-1]
    for run_dir in (tmp_path / "results" / "runs").iterdir():
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "ZeroDivisionError" in manifest["error"]


# ---- the workflow ---------------------------------------------------------------------------
def snakemake(workdir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=timeout, env=env_with_tests())


def job_stats(output: str) -> dict[str, int]:
    stats = output[output.index("Job stats:"):]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def test_smoke_dry_run_has_one_training_job_per_cell(tmp_path):
    grouped = snakemake(tmp_path, "-n", "--configfile", str(SMOKE))
    assert grouped.returncode == 0, grouped.stderr[-3000:]
    output = grouped.stdout + grouped.stderr
    assert "72 runs planned in 36 training jobs" in output
    assert job_stats(output)["train"] == 36

    per_run = snakemake(tmp_path, "-n", "-p", "--configfile", str(SMOKE), "--config", "seeds_per_job=1")
    assert per_run.returncode == 0, per_run.stderr[-3000:]
    output = per_run.stdout + per_run.stderr
    assert job_stats(output)["train"] == 72
    assert "--seeds" not in output and output.count("--expect-run-id") == 72
    assert not (tmp_path / "results" / "runs").exists()


def test_invalid_seeds_per_job_stops_the_workflow_naming_the_key(tmp_path):
    result = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), "--config", "seeds_per_job=0")
    assert result.returncode != 0
    assert "seeds_per_job" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_workflow_trains_grouped_seeds_and_keeps_failed_runs(tmp_path):
    """Five seeds in jobs of at most 2: a cell whose method fails in every seed is a result
    (exit 3, the job succeeds); a deleted manifest makes its job run again."""
    config = {**TINY_CONFIG, "methods": ["none", "test_seed_groups:FailingMethod"], "seeds": [0, 1, 2],
              "seeds_per_job": 2}
    config.pop("method_options")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env_args = ("--cores", "2", "--configfile", str(path))
    done = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), *env_args], capture_output=True, text=True,
                          timeout=900, env={**env_with_tests(), "PLASTICITY_BENCH_ALLOW_SHORT_BUDGET": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    results = tmp_path / "results"
    jobs = sorted(path.name for path in (results / "jobs").iterdir())
    assert len(jobs) == 4 and sum(name.endswith("--2seeds.done") for name in jobs) == 2
    assert len(list((results / "logs" / "train").iterdir())) == 4  # one log per job
    statuses = {}
    for run_dir in (results / "runs").iterdir():
        statuses[run_dir.name] = json.loads((run_dir / "manifest.json").read_text())["status"]
    assert len(statuses) == 6
    assert {status for run_id, status in statuses.items() if "FailingMethod" in run_id} == {"failed"}
    assert {status for run_id, status in statuses.items() if "FailingMethod" not in run_id} == {"completed"}
    first = next(name for name in jobs if name.startswith("dqn-mlp-none") and name.endswith("--2seeds.done"))
    run_ids = (results / "jobs" / first).read_text().split()
    assert len(run_ids) == 2 and all(run_id in statuses for run_id in run_ids)

    # A run's manifest gone: its job's file goes at the next parse, and the job (asked for by
    # name, as aggregation has its inputs) runs again; the job's completed run is not retrained.
    (results / "runs" / run_ids[1] / "manifest.json").unlink()
    target = f"results/jobs/{first}"
    again = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), target, *env_args], capture_output=True,
                           text=True, timeout=900, env={**env_with_tests(), "PLASTICITY_BENCH_ALLOW_SHORT_BUDGET": "1"})
    assert again.returncode == 0, again.stderr[-4000:]
    assert (results / "jobs" / first).exists()
    assert json.loads((results / "runs" / run_ids[1] / "manifest.json").read_text())["status"] == "completed"
