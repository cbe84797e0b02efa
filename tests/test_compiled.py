"""The compiled update (hyperparameter compile: on, training/compiled.py): its place in the
spec and run id, its exactness against eager after 200 updates, a seed alone against the
same seed in a compiled stack, and inductor's cache beside the run folders."""

from __future__ import annotations

import pytest
import torch

from plasticity_bench import results
from plasticity_bench.spec import SpecError, build_spec
from plasticity_bench.training import train_seeds

# DQN on CartPole: 2100 steps, learning from step 100 at replay ratio 0.1: 200 updates.
SETTINGS = ["hidden_sizes=[32,32]", "learning_starts=100", "eval_every_steps=1050", "eval_episodes=2",
            "monitor_every_updates=50"]
# Measured on this CPU (torch 2.13, inductor): 1.3e-7 after 200 updates; the bound leaves room
# for another CPU's kernels, and is far below what a wrong update would give (~1e-1).
TOLERANCE = 1e-5


def spec(seed: int, *extra: str):
    return build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed, 2100, [*SETTINGS, *extra])


def test_compile_off_stays_out_of_the_run_id_and_on_enters_it():
    off, on = spec(0), spec(0, "compile=on")
    assert "compile" not in off.to_dict()["hyperparams"] and off.hyperparams["compile"] == "off"
    assert on.to_dict()["hyperparams"]["compile"] == "on" and on.run_id != off.run_id
    assert spec(0, "compile=off").run_id == off.run_id
    with pytest.raises(SpecError, match=r"compile='fast' is not a choice; valid: off, on"):
        spec(0, "compile=fast")


def network_parameters(run_dir) -> dict[str, torch.Tensor]:
    modules = results.load_checkpoint(run_dir / results.CHECKPOINT)["agent"]["modules"]
    return {f"{name}.{key}": value.double() for name, module in modules.items() if "optimizer" not in name
            for key, value in module.items() if isinstance(value, torch.Tensor)}


def largest_relative_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(((a[key] - b[key]).abs().max() / a[key].abs().max().clamp_min(1e-12)).item() for key in a)


@pytest.mark.slow
def test_compiled_update_matches_eager_and_a_seed_matches_itself_in_a_stack(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    eager = spec(0)
    train_seeds([eager], [tmp_path / "eager" / eager.run_id], device="cpu", progress=False)
    alone = spec(0, "compile=on")
    manifests = train_seeds([alone], [tmp_path / "compiled" / alone.run_id], device="cpu", progress=False)
    assert manifests[0]["status"] == "completed"
    assert "compiled the update in" in capsys.readouterr().out  # the compilation's seconds are printed
    cache = tmp_path / "compiled" / ".inductor-cache"
    assert cache.is_dir() and any(cache.rglob("*"))  # beside the runs: the next job starts warm

    compiled_params = network_parameters(tmp_path / "compiled" / alone.run_id)
    difference = largest_relative_difference(network_parameters(tmp_path / "eager" / eager.run_id), compiled_params)
    assert 0 < difference < TOLERANCE  # compiled is not eager bit for bit, but close

    stacked = [spec(0, "compile=on"), spec(1, "compile=on")]
    train_seeds(stacked, [tmp_path / "stack" / one.run_id for one in stacked], device="cpu", progress=False)
    # Measured here: seed 0 in a compiled stack of 2 equals its compiled one-seed run exactly;
    # training/compiled.py does not promise it (kernels are compiled per stack shape).
    in_stack = network_parameters(tmp_path / "stack" / stacked[0].run_id)
    assert largest_relative_difference(compiled_params, in_stack) < TOLERANCE
