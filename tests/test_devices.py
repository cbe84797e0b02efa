"""Device selection: auto/cpu/cuda[:N] resolution, errors listing valid choices, and the
slot locks that spread local parallel jobs over several GPUs (logic tested without a GPU)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from plasticity_bench.devices import (DeviceError, SlotLock, choose_device, device_for_slot,
                                      resolve_device, select_training_device)


@pytest.mark.parametrize(
    "requested, count, slot, expected",
    [
        ("auto", 0, None, "cpu"),
        ("auto", 0, 3, "cpu"),
        ("auto", 1, None, "cuda"),
        ("auto", 4, None, "cuda"),
        ("auto", 4, 0, "cuda:0"),
        ("auto", 4, 5, "cuda:1"),
        ("auto", 3, 8, "cuda:2"),
        ("cpu", 0, None, "cpu"),
        ("cpu", 8, 2, "cpu"),
        ("cuda", 1, None, "cuda"),
        ("cuda:1", 2, 0, "cuda:1"),  # an explicit device ignores the slot
        ("CUDA:0", 1, None, "cuda:0"),
    ],
)
def test_choose_device(requested, count, slot, expected):
    assert choose_device(requested, count, slot) == expected


def test_slots_spread_jobs_round_robin_over_gpus():
    assert [device_for_slot(slot, 3) for slot in range(7)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert device_for_slot(5, 0) == "cpu"
    with pytest.raises(ValueError):
        device_for_slot(-1, 2)


@pytest.mark.parametrize(
    "requested, count, must_mention",
    [
        ("cuda", 0, ["'cuda'", "no CUDA GPU", "auto, cpu"]),
        ("cuda:0", 0, ["'cuda:0'", "no CUDA GPU", "auto, cpu"]),
        ("cuda:2", 2, ["'cuda:2'", "2 CUDA GPU(s)", "cuda:0, cuda:1"]),
        ("tpu", 1, ["'tpu'", "auto, cpu, cuda, cuda:0"]),
        ("cuda:x", 1, ["'cuda:x'", "cuda:0"]),
    ],
)
def test_unavailable_device_names_the_valid_choices(requested, count, must_mention):
    with pytest.raises(DeviceError) as error:
        choose_device(requested, count)
    for text in must_mention:
        assert text in str(error.value), (text, str(error.value))


def test_resolve_device_on_this_machine():
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if count else "cpu")
    with pytest.raises(DeviceError):
        resolve_device(f"cuda:{count}")


def test_slot_lock_takes_the_lowest_free_slot(tmp_path):
    first, second, third = SlotLock(tmp_path), SlotLock(tmp_path), SlotLock(tmp_path)
    assert (first.slot, second.slot, third.slot) == (0, 1, 2)
    second.release()
    with SlotLock(tmp_path) as again:  # the freed slot, i.e. the GPU that just got a free place
        assert again.slot == 1
    first.release(), third.release()
    with SlotLock(tmp_path) as after_all:
        assert after_all.slot == 0


def test_a_killed_job_frees_its_slot(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from plasticity_bench.devices import SlotLock
            lock = SlotLock({str(tmp_path)!r})
            print(lock.slot, flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"
        with SlotLock(tmp_path) as busy:
            assert busy.slot == 1
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        with SlotLock(tmp_path) as freed:
            assert freed.slot == 0
    finally:
        if holder.poll() is None:
            holder.kill()


def test_training_device_takes_a_slot_only_when_it_spreads_jobs(tmp_path):
    device, lock = select_training_device("cpu", tmp_path / "slots")
    assert device == torch.device("cpu") and lock is None
    device, lock = select_training_device("auto", tmp_path / "slots")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2:  # one GPU or none: nothing to spread, no slot file
        assert lock is None and not (tmp_path / "slots").exists()
    else:
        assert device == torch.device(f"cuda:{lock.slot % count}")
        lock.release()


def test_cli_refuses_an_unavailable_device_before_writing(cli, tmp_path):
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    out = tmp_path / "run"
    result = cli("train", "--algo", "sac", "--task", "gym:Pendulum-v1", "--steps", "100",
                 "--device", f"cuda:{count}", "--out", str(out), "--gpu-slots", str(tmp_path / "slots"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"'cuda:{count}'" in lines[0] and "valid choices: auto, cpu" in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "slots").exists()
