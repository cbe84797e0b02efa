"""Seeds as a batch dimension: what one process training S seeds buys, measured in one run.

1. Throughput. Seed-steps per second (S x env steps / wall time, process start included)
   of one `plasticity-bench train --seeds 0,...,S-1` process, against one process per seed
   (`--seed s`, run one after another, each paying its own start-up), printed as a ratio.
2. Operator launches per update per seed: leaf aten operators of one update, counted by
   torch.profiler on CPU (each is a kernel launch on a GPU), for a stack of S seeds against
   S stacks of one. And host synchronisations per update: aten::_local_scalar_dense (what
   .item() / .tolist() / float() run) outside the optimizer, whose step counts live on
   the host.

3. Where a stack's time goes (--split): the time of one update of the default config's SAC
   (128 wide, MountainCarContinuous) for a stack of one and a stack of S, split by a
   straight-line fit into the per-operator overhead a stack shares and the per-seed work it
   cannot share, and the profiler's share of that update in batched matmuls and in
   element-wise operators.

4. With --device cuda: exactness of a seed alone and in a stack on that device, and the
   in-process throughput of stacks of S seeds against one.

Usage: python bench/seed_batch.py [--seeds 1 2 5 8 10] [--only dqn|sac] [--skip-throughput] [--split] [--device cuda]
Run it alone on the machine: the throughput numbers are wall times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from plasticity_bench.training.stack import SeedStack, ready
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer

# (algo, task, warm-up steps before learning, env steps, overrides): budgets sized so a
# one-seed run takes ~10-20 s here; evaluation rare, as in a long run.
CASES = {
    "dqn": ("dqn", "minatar:breakout", 1000, 6000, []),
    "sac": ("sac", "mujoco:HalfCheetah-v5", 500, 1000, []),
}


def overrides(case) -> list[str]:
    _, _, warmup, steps, extra = case
    return [f"learning_starts={warmup}", f"eval_every_steps={steps}", "eval_episodes=1",
            f"checkpoint_every_steps={steps}", f"monitor_every_updates={10**6}", *extra]


def wall_time(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plasticity_bench", "train", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def throughput(case, seed_counts: list[int]) -> None:
    algo, task, _, steps, _ = case
    common = ["--algo", algo, "--task", task, "--steps", str(steps), "--no-progress", "--no-tensorboard",
              "--allow-short-budget"] + [arg for value in overrides(case) for arg in ("--set", value)]
    with tempfile.TemporaryDirectory() as tmp:
        one = wall_time(common + ["--seed", "0", "--out", f"{tmp}/alone"])
        unbatched = steps / one
        print(f"{algo} {task}: one process per seed {unbatched:.0f} seed-steps/s ({one:.1f} s per seed)")
        for count in seed_counts:
            seeds = ",".join(str(seed) for seed in range(count))
            seconds = wall_time(common + ["--seeds", seeds, "--runs-dir", f"{tmp}/together{count}"])
            rate = count * steps / seconds
            print(f"  S={count:>2}: {rate:7.0f} seed-steps/s in one process ({seconds:.1f} s), "
                  f"{rate / unbatched:.2f}x one process per seed", flush=True)


def warmed_trainers(case, count: int, tmp: str, device: torch.device = torch.device("cpu")) -> list[Trainer]:
    """``count`` seeds' trainers on ``device`` whose replay buffers hold ``warmup`` random steps."""
    algo, task, warmup, _, _ = case
    trainers = []
    for seed in range(count):
        spec = build_spec(algo, "mlp", "none", task, seed, warmup + 100, overrides(case))
        trainer = Trainer(spec, Path(tmp) / spec.run_id, 1, device, False)
        ready(trainer)
        trainer.start_episode()
        for _ in range(warmup):
            if trainer.collect_step():
                trainer.start_episode()
        trainers.append(trainer)
    return trainers


def in_optimizer_step(event) -> bool:
    """Adam reads its step count with .item() from a tensor that stays on the host (torch
    keeps it there unless capturable), so those reads are no device synchronisation."""
    while event is not None:
        if event.name.startswith("Optimizer.step"):
            return True
        event = event.cpu_parent
    return False


def launches_per_update(stacks: list[SeedStack], updates: int) -> tuple[float, float]:
    """(leaf aten operators, host syncs) per update and seed, over ``updates`` updates."""
    for stack in stacks:  # warm up: the first update allocates the optimizer state
        stack.update()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(updates):
            for stack in stacks:
                stack.update()
    events = [event for event in prof.events() if event.name.startswith("aten::")]
    leaves = sum(1 for event in events if not any(child.name.startswith("aten::") for child in event.cpu_children))
    syncs = sum(1 for event in events if event.name == "aten::_local_scalar_dense" and not in_optimizer_step(event))
    seeds = sum(len(stack.trainers) for stack in stacks)
    return leaves / (updates * seeds), syncs / updates


def launches(case, count: int, updates: int = 20) -> None:
    algo, task = case[:2]
    with tempfile.TemporaryDirectory() as tmp:
        alone = [SeedStack([trainer]) for trainer in warmed_trainers(case, count, tmp)]
        ops_alone, syncs_alone = launches_per_update(alone, updates)
    with tempfile.TemporaryDirectory() as tmp:
        together = [SeedStack(warmed_trainers(case, count, tmp))]
        ops_together, syncs_together = launches_per_update(together, updates)
    print(f"{algo} {task}: operators per update per seed: {ops_alone:.0f} as {count} stacks of one, "
          f"{ops_together:.1f} as one stack of {count} ({ops_together / ops_alone:.3f}x); host syncs per "
          f"update: {syncs_alone / count:.0f} per stack of one, {syncs_together:.0f} per stack of {count}")


SPLIT_CASE = ("sac", "gym:MountainCarContinuous-v0", 1000, 2000, ["hidden_sizes=[128,128]"])
MATMULS = {"aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"}
ELEMENTWISE = {"aten::clamp_min", "aten::threshold_backward", "aten::mul", "aten::copy_", "aten::add",
               "aten::sum", "aten::sub", "aten::tanh", "aten::exp"}


def update_seconds(stack: SeedStack, updates: int) -> float:
    for _ in range(20):
        stack.update()
    start = time.perf_counter()
    for _ in range(updates):
        stack.update()
    return (time.perf_counter() - start) / updates


def split(count: int, updates: int = 300) -> None:
    """Per-operator overhead (shared by a stack) against per-seed work (not shared)."""
    with tempfile.TemporaryDirectory() as tmp:
        one = update_seconds(SeedStack(warmed_trainers(SPLIT_CASE, 1, tmp)), updates)
    with tempfile.TemporaryDirectory() as tmp:
        stack = SeedStack(warmed_trainers(SPLIT_CASE, count, tmp))
        many = update_seconds(stack, updates)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(50):
                stack.update()
    work = (many - one) / (count - 1)  # t(S) = overhead + S * work
    overhead = one - work
    self_time = {event.key: event.self_cpu_time_total for event in prof.key_averages()}
    total = sum(self_time.values())
    matmul = sum(value for key, value in self_time.items() if key in MATMULS) / total
    elementwise = sum(value for key, value in self_time.items() if key in ELEMENTWISE) / total
    algo, task, *_, settings = SPLIT_CASE
    print(f"{algo} {task} ({', '.join(settings)}): one update {one * 1e3:.2f} ms for one seed, "
          f"{many * 1e3:.2f} ms for {count} ({one * count / many:.2f}x per seed); per-operator overhead "
          f"{overhead * 1e3:.2f} ms (shared), per-seed work {work * 1e3:.2f} ms (not shared), so at most "
          f"{one / work:.2f}x per seed; in the stack of {count}: batched matmuls {matmul:.0%}, "
          f"element-wise operators {elementwise:.0%} of operator time", flush=True)


def in_process(case, count: int, device: str, tmp: str) -> float:
    """Seed-steps per second of ``count`` seeds trained together in this process."""
    from plasticity_bench.training import train_seeds

    algo, task, _, steps, _ = case
    specs = [build_spec(algo, "mlp", "none", task, seed, steps, overrides(case)) for seed in range(count)]
    start = time.perf_counter()
    manifests = train_seeds(specs, [Path(tmp) / f"{count}" / spec.run_id for spec in specs], device=device,
                            progress=False, allow_short_budget=True, tensorboard=False)
    assert all(manifest["status"] == "completed" for manifest in manifests), manifests
    return count * steps / (time.perf_counter() - start)


def device_check(device: str, seed_counts: list[int], exactness_only: bool = False) -> None:
    """On an accelerator: whether a seed's numbers are the same alone and in a stack there
    (SAC, 200 updates), and (unless ``exactness_only``) the throughput of stacks against one
    seed, in this process."""
    from plasticity_bench import results
    from plasticity_bench.training import train_seeds

    case = ("sac", "gym:Pendulum-v1", 100, 300, ["hidden_sizes=[64,64]"])
    specs = [build_spec("sac", "mlp", "none", case[1], seed, case[3], overrides(case)) for seed in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            train_seeds([spec], [Path(tmp) / "alone" / spec.run_id], device=device, progress=False,
                        allow_short_budget=True, tensorboard=False)
        train_seeds(specs, [Path(tmp) / "together" / spec.run_id for spec in specs], device=device, progress=False,
                    allow_short_budget=True, tensorboard=False)
        for spec in specs:
            alone, together = (results.load_checkpoint(Path(tmp) / where / spec.run_id / results.CHECKPOINT)["agent"]["modules"]
                               for where in ("alone", "together"))
            worst = max(((value.double() - together[name][key].double()).abs().max()
                         / value.double().abs().max().clamp_min(1e-12)).item()
                        for name, module in alone.items() if "optimizer" not in name for key, value in module.items())
            print(f"{device}: SAC seed {spec.seed} after 200 updates, alone vs in a stack of 3: max relative "
                  f"parameter difference {worst:.2e}", flush=True)
    if exactness_only:
        return
    for name in ("sac", "dqn"):
        case = CASES[name]
        with tempfile.TemporaryDirectory() as tmp:
            rates = {count: in_process(case, count, device, tmp) for count in seed_counts}
        one = rates[seed_counts[0]]
        print(f"{device}: {case[0]} {case[1]} seed-steps/s in one process: " + ", ".join(
            f"S={count} {rate:.0f} ({rate / one:.2f}x S={seed_counts[0]})" for count, rate in rates.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 5, 8, 10])
    parser.add_argument("--only", choices=sorted(CASES))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--split", action="store_true", help="only part 3, the overhead / per-seed work split of a SAC update")
    parser.add_argument("--device", help="an accelerator (e.g. cuda): check exactness and throughput there instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.device:
        device_check(args.device, args.seeds)
        return
    if args.split:
        split(5)
        return
    for name, case in CASES.items():
        if args.only and name != args.only:
            continue
        launches(case, max(args.seeds))
        if not args.skip_throughput:
            throughput(case, args.seeds)
    if args.only != "dqn":
        split(5)


if __name__ == "__main__":
    main()
