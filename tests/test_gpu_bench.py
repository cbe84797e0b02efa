"""bench/gpu.py, the script a GPU session runs once: its CPU-sized form runs end to end here
(eager and compiled updates, end-to-end rates, the projection), and the projection of
device-hours is checked by hand on a small config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from gpu import projected_hours  # noqa: E402


def test_projected_hours_add_each_jobs_steps_at_its_nearest_measured_rate(tmp_path):
    config = {"name": "tiny", "algos": ["dqn"], "archs": ["mlp"], "methods": ["none", "layer_norm"],
              "suites": ["classic_control"], "tasks": {"classic_control": ["gym:CartPole-v1"]},
              "seeds": [0, 1, 2], "steps": {"classic_control": 36000}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    # Two jobs (one per method) of 3 seeds each; the nearest measured S to 3 is 2 (10 steps/s).
    hours, jobs, unmeasured = projected_hours(path, {"dqn": {1: 20.0, 2: 10.0, 8: 5.0}})
    assert jobs == 2 and unmeasured == []
    assert hours == pytest.approx(2 * 36000 / 10.0 / 3600)  # 2 hours
    assert projected_hours(path, {"sac": {1: 1.0}})[2] == ["dqn"]  # no rate: named, not guessed


@pytest.mark.slow
def test_gpu_bench_runs_its_cpu_sized_form():
    done = subprocess.run([sys.executable, "bench/gpu.py", "--device", "cpu", "--seeds", "1", "2", "--updates", "3",
                           "--steps-scale", "0.01", "--modes", "eager", "compiled", "graphs", "--compile-seeds", "1",
                           "--skip-exactness"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "graphs: skipped (CUDA graphs need a CUDA device)" in out
    for name in ("dqn", "sac", "td3"):
        eager = next(line for line in out.splitlines() if line.startswith(f"{name} ") and ", eager:" in line)
        assert "S=1 " in eager and "S=2 " in eager and "failed" not in eager
        compiled = next(line for line in out.splitlines() if line.startswith(f"{name} ") and ", compiled:" in line)
        assert "S=1 " in compiled and "failed" not in compiled and "S=2" not in compiled
    assert any(line.startswith("sac ") and "end to end (compile: on" in line and "S=1 " in line
               for line in out.splitlines())
    assert "projected paper.yaml: " in out and "device-hours" in out and "not counted" not in out
