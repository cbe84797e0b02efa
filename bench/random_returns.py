"""Measure the returns of a uniform random policy on every task of every suite.

    python bench/random_returns.py [--episodes 10] [--slow-episodes 3] [--seed 0] [--suite NAME]

Episode i of a task is reset with seed ``seed + i``; actions come from a numpy Generator
seeded with ``seed``. Prints one row per task: mean, std and episodes of the random return,
and the environment's steps per second under random actions (simulation + our wrappers).
The numbers go into plasticity_bench/suites/*.yaml as each task's ``random`` score.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from plasticity_bench.environments import make_env
from plasticity_bench.environments.suites import load_suites

# Humanoid and dog are the slowest simulations (1-3k steps/s on one core); fewer episodes there.
SLOW_TASK_MARKERS = ("dmc:humanoid", "dmc:dog")


def random_returns(task: str, episodes: int, seed: int) -> tuple[np.ndarray, float]:
    env = make_env(task)
    env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    returns, steps, start = [], 0, time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            if hasattr(env.action_space, "n"):
                action = int(rng.integers(env.action_space.n))
            else:
                action = rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(np.float32)
            _, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.asarray(returns), steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--slow-episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suite", action="append", help="only these suites (repeatable)")
    args = parser.parse_args()

    tasks: dict[str, None] = {}
    for name, suite in load_suites().items():
        if args.suite and name not in args.suite:
            continue
        tasks.update(dict.fromkeys(suite.tasks))
    print(f"{'task':36s} {'mean':>10s} {'std':>9s} {'episodes':>8s} {'steps/s':>9s}", flush=True)
    for task in tasks:
        episodes = args.slow_episodes if task.startswith(SLOW_TASK_MARKERS) else args.episodes
        returns, steps_per_second = random_returns(task, episodes, args.seed)
        print(
            f"{task:36s} {returns.mean():10.3f} {returns.std():9.3f} {episodes:8d} {steps_per_second:9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
