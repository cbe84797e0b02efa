"""The GPU path, measured in one run: everything a first session on an accelerator needs.

1. Exactness on the device: a SAC seed trained alone and the same seed trained in a stack
   of 3 (200 updates each), as the max relative difference of their parameters; and, for
   each algorithm, a stack of 3 after 200 updates with the engine's CUDA graphs
   (`compile: graphs`, training/graphs.py) against the same stack eager.
2. Update throughput of seed stacks: updates per second of one stack of S seeds (and
   seed-updates per second), for DQN (MinAtar breakout, CleanRL's network), SAC and TD3
   (MuJoCo HalfCheetah, 256 wide), under eager execution (every S), torch.compile
   ("compiled", inductor), the engine's hand-made CUDA graphs ("graphs": sampling into static
   buffers, capture per decision pattern, replay) and, when asked for, torch.compile's own
   CUDA-graph mode ("reduce-overhead"), the last three at --compile-seeds only. Both graph
   modes need CUDA and are skipped on a CPU.
3. End-to-end throughput: env steps per second per seed of `train_seeds` for each S, the
   whole loop (acting, env steps, updates, evaluation, records), eager and, at
   --compile-seeds, with the engine's `compile: on` and `compile: graphs`.
4. The projected device-hours of a config (default workflow/config/paper.yaml): every
   training job's seeds x steps at the measured end-to-end rate of the nearest S measured.

Usage (one H100 session):
    python bench/gpu.py --device cuda
Sizing, estimated, not yet timed on a GPU: about 8 minutes on one H100. The compilations
dominate (one per algorithm, S in --compile-seeds and compiled mode: 9 by default, 15-40 s
each on the CPU here); eager and graphed timing is --updates (100) updates per stack after 10
warm-up calls (captures take under a second each); the end-to-end runs are 20000 DQN and
4000 SAC/TD3 env steps per seed; reduce-overhead, off by default, adds 9 compilations.
The CPU-sized check the test suite runs (tests/test_gpu_bench.py; the graph modes are skipped):
    python bench/gpu.py --device cpu --seeds 1 2 --updates 3 --steps-scale 0.01 --modes eager compiled graphs --compile-seeds 1 --skip-exactness
Printed numbers are wall-clock rates measured in this process; compare them only with
numbers of the same run and device.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from plasticity_bench.matrix import expand, train_jobs
from plasticity_bench.spec import build_spec
from plasticity_bench.training.graphs import graph_stack
from plasticity_bench.training.stack import SeedStack
from seed_batch import device_check, warmed_trainers

ROOT = Path(__file__).resolve().parents[1]
# (algo, task, warm-up env steps, end-to-end env steps, overrides): the update shapes of the
# paper config's DQN and SAC cells.
CASES = {
    "dqn": ("dqn", "minatar:breakout", 1000, 20000, []),
    "sac": ("sac", "mujoco:HalfCheetah-v5", 1000, 4000, []),
    "td3": ("td3", "mujoco:HalfCheetah-v5", 1000, 4000, []),
}
MODES = ("eager", "compiled", "graphs", "reduce-overhead")
DEFAULT_MODES = ("eager", "compiled", "graphs")
CUDA_ONLY = ("graphs", "reduce-overhead")
WARM_CALLS = 10  # compile, warm up, capture: every decision pattern captured by then (3 eager updates each)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warmed_stack(case, count: int, device: torch.device, tmp: str) -> SeedStack:
    """A stack of ``count`` seeds on ``device`` whose replay buffers hold random steps."""
    return SeedStack(warmed_trainers(case, count, tmp, device))


def set_mode(stack: SeedStack, mode: str) -> SeedStack:
    """The stack's update as ``mode`` runs it: eager, compiled (inductor, or its CUDA-graph
    mode reduce-overhead) or the engine's hand-made CUDA graphs."""
    if mode == "graphs":
        stack.graphed = graph_stack(stack)
    elif mode != "eager":
        torch._dynamo.reset()  # each stack compiles afresh (else earlier stacks' code counts against the recompile limit)
        stack.agent_update = torch.compile(stack.agent.update,
                                           mode="reduce-overhead" if mode == "reduce-overhead" else None)
    return stack


def updates_per_second(case, count: int, mode: str, updates: int, device: torch.device) -> tuple[float, float]:
    """(updates per second per seed, seconds of the first WARM_CALLS calls: compilation,
    warm-up and capture) of a stack."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = set_mode(warmed_stack(case, count, device, tmp), mode)
        start = time.perf_counter()
        for _ in range(WARM_CALLS):
            stack.update()
        sync(device)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(updates):
            stack.update()
        sync(device)
        return updates / (time.perf_counter() - start), first


def graphs_exactness(case, count: int, updates: int, device: torch.device) -> float:
    """Max relative difference of a stack's parameters after ``updates`` updates with the
    engine's CUDA graphs and the same stack's eager updates (0.0: bit for bit)."""
    trained = []
    for mode in ("eager", "graphs"):
        with tempfile.TemporaryDirectory() as tmp:
            stack = set_mode(warmed_stack(case, count, device, tmp), mode)
            for _ in range(updates):
                stack.update()
            sync(device)
            trained.append([param.detach().double().cpu() for name in type(stack.agent).stacked_networks
                            for param in getattr(stack.agent, name).parameters()])
    return max(((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item() for a, b in zip(*trained))


def env_steps_per_second(case, count: int, scale: float, device: torch.device, compiled: str = "off") -> float:
    """Env steps per second per seed of ``count`` seeds trained together by train_seeds
    with the engine's ``compile`` setting ``compiled`` (compilation or capture included)."""
    from plasticity_bench.training import train_seeds

    algo, task, warmup, steps, extra = case
    steps = max(int(steps * scale), 2)
    start_learning = min(warmup, steps // 2)
    settings = [*extra, f"learning_starts={start_learning}", "eval_episodes=1", f"eval_every_steps={steps}",
                f"checkpoint_every_steps={steps}", "monitor_every_updates=1000000", "probe_every_updates=0",
                f"compile={compiled}"]
    specs = [build_spec(algo, "mlp", "none", task, seed, steps, settings) for seed in range(count)]
    torch._dynamo.reset()  # as a job of its own would start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifests = train_seeds(specs, [Path(tmp) / spec.run_id for spec in specs], device=device, progress=False,
                                allow_short_budget=True, tensorboard=False)
        seconds = time.perf_counter() - start
    failed = [manifest for manifest in manifests if manifest["status"] != "completed"]
    if failed:
        raise RuntimeError(f"{case[0]} S={count}: {failed[0].get('error')}")
    return steps / seconds


def projected_hours(config_path: Path, rates: dict[str, dict[int, float]]) -> tuple[float, int, list[str]]:
    """(device-hours, jobs, algorithms without a measured rate) of the config's training jobs,
    one job after another, each at the end-to-end rate of its algorithm at the nearest S."""
    config = yaml.safe_load(config_path.read_text())
    runs, _ = expand(config)
    hours, unmeasured = 0.0, set()
    jobs = train_jobs(runs, config.get("seeds_per_job"))
    for job in jobs:
        spec = job.runs[0].spec
        measured = rates.get(spec.algo)
        if not measured:
            unmeasured.add(spec.algo)
            continue
        nearest = min(measured, key=lambda count: abs(count - len(job.runs)))
        hours += spec.steps / measured[nearest] / 3600
    return hours, len(jobs), sorted(unmeasured)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 5, 10, 20, 50])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(DEFAULT_MODES))
    parser.add_argument("--compile-seeds", type=int, nargs="+", default=[1, 10, 50],
                        help="the S values timed compiled (each costs a compilation)")
    parser.add_argument("--updates", type=int, default=100, help="timed updates per stack")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="scales the end-to-end runs' env steps")
    parser.add_argument("--config", type=Path, default=ROOT / "workflow/config/paper.yaml")
    parser.add_argument("--skip-exactness", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    device = torch.device(args.device)
    torch.set_num_threads(1)
    print(f"device {device}" + (f": {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""), flush=True)
    modes = [mode for mode in args.modes if not (mode in CUDA_ONLY and device.type != "cuda")]
    if len(modes) < len(args.modes):
        skipped = [mode for mode in args.modes if mode not in modes]
        print(f"{', '.join(skipped)}: skipped (CUDA graphs need a CUDA device)", flush=True)
    if not args.skip_exactness:
        device_check(args.device, [], exactness_only=True)
        if "graphs" in modes:
            for name, case in CASES.items():
                try:
                    difference = graphs_exactness(case, 3, 200, device)
                    verdict = "bit for bit" if difference == 0 else f"max relative difference {difference:.3g}"
                except Exception as error:  # a capture that fails on this device is a result too
                    verdict = f"failed ({type(error).__name__}: {str(error).splitlines()[0][:160]})"
                print(f"{name} {case[1]} stack of 3, 200 updates, CUDA graphs vs eager: {verdict}", flush=True)
    rates: dict[str, dict[int, float]] = {}
    for name, case in CASES.items():
        for mode in modes:
            line = []
            for count in args.seeds if mode == "eager" else [s for s in args.seeds if s in args.compile_seeds]:
                try:
                    rate, first = updates_per_second(case, count, mode, args.updates, device)
                except Exception as error:  # a mode that fails on this device is a result too
                    line.append(f"S={count} failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
                    break
                line.append(f"S={count} {rate:.0f} ({rate * count:.0f} seed-updates/s, first {WARM_CALLS} calls "
                            f"{first:.1f} s)")
            print(f"{name} {case[1]} updates/s per stack, {mode}: " + "; ".join(line), flush=True)
        rates[name] = {count: env_steps_per_second(case, count, args.steps_scale, device) for count in args.seeds}
        print(f"{name} {case[1]} env steps/s per seed end to end (eager): " + "; ".join(
            f"S={count} {rate:.0f}" for count, rate in rates[name].items()), flush=True)
        for mode, setting, note in (("compiled", "on", "compilation"), ("graphs", "graphs", "warm-up and capture")):
            if mode not in modes:
                continue
            try:
                faster = {count: env_steps_per_second(case, count, args.steps_scale, device, compiled=setting)
                          for count in args.seeds if count in args.compile_seeds}
            except Exception as error:  # a mode that fails on this device is a result too
                print(f"{name} {case[1]} end to end (compile: {setting}): failed ({str(error).splitlines()[0][:160]})",
                      flush=True)
                continue
            print(f"{name} {case[1]} env steps/s per seed end to end (compile: {setting}, {note} included): "
                  + "; ".join(f"S={count} {rate:.0f}" for count, rate in faster.items()), flush=True)
    hours, jobs, unmeasured = projected_hours(args.config, rates)
    note = f" (not counted: {', '.join(unmeasured)}, no rate measured)" if unmeasured else ""
    print(f"projected {args.config.name}: {jobs} training jobs, {hours:.0f} device-hours one job at a time at the "
          f"eager end-to-end rates above{note}", flush=True)
    print(f"bench/gpu.py: {time.perf_counter() - began:.0f} s in all (the sizing above is checked against this)", flush=True)
    return 0 if all(math.isfinite(rate) for by_count in rates.values() for rate in by_count.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
