"""Cluster execution: the profiles are valid Snakemake settings, the SLURM profile dry-runs
the smoke config, and (opt-in, as root) a real SLURM on this machine runs it end to end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "workflow" / "profiles"
SMOKE = ROOT / "workflow" / "config" / "smoke.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def profile(name: str) -> dict:
    # Snakemake loads profiles/default next to the Snakefile by itself; the others are named.
    folder = ROOT / "profiles" / name if name == "default" else PROFILES / name
    return yaml.safe_load((folder / "config.yaml").read_text())


@pytest.fixture(scope="module")
def snakemake_options() -> set[str]:
    help_text = subprocess.run([*SNAKEMAKE, "--help"], capture_output=True, text=True, timeout=120).stdout
    return set(re.findall(r"--([a-z][a-z0-9-]*)", help_text))


@pytest.mark.parametrize("name", ["default", "local", "slurm"])
def test_profile_keys_are_snakemake_options(name, snakemake_options):
    # With the SLURM plugin installed, its options (slurm-*) are in --help too.
    unknown = set(profile(name)) - snakemake_options
    assert not unknown, f"profile {name}: not options of this snakemake: {sorted(unknown)}"


def test_local_profile_is_the_default_one_plus_cores():
    default, local = profile("default"), profile("local")
    assert {key: local[key] for key in default} == default
    assert set(local) - set(default) == {"cores"}


def test_slurm_profile_settings():
    slurm = profile("slurm")
    assert slurm["executor"] == "slurm"
    assert slurm["slurm-status-command"] == "squeue"  # no sacct without slurmdbd
    assert slurm["rerun-incomplete"] is True and slurm["jobs"] >= 1 and slurm["latency-wait"] >= 5
    assert {"slurm_partition", "slurm_account", "runtime", "mem_mb"} <= set(slurm["default-resources"])


def test_slurm_profile_dry_runs_the_smoke_config(tmp_path):
    result = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--profile", str(PROFILES / "slurm"),
                             "--configfile", str(SMOKE)], capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    from plasticity_bench.matrix import expand, train_jobs

    planned, _ = expand(yaml.safe_load(SMOKE.read_text()))
    # One sbatch job per cell's seeds (one GPU each when config gpus asks for it).
    assert re.search(rf"^train\s+{len(train_jobs(planned))}$", output, re.M), output[-3000:]


@pytest.mark.skipif(os.environ.get("PLASTICITY_BENCH_SLURM_TEST") != "1",
                    reason="installs and starts SLURM (root, apt): set PLASTICITY_BENCH_SLURM_TEST=1 to run")
@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_smoke_workflow_through_a_real_slurm():
    env = {**os.environ, "SNAKEMAKE": str(Path(sys.executable).parent / "snakemake")}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_smoke.sh")], capture_output=True, text=True,
                            timeout=2300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "slurm_smoke: OK" in result.stdout
    submitted = re.search(r"slurm_smoke: (\d+) of (\d+) jobs submitted with sbatch", result.stdout)
    assert submitted and int(submitted.group(1)) >= 4, result.stdout  # matrix, train..., aggregate, report
    assert f"{submitted.group(1)} COMPLETED in sacct --completion" in result.stdout
