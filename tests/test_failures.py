"""Failures keep their reasons, and nothing wrong passes silently (issue 15): failed runs,
non-finite values, records of other settings, damaged files, out-of-range settings,
config names that name nothing, published reports, locks, orphans and permissions."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from plasticity_bench import registry, results
from plasticity_bench.analysis import latex, leaderboard, report
from plasticity_bench.analysis.aggregate import MissingRunsError, aggregate
from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.analysis.scores import collect
from plasticity_bench.analysis.vocabulary import OVERALL
from plasticity_bench.cli import app
from plasticity_bench.matrix import expand
from plasticity_bench.methods.base import Method
from plasticity_bench.spec import ALGO_DEFAULTS, VALID_RANGES, SpecError, build_spec, default_hyperparams

from test_stats import make_runs, run_id, write_suite

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "workflow" / "config" / "smoke.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

# A DQN run of a few seconds: 20 updates, evaluations at steps 150 and 300, checkpoints.
# These runs exist to fail or to be resumed, so they train too little to reach the monitor:
# the budget guard lets them through.
TINY_DQN = ["--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "300", "--set", "learning_starts=100",
            "--set", "eval_every_steps=150", "--set", "eval_episodes=1", "--set", "hidden_sizes=[16]",
            "--set", "checkpoint_every_steps=100", "--device", "cpu", "--no-progress", "--allow-short-budget"]
TINY_SAC = ["--algo", "sac", "--task", "gym:Pendulum-v1", "--steps", "250", "--set", "learning_starts=100",
            "--set", "eval_every_steps=250", "--set", "eval_episodes=1", "--set", "hidden_sizes=[16,16]",
            "--device", "cpu", "--no-progress", "--allow-short-budget"]


# ---- user methods that fail in the ways a real method or a diverging run does -------------
class RaisingMethod(Method):
    """Raises in after_update, as a buggy user method would."""

    def after_update(self, roles, update_step, sample_batch):
        if update_step == 5:
            raise ZeroDivisionError("raised by a user method")
        return {}


class NanAtLastUpdate(Method):
    """Writes NaN into a weight after the last update, past any periodic check."""

    def plan(self, total_updates: int) -> None:
        self.total_updates = total_updates

    def after_update(self, roles, update_step, sample_batch):
        if update_step == self.total_updates:
            with torch.no_grad():
                next(next(iter(roles.values())).network.parameters()).fill_(float("nan"))
        return {}


class NanEvaluationActions(Method):
    """The SAC actor's deterministic (evaluation) action is NaN; its weights stay finite."""

    def setup(self, roles) -> None:
        roles["actor"].network.deterministic = lambda obs: torch.full((obs.shape[0], 1), float("nan"))


class BrokenSetup(Method):
    def setup(self, roles) -> None:
        raise RuntimeError("cannot set up")


def train_cli(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


# ---- 1. the local profile ---------------------------------------------------------------
def test_workflow_profile_is_loaded_without_a_profile_option(tmp_path):
    result = subprocess.run([*SNAKEMAKE, "-n", "--configfile", str(SMOKE)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Using workflow specific profile {ROOT / 'profiles' / 'default'}" in result.stderr
    profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert profile["keep-going"] is True and profile["rerun-incomplete"] is True


# ---- 2. and 3. failures inside training -----------------------------------------------
@pytest.mark.parametrize("args, reason", [
    (TINY_SAC + ["--set", "q_lr=1e6", "--set", "policy_lr=1e6"], "non-finite"),
    (TINY_DQN + ["--method", "test_failures:RaisingMethod"], "ZeroDivisionError: raised by a user method"),
    (TINY_DQN + ["--method", "test_failures:NanAtLastUpdate"], "non-finite parameter q.layers.0.weight at env step 300"),
    (TINY_SAC + ["--method", "test_failures:NanEvaluationActions"], "evaluation return is nan at env step 250"),
], ids=["diverging_sac", "raising_method", "nan_weights_after_last_update", "nan_evaluation_return"])
def test_failure_inside_training_is_a_failed_run_with_exit_3(tmp_path, args, reason):
    result = train_cli(*args, "--out", str(tmp_path / "run"))
    assert result.exit_code == 3, result.output
    assert last_line(result).startswith("error: run failed: ") and reason in last_line(result)
    manifest = RunRecord(tmp_path / "run").manifest()
    assert manifest["status"] == "failed" and reason in manifest["error"]
    assert "\n" not in manifest["error"]


def test_failure_while_building_the_run_is_recorded(tmp_path):
    result = train_cli(*TINY_DQN, "--method", "test_failures:BrokenSetup", "--out", str(tmp_path / "run"))
    assert result.exit_code == 3 and "RuntimeError: cannot set up" in last_line(result)
    assert RunRecord(tmp_path / "run").manifest()["error"] == "RuntimeError: cannot set up"


# ---- 4. aggregation checks the run id ---------------------------------------------------
@pytest.fixture
def toy_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(tmp_path / "suites")))
    return make_runs(tmp_path)


def test_aggregation_refuses_a_record_of_other_settings(toy_runs):
    matrix, runs = toy_runs
    expected = matrix["runs"][0]
    for row in matrix["runs"]:
        row["steps"] = 5000
    # The folder of the expected run holds a run of 600 steps (another spec, another id).
    manifest = results.read_json(runs / expected["run_id"] / results.MANIFEST)
    results.write_json(runs / expected["run_id"] / results.MANIFEST,
                       {**manifest, "run_id": "sac-mlp-none-TaskA-v0-s0-0123456789", "spec": {**manifest["spec"], "steps": 600}})
    scores, missing = collect(matrix, runs)
    assert expected["run_id"] not in set(scores["run_id"])
    reason = missing.set_index("run_id").loc[expected["run_id"], "reason"]
    assert "sac-mlp-none-TaskA-v0-s0-0123456789" in reason and "steps 600, matrix 5000" in reason


# ---- 5. damaged files ------------------------------------------------------------------
@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run folder as a kill leaves it: a checkpoint, status running."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    result = train_cli(*TINY_DQN, "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = results.read_json(out / results.MANIFEST)
    results.write_json(out / results.MANIFEST, {**manifest, "status": "running"})
    return out


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "empty":
        path.write_bytes(b"")
    else:  # one flipped byte in the middle (inside the tensors' data)
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])


@pytest.mark.parametrize("how", ["truncated", "random", "empty", "flipped"])
def test_damaged_checkpoint_is_one_line_and_touches_no_record(interrupted_run, tmp_path, how):
    out = tmp_path / "run"
    shutil.copytree(interrupted_run, out)
    checkpoint = out / results.CHECKPOINT
    damage(checkpoint, how)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    result = train_cli(*TINY_DQN, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert str(checkpoint) in result.stderr and "--restart" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before

    restarted = train_cli(*TINY_DQN, "--out", str(out), "--restart")
    assert restarted.exit_code == 0, restarted.output
    assert RunRecord(out).manifest()["status"] == "completed"
    reference = RunRecord(interrupted_run).eval()
    pd.testing.assert_frame_equal(RunRecord(out).eval(), reference)  # from scratch, same seed


@pytest.mark.parametrize("table", [results.EVAL, results.METRICS])
def test_damaged_table_is_missing_with_its_reason(toy_runs, tmp_path, table):
    matrix, runs = toy_runs
    damaged = runs / matrix["runs"][2]["run_id"] / table
    damage(damaged, "truncated")
    with pytest.raises(MissingRunsError, match=matrix["runs"][2]["run_id"]):
        aggregate(matrix, runs, reps=100)
    result = aggregate(matrix, runs, tmp_path / "aggregate", reps=100, allow_missing=True)
    reason = result.missing.set_index("run_id").loc[matrix["runs"][2]["run_id"], "reason"]
    assert reason.startswith("unreadable record") and str(damaged) in reason


# ---- 6. ranges and names ---------------------------------------------------------------
@pytest.mark.parametrize("override, message", [
    ("gamma=5", "gamma=5.0 is out of range; valid: [0, 1]"),
    ("learning_starts=-100", "learning_starts=-100 is out of range; valid: [0, inf)"),
    ("tau=-3", "tau=-3.0 is out of range; valid: (0, 1]"),
    ("q_lr=inf", "q_lr='inf' is not a finite number; give one like 0.001"),  # refused when parsed (docs/robustness.md)
    ("q_lr=-0.001", "q_lr=-0.001 is out of range; valid: (0, inf)"),
    ("policy_lr=.nan", "policy_lr='.nan' is not a finite number; give one like 0.0003"),
])
def test_out_of_range_hyperparameter_names_value_and_range(override, message):
    with pytest.raises(SpecError) as error:
        build_spec("sac", "mlp", "none", "gym:Pendulum-v1", 0, 100, [override])
    assert str(error.value) == message


def test_seed_must_fit_torch_and_numpy():
    build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 2**64 - 1, 100)
    torch.manual_seed(2**64 - 1)  # the largest seed the range admits is one torch takes
    with pytest.raises(SpecError, match=r"seed=18446744073709551616 is out of range; valid: integers in \[0, 18446744073709551615\]"):
        build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 2**64, 100)


def test_every_numeric_hyperparameter_has_a_range():
    for algo in ALGO_DEFAULTS:
        for arch in registry.ARCHS:
            numeric = {key for key, value in default_hyperparams(algo, arch).items()
                       if isinstance(value, (int, float)) and not isinstance(value, bool)}
            assert numeric <= set(VALID_RANGES), (algo, arch, sorted(numeric - set(VALID_RANGES)))
            for key in numeric:  # every default lies in its own range
                assert default_hyperparams(algo, arch)[key] in VALID_RANGES[key], key


def smoke_with(change) -> dict:
    config = yaml.safe_load(SMOKE.read_text())
    change(config)
    return config


@pytest.mark.parametrize("change, message", [
    (lambda c: c["method_options"].update(regrma={"period": 5}), "method_options names method 'regrma'"),
    (lambda c: c["tasks"].update(mujoco=["mujoco:Nope-v5"]), "tasks names suite 'mujoco'"),
    (lambda c: c["steps"].update(dmc_easy=10), "steps names suite 'dmc_easy'"),
    (lambda c: c.update(suite_overrides={"classic_control": {"sacc": {"gamma": 0.9}}}),
     "suite_overrides.classic_control names algo 'sacc'"),
    (lambda c: c["experiments"][0].update(overrides={"sacc": {"q_lr": 1e-4}}),
     "experiments[0].overrides names algo 'sacc'"),
    (lambda c: c["experiments"][0].update(method_options={"redo": {"period": 5}}),
     "experiments[0].method_options names method 'redo'"),
])
def test_config_names_must_name_what_the_config_runs(change, message):
    with pytest.raises(SpecError, match="valid: ") as error:
        expand(smoke_with(change))
    assert message in str(error.value)


def test_config_that_plans_no_run_fails():
    dqn_on_continuous_actions = {"algos": ["dqn"], "methods": ["none"], "suites": ["classic_control_continuous"],
                                 "seeds": [0]}
    with pytest.raises(SpecError, match="the config plans 0 runs: every combination was dropped .suite "
                                        "classic_control_continuous is for sac, td3"):
        expand(dqn_on_continuous_actions)


def test_out_that_cannot_be_a_folder_is_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, message in ((a_file, "is not a folder"), (a_file / "run", "its parent"),
                         (Path("/proc/plasticity-bench/run"), "cannot be written")):
        result = train_cli(*TINY_DQN, "--out", str(out))
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.output


def test_aggregate_out_that_is_a_file_is_one_line(toy_runs, tmp_path):
    matrix, runs = toy_runs
    results.write_json(tmp_path / "matrix.json", matrix)
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["aggregate", "--matrix", str(tmp_path / "matrix.json"), "--runs", str(runs),
                                      "--out", str(tmp_path / "file"), "--reps", "100"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert str(tmp_path / "file") in result.stderr


# ---- 7. published reports --------------------------------------------------------------
def test_published_report_is_never_replaced(toy_runs, tmp_path):
    matrix, runs = toy_runs
    aggregate(matrix, runs, tmp_path / "aggregate", reps=100)
    published = report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix, version="v1")
    (published / "notes.md").write_text("my notes")
    before = {p.name: p.read_bytes() for p in published.rglob("*") if p.is_file()}
    assert report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix, version="v1") == published
    assert {p.name: p.read_bytes() for p in published.rglob("*") if p.is_file()} == before

    # Other aggregated runs (one more failed) under the same name: refused, nothing touched.
    shutil.rmtree(runs / matrix["runs"][0]["run_id"])
    aggregate(matrix, runs, tmp_path / "aggregate", reps=100, allow_missing=True)
    with pytest.raises(report.ReportError, match="never replaced"):
        report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix, version="v1")
    assert {p.name: p.read_bytes() for p in published.rglob("*") if p.is_file()} == before


# ---- 8. orphans, locks, permissions, failed methods --------------------------------------
def test_orphan_temporaries_are_removed_at_start(interrupted_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(interrupted_run, out)
    orphan = out / f".{results.CHECKPOINT}.abc123{results.TMP_SUFFIX}"
    orphan.write_bytes(b"\0" * 1000)
    assert train_cli(*TINY_DQN, "--out", str(out)).exit_code == 0
    assert not orphan.exists()


def test_second_train_process_on_one_folder_is_refused(interrupted_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(interrupted_run, out)
    before = (out / results.MANIFEST).read_bytes()
    with results.run_lock(out):
        result = train_cli(*TINY_DQN, "--out", str(out))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"pid {os.getpid()}" in result.stderr and "another plasticity-bench train process" in result.stderr
    assert (out / results.MANIFEST).read_bytes() == before


def test_records_and_reports_are_world_readable_whatever_the_umask(toy_runs, tmp_path):
    matrix, runs = toy_runs
    previous = os.umask(0o077)
    try:
        results.write_json(tmp_path / "a" / "b" / "manifest.json", {"x": 1})
        aggregate(matrix, runs, tmp_path / "aggregate", reps=100)
        published = report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix, version="v1")
    finally:
        os.umask(previous)
    assert (tmp_path / "a" / "b" / "manifest.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a" / "b").stat().st_mode & 0o777 == 0o755
    for path in [published, *published.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def test_method_whose_runs_all_failed_keeps_a_marked_row(toy_runs, tmp_path):
    matrix, runs = toy_runs
    for row in matrix["runs"]:
        if row["method"] == "regrama":
            manifest = results.read_json(runs / row["run_id"] / results.MANIFEST)
            results.write_json(runs / row["run_id"] / results.MANIFEST,
                               {**manifest, "status": "failed", "error": "NonFiniteError: diverged"})
    result = aggregate(matrix, runs, tmp_path / "aggregate", reps=100, allow_missing=True)
    board = leaderboard.leaderboard(result).set_index(["suite", "method"])
    for scope in ("toy", OVERALL):
        row = board.loc[(scope, "regrama")]
        assert row["runs"] == 0 and row["missing_runs"] == 6 and math.isnan(row["iqm"])
        assert board.loc[(scope, "none"), "missing_runs"] == 0
    assert "| regrama | - |" in leaderboard.leaderboard_markdown(leaderboard.leaderboard(result), "t", [])
    assert "0 (6 missing)" in latex.leaderboard_tex(leaderboard.leaderboard(result))
    reasons = set(result.missing["reason"])
    assert reasons == {"status failed: NonFiniteError: diverged"}


# ---- the workflow: a failing run keeps its record, the report survives a forced rerun ---
@pytest.mark.slow
def test_workflow_keeps_failed_runs_and_published_reports(tmp_path):
    config = {"name": "failures", "algos": ["dqn"], "archs": ["mlp"], "suites": ["classic_control"],
              "methods": ["none", "test_failures:RaisingMethod"], "tasks": {"classic_control": ["gym:CartPole-v1"]},
              "seeds": [0], "steps": {"classic_control": 300},
              "overrides": {"dqn": {"learning_starts": 100, "eval_every_steps": 150, "eval_episodes": 1,
                                    "hidden_sizes": [16]}},
              "aggregate": {"reps": 100, "allow_missing": True}, "report_metrics": ["dormant_ratio@0.1"]}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # 20 updates reach no monitor row: the environment variable lets the workflow's jobs through.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT / "tests"), "PLASTICITY_BENCH_ALLOW_SHORT_BUDGET": "1"}

    def snakemake(*args):
        return subprocess.run([*SNAKEMAKE, "--cores", "2", "--configfile", str(config_path), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=900, env=env)

    done = snakemake()
    assert done.returncode == 0, done.stderr[-4000:]
    failed = [p for p in (tmp_path / "results" / "runs").iterdir() if "RaisingMethod" in p.name]
    assert len(failed) == 1 and RunRecord(failed[0]).manifest()["status"] == "failed"
    missing = pd.read_csv(next((tmp_path / "results" / "aggregate").iterdir()) / "missing.csv")
    assert list(missing["reason"]) == ["status failed: ZeroDivisionError: raised by a user method"]
    published = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    assert len(published) == 1
    board = pd.read_csv(published[0] / "leaderboard.csv")
    # Its row stays, with 0 runs, in its scope and in the overall scope if there is one (at
    # 300 steps the scope may be flagged unlearned and so left out of the overall scope).
    overall = int((board["suite"] == "all").any())
    assert board.loc[board["method"] == "test_failures:RaisingMethod", "runs"].tolist() == [0] * (1 + overall)
    (published[0] / "notes.md").write_text("my notes")

    forced = snakemake("--forcerun", "report")
    assert forced.returncode == 0, forced.stderr[-4000:]
    assert (published[0] / "notes.md").read_text() == "my notes"
    assert "Nothing to be done" in snakemake().stderr


@pytest.mark.slow
def test_workflow_after_ctrl_c_is_finished_by_the_same_command(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) while a job trains; the same command
    then resumes the run from its checkpoint and finishes the workflow."""
    import signal
    import time

    config = {"name": "interrupted", "algos": ["dqn"], "archs": ["mlp"], "suites": ["classic_control"],
              "methods": ["none"], "tasks": {"classic_control": ["gym:CartPole-v1"]}, "seeds": [0],
              "steps": {"classic_control": 10000},
              "overrides": {"dqn": {"learning_starts": 500, "eval_every_steps": 5000, "eval_episodes": 1,
                                    "checkpoint_every_steps": 500, "monitor_every_updates": 500, "hidden_sizes": [16]}},
              "aggregate": {"reps": 100}, "report_metrics": ["dormant_ratio@0.1"]}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [*SNAKEMAKE, "--cores", "1", "--configfile", str(config_path)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "results" / "runs"
    deadline = time.monotonic() + 600
    while not list(runs.glob(f"*/{results.CHECKPOINT}")):
        assert process.poll() is None, "the workflow ended before the first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=120)
    assert process.returncode != 0

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    (run,) = runs.iterdir()
    manifest = RunRecord(run).manifest()
    assert manifest["status"] == "completed" and manifest["resumes"] >= 1
    assert [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
