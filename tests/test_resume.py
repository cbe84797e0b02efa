"""A run SIGKILLed mid-way and started again finishes with the uninterrupted run's results."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from plasticity_bench.analysis.runs import RunRecord

pytestmark = pytest.mark.slow

RUNS = {
    # DQN with ReDo: resets, monitor rows and ε-greedy RNG all cross the kill.
    "dqn": ["--algo", "dqn", "--method", "redo", "--task", "gym:CartPole-v1", "--steps", "12000",
            "--set", "learning_starts=1000", "--set", "checkpoint_every_steps=1500", "--set", "eval_every_steps=2000",
            "--set", "eval_episodes=3", "--set", "monitor_every_updates=100", "--set", "redo.period=200"],
    # SAC with ReGraMa on a time-limited task: truncation, entropy tuning, Adam state.
    "sac": ["--algo", "sac", "--method", "regrama", "--task", "gym:Pendulum-v1", "--steps", "1800",
            "--set", "learning_starts=400", "--set", "checkpoint_every_steps=400", "--set", "eval_every_steps=600",
            "--set", "eval_episodes=2", "--set", "monitor_every_updates=200", "--set", "regrama.period=300",
            "--set", "hidden_sizes=[64, 64]"],
    # TD3 on the residual architecture with Shrink & Perturb: delayed updates, exploration
    # noise from the trainer's RNG, a method that rewrites every weight.
    "td3": ["--algo", "td3", "--arch", "residual", "--method", "shrink_perturb", "--task", "gym:Pendulum-v1",
            "--steps", "1800", "--set", "learning_starts=400", "--set", "checkpoint_every_steps=400",
            "--set", "eval_every_steps=600", "--set", "eval_episodes=2", "--set", "monitor_every_updates=200",
            "--set", "shrink_perturb.period=250", "--set", "hidden_sizes=[64, 64]"],
}


def train_command(args, out):
    # Exact equality after a resume is promised on the CPU (GPU kernels may be nondeterministic).
    return [sys.executable, "-m", "plasticity_bench", "train", *args, "--out", str(out), "--no-progress",
            "--device", "cpu"]


@pytest.mark.parametrize("algo", sorted(RUNS))
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, algo):
    args = RUNS[algo]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(train_command(args, reference), check=True, capture_output=True, timeout=900)

    process = subprocess.Popen(train_command(args, resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (resumed / "checkpoint.pt").exists():
        assert process.poll() is None, "run finished before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # kill somewhere after the first checkpoint, mid-update or mid-write
    assert process.poll() is None, "run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert RunRecord(resumed).manifest()["status"] == "running"

    subprocess.run(train_command(args, resumed), check=True, capture_output=True, timeout=900)
    manifest = RunRecord(resumed).manifest()
    assert manifest["status"] == "completed" and manifest["resumes"] >= 1

    pd.testing.assert_frame_equal(RunRecord(resumed).eval(), RunRecord(reference).eval())
    pd.testing.assert_frame_equal(RunRecord(resumed).metrics(), RunRecord(reference).metrics())


def test_completed_run_is_not_retrained(tmp_path):
    out = tmp_path / "run"
    args = ["--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "600", "--set", "learning_starts=100",
            "--set", "eval_every_steps=300", "--set", "eval_episodes=1", "--set", "monitor_every_updates=25"]
    subprocess.run(train_command(args, out), check=True, capture_output=True, timeout=300)
    before = RunRecord(out).manifest()
    checkpoint_mtime = (out / "checkpoint.pt").stat().st_mtime_ns
    again = subprocess.run(train_command(args, out), check=True, capture_output=True, text=True, timeout=300)
    assert "completed" in again.stdout
    assert RunRecord(out).manifest() == before
    assert (out / "checkpoint.pt").stat().st_mtime_ns == checkpoint_mtime
