"""Training throughput (env steps/s with updates) per algorithm and task.

Each row also measures, in the same run, the bare environment with random actions, and
prints training speed as a ratio to it, so numbers from a noisy shared machine stay
comparable. Usage: python bench/throughput.py [--steps 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from plasticity_bench.environments import make_env
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer

CASES = [
    ("sac", "mujoco:HalfCheetah-v5"),
    ("sac", "dmc:cheetah-run"),
    ("dqn", "gym:CartPole-v1"),
    ("dqn", "minatar:breakout"),
]


def env_steps_per_second(task: str, steps: int) -> float:
    env = make_env(task)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n)) if hasattr(env.action_space, "n") else rng.uniform(-1, 1, env.action_space.shape)
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def training_steps_per_second(algo: str, task: str, steps: int, threads: int) -> float:
    """Env steps/s once learning has started (replay warmed up, updates at the default ratio)."""
    warmup = 1000
    spec = build_spec(algo, "mlp", "none", task, seed=0, steps=warmup + steps,
                      overrides=[f"learning_starts={warmup}", f"eval_every_steps={10 * (warmup + steps)}"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, tmp, threads, device=__import__("torch").device("cpu"), progress=False)
        trainer.start_episode()
        for phase_steps in (warmup, steps):
            start = time.perf_counter()
            for _ in range(phase_steps):
                over = trainer.collect_step()
                trainer.train_on_replay()
                if over:
                    trainer.start_episode()
        return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"{'algo':<5} {'task':<24} {'train steps/s':>14} {'env-only steps/s':>17} {'ratio':>7}")
    for algo, task in CASES:
        train_rate = training_steps_per_second(algo, task, args.steps, args.threads)
        env_rate = env_steps_per_second(task, 5000)
        print(f"{algo:<5} {task:<24} {train_rate:>14.1f} {env_rate:>17.1f} {train_rate / env_rate:>7.4f}")


if __name__ == "__main__":
    main()
