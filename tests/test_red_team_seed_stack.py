"""What a method does to its role's optimizer and parameters takes effect in a seed stack
exactly as in the seed's one-seed run (issue: the stack ignored a learning rate set to 0 and
a frozen layer, and shared one Adam step count between the seeds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from plasticity_bench import results
from plasticity_bench.methods.base import Method
from plasticity_bench.training import train_seeds
from plasticity_bench.spec import build_spec
from plasticity_bench.training import train

ACT_AT = 20
OVERRIDES = ["monitor_every_updates=10", "hidden_sizes=[32,32]", "eval_episodes=1", "checkpoint_every_steps=100",
             "learning_starts=100", "eval_every_steps=150", "replay_ratio=1"]


class ZeroLearningRate(Method):
    """Sets every optimizer's learning rate to 0 at update 20: the networks stop moving."""

    name = "zero_lr"

    def after_update(self, roles, update_step, sample_batch):
        if update_step == ACT_AT:
            for role in roles.values():
                for group in role.optimizer.param_groups:
                    group["lr"] = 0.0
        return {}


class FreezeFirstLayer(Method):
    """Freezes the first parameter of every role at update 20 and logs, every update after,
    how far it has moved since (``frozen_moved``)."""

    name = "freeze_first"

    def after_update(self, roles, update_step, sample_batch):
        if update_step == ACT_AT:
            self.frozen = {}
            for name, role in roles.items():
                first = next(role.network.parameters())
                first.requires_grad_(False)
                self.frozen[name] = (first, first.detach().clone())
        if update_step > ACT_AT:
            return {f"frozen_moved/{name}": float((param - held).abs().max()) for name, (param, held) in self.frozen.items()}
        return {}


class ResetStepWherePositive(Method):
    """At update 20, restarts Adam's bias correction (step count 0, in place) of the roles
    whose first weight starts positive: a seed-dependent decision, as a method that resets
    what it finds dormant makes."""

    name = "reset_step"

    def after_update(self, roles, update_step, sample_batch):
        if update_step == ACT_AT:
            acted = {}
            for name, role in roles.items():
                acted[f"step_reset/{name}"] = float(next(role.network.parameters()).view(-1)[0] > 0)
                if acted[f"step_reset/{name}"]:
                    for state in role.optimizer.state.values():
                        state["step"].zero_()
            return acted
        return {}


def specs(method: type, seeds=(0, 1)):
    return [build_spec("dqn", "mlp", f"{__name__}:{method.__name__}", "gym:CartPole-v1", seed, 300, OVERRIDES)
            for seed in seeds]


def run_both(tmp_path: Path, method: type, seeds=(0, 1)):
    group = specs(method, seeds)
    for spec in group:
        train(spec, tmp_path / "alone" / spec.run_id, progress=False, allow_short_budget=True, tensorboard=False)
    manifests = train_seeds(group, [tmp_path / "together" / spec.run_id for spec in group], progress=False,
                            allow_short_budget=True, tensorboard=False)
    assert [m["status"] for m in manifests] == ["completed"] * len(group)
    return group


def assert_bit_for_bit(alone: Path, together: Path) -> None:
    a, b = results.load_checkpoint(alone / results.CHECKPOINT), results.load_checkpoint(together / results.CHECKPOINT)
    for name, module in a["agent"]["modules"].items():
        if "optimizer" in name:
            continue
        for key, value in module.items():
            assert torch.equal(value, b["agent"]["modules"][name][key]), f"{name}.{key}"
    pd.testing.assert_frame_equal(pd.read_parquet(alone / results.METRICS), pd.read_parquet(together / results.METRICS))
    pd.testing.assert_frame_equal(pd.read_parquet(alone / results.EVAL), pd.read_parquet(together / results.EVAL))


def drift(run_dir: Path, network: str = "q") -> pd.Series:
    metrics = pd.read_parquet(run_dir / results.METRICS)
    rows = metrics[(metrics.metric == "weight_drift") & (metrics.network == network) & (metrics.layer == "all")]
    return rows.set_index("step")["value"]


def test_a_learning_rate_set_to_zero_stops_training_stacked_and_alone(tmp_path):
    group = run_both(tmp_path, ZeroLearningRate)
    for spec in group:
        for folder in ("alone", "together"):
            series = drift(tmp_path / folder / spec.run_id)
            # rows at updates 0, 10, 20, ...: from update 20 on the q network no longer moves
            assert len(series) == 21 and series.iloc[2:].nunique() == 1, (folder, series.tolist())
        assert_bit_for_bit(tmp_path / "alone" / spec.run_id, tmp_path / "together" / spec.run_id)


def test_a_frozen_layer_stays_frozen_stacked_and_alone(tmp_path):
    group = run_both(tmp_path, FreezeFirstLayer)
    for spec in group:
        for folder in ("alone", "together"):
            metrics = pd.read_parquet(tmp_path / folder / spec.run_id / results.METRICS)
            moved = metrics[metrics.metric == "frozen_moved"]["value"]
            assert len(moved) == 180 and moved.max() == 0.0, (folder, moved.max())
        assert_bit_for_bit(tmp_path / "alone" / spec.run_id, tmp_path / "together" / spec.run_id)


def test_an_adam_step_count_reset_in_one_seed_stays_in_that_seed(tmp_path):
    # seed 0 keeps its step counts, seed 1 resets them (asserted below)
    group = run_both(tmp_path, ResetStepWherePositive, (0, 1))
    decisions = []
    for spec in group:
        metrics = pd.read_parquet(tmp_path / "alone" / spec.run_id / results.METRICS)
        decisions.append(metrics[metrics.metric == "step_reset"]["value"].tolist())
    assert decisions == [[0.0], [1.0]], decisions  # the seeds disagree: the case under test
    for spec in group:
        assert_bit_for_bit(tmp_path / "alone" / spec.run_id, tmp_path / "together" / spec.run_id)


@pytest.mark.parametrize("algo,arch,method,task,steps", [
    ("dqn", "mlp", "none", "gym:CartPole-v1", 2100),       # 2000 updates
    ("sac", "mlp", "layer_norm", "gym:Pendulum-v1", 700),  # 600 updates, LayerNorm's affine stacked
    ("td3", "residual", "none", "gym:Pendulum-v1", 700),
])
def test_a_seed_in_a_stack_of_four_is_its_one_seed_run_bit_for_bit(tmp_path, algo, arch, method, task, steps):
    """Past the few hundred updates after which the fused Adam kernel's split of the
    flattened [seeds, ...] tensor used to change a seed's rounding (docs/robustness.md)."""
    overrides = [*OVERRIDES, "monitor_every_updates=100", "checkpoint_every_steps=1000", "eval_every_steps=350"]
    group = [build_spec(algo, arch, method, task, seed, steps, overrides) for seed in (0, 1, 2, 3)]
    for spec in group[:2]:
        train(spec, tmp_path / "alone" / spec.run_id, progress=False, allow_short_budget=True, tensorboard=False)
    manifests = train_seeds(group, [tmp_path / "together" / spec.run_id for spec in group], progress=False,
                            allow_short_budget=True, tensorboard=False)
    assert all(manifest["trained_with"][0]["stack"] == [0, 1, 2, 3] for manifest in manifests)
    for spec in group[:2]:
        assert_bit_for_bit(tmp_path / "alone" / spec.run_id, tmp_path / "together" / spec.run_id)
