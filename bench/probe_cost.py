"""Cost of the plasticity probe (Lyle et al.'s protocol: 2000 steps, 10 targets) as a share of a
run's wall time.

For each case one real run is trained (seed 100, a pilot seed) and, in that same run, the time
spent in the probe calls (update 0 and every probe_every_updates) is summed apart from the
rest. Printed per case: the probe's seconds per call and its share of the whole run (env
steps, updates, monitor, evaluations, checkpoints and probes). Both are measured in one
process, so a noisy shared machine moves numerator and denominator alike.

Usage: python bench/probe_cost.py [--threads 1] [--device cpu] [--case NAME] (repeatable; NAME
one of CASES' keys)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from plasticity_bench.spec import build_spec
from plasticity_bench.training.entry import make_trainer, run_to_end

# name -> (algo, task, steps, overrides): the validation config's probed cells and a SAC cell
# with the default config's settings.
CASES = {
    "dqn-rr1": ("dqn", "gym:CartPole-v1", 30_000, ["learning_starts=1000", "eval_every_steps=3000", "eval_episodes=5",
                                                  "replay_ratio=1.0", "probe_every_updates=10000"]),
    "sl": ("sl", "sl:digits-random-labels", 10_000, []),
    "sac": ("sac", "gym:Pendulum-v1", 10_000, ["learning_starts=1000", "eval_every_steps=1000", "eval_episodes=5",
                                               "hidden_sizes=[128, 128]"]),
}


def measure(name: str, args: argparse.Namespace) -> None:
    algo, task, steps, overrides = CASES[name]
    spec = build_spec(algo, "mlp", "none", task, seed=100, steps=steps, overrides=overrides)
    hp = spec.hyperparams
    probe_seconds, calls = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(spec, Path(tmp), threads=args.threads, device=torch.device(args.device), progress=False)
        probe = trainer.probe_plasticity

        def timed_probe() -> None:
            nonlocal probe_seconds, calls
            start = time.perf_counter()
            probe()
            probe_seconds += time.perf_counter() - start
            calls += 1

        trainer.probe_plasticity = timed_probe
        start = time.perf_counter()
        run_to_end(trainer)
        total = time.perf_counter() - start
    sizes = "x".join(str(s) for s in hp["hidden_sizes"])
    print(f"{name}: {algo} on {task}, {steps} steps ({sizes}, {trainer.updates} updates, {args.device}, "
          f"{args.threads} thread(s)); probe at update 0 and every {hp['probe_every_updates']} updates, "
          f"{hp['probe_steps']} steps x {hp['probe_targets']} targets on {hp['probe_batch_size']} inputs, roles "
          f"{', '.join(trainer.agent.roles)}")
    print(f"  run {total:7.1f} s, probe {probe_seconds:6.1f} s in {calls} calls "
          f"({probe_seconds / max(calls, 1):.1f} s/call): {100 * probe_seconds / total:5.1f}% of the run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="a case of CASES (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.case or CASES:
        measure(name, args)


if __name__ == "__main__":
    main()
