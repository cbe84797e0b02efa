"""Ctrl-C stops a run at a step boundary (interrupts.py): the step it came in finishes, the
run stops with status running, and the next start resumes it to the uninterrupted end."""

import signal

import pandas as pd
import pytest

from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.interrupts import stop_at_step_boundaries, stop_if_requested
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer
from plasticity_bench.training import train


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """These tests need Python's own SIGINT handler, as a process started from a shell has."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_first_sigint_waits_for_the_boundary_and_a_second_interrupts_at_once():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with stop_at_step_boundaries():
            signal.raise_signal(signal.SIGINT)
            reached.append("rest of the step")
            stop_if_requested()
            reached.append("next step")
    assert reached == ["rest of the step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    with pytest.raises(KeyboardInterrupt):
        with stop_at_step_boundaries():
            signal.raise_signal(signal.SIGINT)
            reached.append("after the first")
            signal.raise_signal(signal.SIGINT)
            reached.append("after the second")
    assert reached[1:] == ["after the first"]
    stop_if_requested()  # a request does not outlive its run


def test_a_sigint_after_the_last_boundary_is_raised_on_leaving():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with stop_at_step_boundaries():
            signal.raise_signal(signal.SIGINT)
            finished.append(True)  # the loop ended before it looked again
    assert finished == [True]


def test_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stop_at_step_boundaries():
        signal.raise_signal(signal.SIGINT)
        stop_if_requested()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_ctrl_c_mid_step_stops_the_run_after_that_step_and_the_next_start_resumes(tmp_path, monkeypatch):
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed=0, steps=2000,
                      overrides=["hidden_sizes=[16]", "learning_starts=200", "checkpoint_every_steps=500",
                                 "eval_every_steps=1000", "eval_episodes=1", "monitor_every_updates=100"])
    reference = train(spec, tmp_path / "reference", device="cpu", progress=False)

    collected, ended = [], []
    collect_step, end_step = Trainer.collect_step, Trainer.end_step

    def collect_then_ctrl_c(self, action=None):
        episode_over = collect_step(self, action)
        collected.append(self.env_steps)
        if self.env_steps == 700:  # mid-step: its update, monitor and bookkeeping are still to come
            signal.raise_signal(signal.SIGINT)
        return episode_over

    def record_end(self, episode_over):
        end_step(self, episode_over)
        ended.append(self.env_steps)

    monkeypatch.setattr(Trainer, "collect_step", collect_then_ctrl_c)
    monkeypatch.setattr(Trainer, "end_step", record_end)
    run_dir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):  # with TensorBoard's event writer open (the default)
        train(spec, run_dir, device="cpu", progress=False)
    assert collected[-1] == ended[-1] == 700
    assert RunRecord(run_dir).manifest()["status"] == "running"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    monkeypatch.undo()
    manifest = train(spec, run_dir, device="cpu", progress=False)
    assert manifest["status"] == "completed" and manifest["resumes"] == 1
    assert manifest["step"] == reference["step"]
    pd.testing.assert_frame_equal(RunRecord(run_dir).eval(), RunRecord(tmp_path / "reference").eval())
    pd.testing.assert_frame_equal(RunRecord(run_dir).metrics(), RunRecord(tmp_path / "reference").metrics())
