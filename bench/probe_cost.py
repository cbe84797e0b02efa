"""Cost of the plasticity probe at the default cadence, as a fraction of training time.

For each case (SAC on dmc:cartpole-swingup and DQN on gym:CartPole-v1 by default, each
with the default config's settings) one real run is trained with the default probe
settings (probe_every_updates, probe_steps, probe_lr, probe_batch_size from spec.TRAINER_DEFAULTS),
and, in that same run, the time spent in the probe calls is summed apart from the rest.
Printed per case:

- of the run : probe time / the whole run's wall time (env steps, updates, monitor,
  evaluations, checkpoints, probes), i.e. what the probe adds to a training job;
- of updates : probe time / the time of the update loop without the probes (replay
  sampling, gradient updates, monitor, methods): the bound for a run whose env steps and
  evaluations cost nothing.

Both are measured in one process, so a noisy shared machine moves numerator and
denominator alike. Usage: python bench/probe_cost.py [--threads 1] [--device cpu]
[--case sac:dmc:cartpole-swingup:10000] (algo:task:steps; repeatable)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from plasticity_bench.spec import build_spec
from plasticity_bench.train import Trainer

# The default config's budgets and overrides (workflow/config/default.yaml) for these cells.
CASES = [("sac", "dmc:cartpole-swingup", 10_000), ("dqn", "gym:CartPole-v1", 50_000)]
OVERRIDES = {"sac": ["learning_starts=1000", "eval_every_steps=2500", "eval_episodes=5"], "dqn": ["eval_every_steps=5000"]}


class TimedTrainer(Trainer):
    """A Trainer that sums the seconds of its probe calls and of its update loop."""

    probe_seconds = 0.0
    update_seconds = 0.0
    probe_calls = 0

    def probe_plasticity(self) -> None:
        start = time.perf_counter()
        super().probe_plasticity()
        self.probe_seconds += time.perf_counter() - start
        self.probe_calls += 1

    def train_on_replay(self) -> None:
        start = time.perf_counter()
        super().train_on_replay()
        self.update_seconds += time.perf_counter() - start


def measure(algo: str, task: str, steps: int, args: argparse.Namespace) -> None:
    spec = build_spec(algo, "mlp", "none", task, seed=0, steps=steps, overrides=OVERRIDES.get(algo, []))
    hp = spec.hyperparams
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TimedTrainer(spec, Path(tmp), threads=args.threads, device=torch.device(args.device), progress=False)
        start = time.perf_counter()
        trainer.run()
        total = time.perf_counter() - start
    probe = trainer.probe_seconds
    updates_only = trainer.update_seconds - probe
    sizes = "x".join(str(s) for s in hp["hidden_sizes"])
    print(f"{algo} on {task}, {steps} steps ({sizes} {hp['activation']}, {trainer.updates} updates, "
          f"{args.device}, {args.threads} thread(s)); probe every {hp['probe_every_updates']} updates, "
          f"{hp['probe_steps']} steps x {hp['probe_targets']} targets on {hp['probe_batch_size']} inputs, roles "
          f"{', '.join(trainer.agent.roles)}")
    print(f"  run {total:7.1f} s, update loop {updates_only:7.1f} s, probe {probe:6.2f} s in {trainer.probe_calls} "
          f"calls ({1e3 * probe / max(trainer.probe_calls, 1):.0f} ms/call)")
    print(f"  probe cost: {100 * probe / total:5.2f}% of the run, {100 * probe / updates_only:5.2f}% of updates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--case", action="append", help="algo:task:steps, e.g. sac:dmc:cartpole-swingup:10000")
    args = parser.parse_args()
    cases = [(c.split(":")[0], ":".join(c.split(":")[1:-1]), int(c.split(":")[-1])) for c in args.case] if args.case else CASES
    for algo, task, steps in cases:
        measure(algo, task, steps, args)


if __name__ == "__main__":
    main()
