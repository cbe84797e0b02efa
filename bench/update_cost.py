"""Time per gradient update of every algorithm × architecture cell, as a ratio to SAC-MLP.

All cells are timed in the same process on the same thread count, from a replay buffer
filled with random transitions (continuous cells on mujoco:HalfCheetah-v5, 17-d obs and
6-d actions; DQN on minatar:breakout, 400-d obs). Usage: python bench/update_cost.py [--updates 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from plasticity_bench import registry
from plasticity_bench.spec import InvalidCombinationError, build_spec
from plasticity_bench.training.run import Trainer

TASKS = {"sac": "mujoco:HalfCheetah-v5", "td3": "mujoco:HalfCheetah-v5", "dqn": "minatar:breakout"}


def seconds_per_update(algo: str, arch: str, updates: int) -> float:
    spec = build_spec(algo, arch, "none", TASKS[algo], seed=0, steps=10**6, overrides=["learning_starts=1000000"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, tmp, threads=1, device=torch.device("cpu"), progress=False)
        trainer.start_episode()
        for _ in range(2000):
            over = trainer.collect_step()
            if over:
                trainer.start_episode()
        batch_size = trainer.hp["batch_size"]
        for _ in range(10):  # warm-up
            trainer.agent.update(trainer.replay.sample(batch_size))
        start = time.perf_counter()
        for _ in range(updates):
            trainer.agent.update(trainer.replay.sample(batch_size))
        return (time.perf_counter() - start) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    baseline = seconds_per_update("sac", "mlp", args.updates)
    print(f"{'cell':<16} {'ms/update':>10} {'ratio to sac-mlp':>17}")
    for algo in TASKS:  # the RL algorithms; sl trains no agent on an environment
        for arch in registry.ARCHS:
            try:
                cost = baseline if (algo, arch) == ("sac", "mlp") else seconds_per_update(algo, arch, args.updates)
            except InvalidCombinationError as error:
                print(f"{algo + '-' + arch:<16} {'invalid':>10}  ({error})")
                continue
            print(f"{algo + '-' + arch:<16} {1e3 * cost:>10.2f} {cost / baseline:>17.2f}")


if __name__ == "__main__":
    main()
