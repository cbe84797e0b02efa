"""Cost of one monitor call, in training updates, for each metric set.

For each case (SAC on dmc:cheetah-run, DQN on gym:CartPole-v1 by default) a Trainer is
built as for training (default networks and monitor batch), its replay filled with random
steps and trained for a few updates; then rounds alternate between timing a block of
``agent.update`` calls (replay sampling included, env steps excluded) and one call of each
monitor variant on a fresh monitor batch:

- activity : the activity probe alone (GraMa, dormant, active units; the former monitor),
- default  : ``monitor_roles`` with every default metric (activity, ranks, norms, drift),
- hessian[role]: ``hessian_top_eigenvalue`` of one role, as the monitor runs it (stops
  early once the estimate changes by <= 1e-3 relative),
- hessian[role, all iterations]: the same with the tolerance at 0, i.e. all
  ``--hessian-iterations`` Hessian-vector products (the worst case).

Each variant's time is divided by the same round's time per update (so a noisy shared
machine moves both), and the median over rounds is printed, with the default cadence's
overhead (one call per ``monitor_every_updates`` updates). Times are seconds on this machine.
Usage: python bench/monitor_cost.py [--rounds 5] [--updates 100] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from plasticity_bench.metrics.activity import probe_activity
from plasticity_bench.metrics.curvature import hessian_top_eigenvalue
from plasticity_bench.metrics.monitor import monitor_roles
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer

CASES = [("sac", "dmc:cheetah-run"), ("dqn", "gym:CartPole-v1")]


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    synchronise(device)
    start = time.perf_counter()
    fn()
    synchronise(device)
    return time.perf_counter() - start


def measure(algo: str, task: str, args: argparse.Namespace) -> None:
    warmup = 1000
    spec = build_spec(algo, "mlp", "none", task, seed=0, steps=10**7, overrides=[f"learning_starts={warmup}"])
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, tmp, threads=args.threads, device=device, progress=False)
        hp = trainer.hp
        trainer.start_episode()
        while trainer.env_steps < warmup:
            over = trainer.collect_step()
            if over:
                trainer.start_episode()
        agent, roles = trainer.agent, trainer.agent.roles

        def updates() -> None:
            for _ in range(args.updates):
                agent.update(trainer.replay.sample(hp["batch_size"]))

        variants = {
            "activity": lambda batch: [probe_activity(r.network, loss_fn=r.loss_fn, batch=batch) for r in roles.values()],
            "default": lambda batch: monitor_roles(roles, batch, trainer.initial_params),
        }
        for role_name, role in roles.items():
            for label, tolerance in (("", 1e-3), (", all iterations", 0.0)):
                variants[f"hessian[{role_name}{label}]"] = (
                    lambda batch, role=role, tolerance=tolerance: float(hessian_top_eigenvalue(
                        role.network, role.loss_fn, batch, iterations=args.hessian_iterations, tolerance=tolerance)))
        updates()  # warm up allocators and caches
        for fn in variants.values():
            fn(trainer.sample_batch())
        per_update, seconds, ratios = [], {name: [] for name in variants}, {name: [] for name in variants}
        for _ in range(args.rounds):
            update_time = timed(updates, device) / args.updates
            per_update.append(update_time)
            for name, fn in variants.items():
                batch = trainer.sample_batch()
                elapsed = timed(lambda: fn(batch), device)
                seconds[name].append(elapsed)
                ratios[name].append(elapsed / update_time)

    every = hp["monitor_every_updates"]
    sizes = "x".join(str(s) for s in hp["hidden_sizes"])
    print(f"{algo} on {task} ({sizes} {hp['activation']}, update batch {hp['batch_size']}, monitor batch "
          f"{hp['monitor_batch_size']}, roles {', '.join(roles)}, {device}, {args.threads} thread(s)): "
          f"{1e3 * statistics.median(per_update):.2f} ms/update")
    for name in variants:
        ratio = statistics.median(ratios[name])
        print(f"  {name:<34} {1e3 * statistics.median(seconds[name]):8.1f} ms/call = {ratio:7.1f} updates"
              f"  -> {100 * ratio / every:6.2f}% of update time at monitor_every_updates={every}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=100, help="updates timed per round")
    parser.add_argument("--hessian-iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--case", action="append", help="algo:task, e.g. sac:dmc:cheetah-run (default: both)")
    args = parser.parse_args()
    cases = [tuple(case.split(":", 1)) for case in args.case] if args.case else CASES
    for algo, task in cases:
        measure(algo, task, args)


if __name__ == "__main__":
    main()
