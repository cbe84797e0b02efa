"""The Snakemake pipeline: real snakemake runs of the smoke config, config validation, matrices."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from plasticity_bench.matrix import expand, sweep_entries

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "workflow" / "config" / "smoke.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def snakemake(workdir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # the rules call the venv's plasticity-bench
    env = {**__import__("os").environ, "PATH": f"{bin_dir}:{__import__('os').environ['PATH']}"}
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_smoke_workflow_end_to_end(tmp_path):
    done = snakemake(tmp_path, "--cores", "2", "--configfile", str(SMOKE))
    assert done.returncode == 0, done.stderr[-4000:]
    reports = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    assert len(reports) == 1
    report = reports[0]
    board = pd.read_csv(report / "leaderboard.csv")
    assert (board["suite"] == "all").any()  # the overall scope ranks across suites
    board = board[board["suite"] != "all"]
    config = yaml.safe_load(SMOKE.read_text())
    assert set(board["method"]) == set(config["methods"]) | set(sweep_entries(config["sweep"]))
    assert set(board["algo"]) == {"sac", "td3", "dqn", "sl"}  # sl: the supervised control
    assert set(board["arch"]) == {"mlp", "residual", "diffusion"}
    assert (board["runs"] == 2).all()  # 2 seeds × 1 task per scope
    for kind in ["interval_estimates", "sample_efficiency", "inactive_vs_dormant", "probability_of_improvement",
                 "sensitivity"]:
        for suffix in (".pdf", ".png"):
            assert list((report / "figures").glob(f"{kind}_*{suffix}")), (kind, suffix)
    curves = {p.stem.split("_")[-1] for p in (report / "figures").glob("metric_curves_*.png")}
    assert curves == {"ratio-0.1"}, curves  # the config's report_metrics: dormant_ratio@0.1 only
    for name in ["leaderboard.md", "leaderboard.tex", "index.html", "manifest.json"]:
        assert (report / name).stat().st_size > 0
    assert (tmp_path / "reports" / "index.md").exists()

    again = snakemake(tmp_path, "--cores", "2", "--configfile", str(SMOKE))
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    html = tmp_path / "report.html"
    made = snakemake(tmp_path, "--configfile", str(SMOKE), "--report", str(html))
    assert made.returncode == 0, made.stderr[-3000:]
    assert html.stat().st_size > 10_000


def write_config(tmp_path: Path, change) -> Path:
    config = yaml.safe_load(SMOKE.read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "change, must_mention",
    [
        (lambda c: c.update(methods=["none", "magic"]), ["magic"]),
        (lambda c: c.update(seeds="three"), ["seeds", "three"]),
        (lambda c: c.pop("algos"), ["algos"]),
        (lambda c: c.update(learning_rate=0.1), ["learning_rate"]),
        (lambda c: c["overrides"]["sac"].update(learning_starts="soon"), ["learning_starts", "soon"]),
        (lambda c: c.update(suites=["atari57"]), ["atari57", "classic_control"]),
    ],
)
def test_invalid_config_fails_at_parse_time_naming_the_key(tmp_path, change, must_mention):
    config = write_config(tmp_path, change)
    result = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for text in must_mention:
        assert text in output, (text, output[-2000:])
    assert not (tmp_path / "results").exists()


def test_jobs_keep_the_report_version_named_at_start(tmp_path, monkeypatch):
    """A job re-parses the workflow (under SLURM, later and elsewhere); the version chosen by
    the first parse reaches it through the environment, so a commit in between does not
    rename the report directory under the running workflow."""
    first = snakemake(tmp_path, "-n", "--configfile", str(SMOKE))
    assert first.returncode == 0, first.stderr[-3000:]
    config_hash = re.search(r"results/matrix-([0-9a-f]{8})\.json", first.stdout + first.stderr).group(1)
    monkeypatch.setenv(f"PLASTICITY_BENCH_REPORT_VERSION_{config_hash}", "v0.1.0-pinned")
    pinned = snakemake(tmp_path, "-n", "--configfile", str(SMOKE))
    assert pinned.returncode == 0, pinned.stderr[-3000:]
    assert "reports/v0.1.0-pinned" in pinned.stdout + pinned.stderr


def test_paper_config_dry_run_lists_the_full_matrix(tmp_path):
    result = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "workflow" / "config" / "paper.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "runs planned" in result.stderr


def test_default_config_can_separate_methods():
    """Issue 25's default: every scope (suite x algo x arch) runs the four seed methods and
    resets with at least 5 seeds; an RL scope has at least 2 leaderboard tasks (a continual
    run's segments after the first are tasks of its scope); the supervised control is one
    task. The fresh-agent references of the continual scope are method none."""
    runs, _ = expand(yaml.safe_load((ROOT / "workflow" / "config" / "default.yaml").read_text()))
    scopes: dict[tuple, list] = {}
    for run in runs:
        if run.reference:
            assert run.spec.method == "none"
            continue
        scopes.setdefault((run.suite, run.spec.algo, run.spec.arch), []).append(run.spec)
    assert len(scopes) >= 3 and any(suite.startswith("continual") for suite, _, _ in scopes)
    for scope, specs in scopes.items():
        assert {spec.method for spec in specs} == {"none", "layer_norm", "redo", "regrama", "reset"}, scope
        tasks = {spec.task: spec for spec in specs}
        scored = sum(spec.steps // spec.hyperparams["sequence"]["segment_steps"] - 1 if "sequence" in spec.hyperparams
                     else 1 for spec in tasks.values())
        assert scored >= (1 if scope[1] == "sl" else 2), scope
        assert len({spec.seed for spec in specs}) >= 5, scope


@pytest.mark.parametrize("name", ["smoke", "paper"])
def test_every_config_has_every_valid_algorithm_architecture_cell(name):
    from plasticity_bench import registry
    from plasticity_bench.spec import InvalidCombinationError, build_spec

    valid = set()
    for algo in registry.ALGOS:
        for arch in registry.ARCHS:
            task = "gym:CartPole-v1" if algo == "dqn" else "gym:Pendulum-v1"
            try:
                build_spec(algo, arch, "none", task, 0, 100)
            except InvalidCombinationError:
                continue
            valid.add((algo, arch))
    assert len(valid) == 8  # DQN has no actor for a diffusion policy
    runs, _ = expand(yaml.safe_load((ROOT / "workflow" / "config" / f"{name}.yaml").read_text()))
    # The supervised control (algo sl) is no RL cell; tests/test_supervised.py checks the smoke config runs it.
    assert {(run.spec.algo, run.spec.arch) for run in runs if run.spec.algo != "sl"} == valid


def test_expansion_drops_invalid_combinations_with_reasons():
    smoke = yaml.safe_load(SMOKE.read_text())
    suites = ["classic_control", "classic_control_continuous"]
    # The smoke config's main product on two algorithms (its keys that name other suites,
    # algorithms or methods would be refused as naming what this config does not run).
    config = {"algos": ["sac", "dqn"], "archs": ["mlp"], "methods": ["none", "redo+regrama"], "suites": suites,
              "seeds": smoke["seeds"], "tasks": {suite: smoke["tasks"][suite] for suite in suites},
              "steps": {suite: smoke["steps"][suite] for suite in suites},
              "overrides": {key: smoke["overrides"][key] for key in ("all", "sac", "dqn")}}
    runs, dropped = expand(config)
    assert {(r.spec.algo, r.spec.task) for r in runs} == {("sac", "gym:Pendulum-v1"), ("dqn", "gym:CartPole-v1")}
    assert len(runs) == 2 * 2  # one method × one task × two seeds, per algorithm
    reasons = " | ".join(d["reason"] for d in dropped)
    assert "suite classic_control is for dqn" in reasons
    assert "reset schedule" in reasons
    # The CLI arguments of a planned run rebuild exactly its spec (same run id).
    run = runs[0]
    from plasticity_bench.spec import build_spec

    args = dict(zip(run.cli_args()[0::2], run.cli_args()[1::2]))
    overrides = [v for k, v in zip(run.cli_args()[0::2], run.cli_args()[1::2]) if k == "--set"]
    rebuilt = build_spec(args["--algo"], args["--arch"], args["--method"], args["--task"], int(args["--seed"]),
                         int(args["--steps"]), overrides)
    assert rebuilt.run_id == run.spec.run_id
