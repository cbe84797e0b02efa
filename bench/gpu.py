"""The GPU path, measured in one run: everything a first session on an accelerator needs.

1. Exactness on the device: a SAC seed trained alone and the same seed trained in a stack
   of 3 (200 updates each), as the max relative difference of their parameters.
2. Update throughput of seed stacks: updates per second of one stack of S seeds (and
   seed-updates per second), for DQN (MinAtar breakout, CleanRL's network), SAC and TD3
   (MuJoCo HalfCheetah, 256 wide), under eager execution (every S), torch.compile (inductor)
   and torch.compile's CUDA-graph mode ("reduce-overhead"; on a CPU it would be inductor
   alone, so it is skipped there), the compiled modes at --compile-seeds only.
3. End-to-end throughput: env steps per second per seed of `train_seeds` for each S, the
   whole loop (acting, env steps, updates, evaluation, records), eager and, at
   --compile-seeds, with the engine's `compile: on`.
4. The projected device-hours of a config (default workflow/config/paper.yaml): every
   training job's seeds x steps at the measured end-to-end rate of the nearest S measured.

Usage (one H100 session; about 8 minutes):
    python bench/gpu.py --device cuda
The CPU-sized check the test suite runs (tests/test_gpu_bench.py):
    python bench/gpu.py --device cpu --seeds 1 2 --updates 3 --steps-scale 0.01 --modes eager compiled --compile-seeds 1
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
MODES = ("eager", "compiled", "graphs")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warmed_stack(case, count: int, device: torch.device, tmp: str) -> SeedStack:
    """A stack of ``count`` seeds on ``device`` whose replay buffers hold random steps."""
    return SeedStack(warmed_trainers(case, count, tmp, device))


def updates_per_second(case, count: int, mode: str, updates: int, device: torch.device) -> tuple[float, float]:
    """(updates per second per seed, seconds of the first call: compilation) of a stack."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = warmed_stack(case, count, device, tmp)
        if mode != "eager":
            stack.agent.update = torch.compile(stack.agent.update,
                                               mode="reduce-overhead" if mode == "graphs" else None)
        start = time.perf_counter()
        stack.update()
        sync(device)
        first = time.perf_counter() - start
        for _ in range(3):  # CUDA graphs record on their second and third call
            stack.update()
        sync(device)
        start = time.perf_counter()
        for _ in range(updates):
            stack.update()
        sync(device)
        return updates / (time.perf_counter() - start), first


def env_steps_per_second(case, count: int, scale: float, device: torch.device, compiled: bool = False) -> float:
    """Env steps per second per seed of ``count`` seeds trained together by train_seeds
    (with ``compiled``, the engine's compile: on, compilation included)."""
    from plasticity_bench.training import train_seeds

    algo, task, warmup, steps, extra = case
    steps = max(int(steps * scale), 2)
    start_learning = min(warmup, steps // 2)
    settings = [*extra, f"learning_starts={start_learning}", "eval_episodes=1", f"eval_every_steps={steps}",
                f"checkpoint_every_steps={steps}", "monitor_every_updates=1000000", "probe_every_updates=0",
                f"compile={'on' if compiled else 'off'}"]
    specs = [build_spec(algo, "mlp", "none", task, seed, steps, settings) for seed in range(count)]
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
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--compile-seeds", type=int, nargs="+", default=[1, 10, 50],
                        help="the S values timed compiled (each costs a compilation)")
    parser.add_argument("--updates", type=int, default=100, help="timed updates per stack")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="scales the end-to-end runs' env steps")
    parser.add_argument("--config", type=Path, default=ROOT / "workflow/config/paper.yaml")
    parser.add_argument("--skip-exactness", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1)
    print(f"device {device}" + (f": {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""), flush=True)
    if not args.skip_exactness:
        device_check(args.device, [], exactness_only=True)
    modes = [mode for mode in args.modes if not (mode == "graphs" and device.type != "cuda")]
    if len(modes) < len(args.modes):
        print("graphs: skipped (CUDA graphs need a CUDA device)", flush=True)
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
                line.append(f"S={count} {rate:.0f} ({rate * count:.0f} seed-updates/s, first call {first:.1f} s)")
            print(f"{name} {case[1]} updates/s per stack, {mode}: " + "; ".join(line), flush=True)
        rates[name] = {count: env_steps_per_second(case, count, args.steps_scale, device) for count in args.seeds}
        print(f"{name} {case[1]} env steps/s per seed end to end (eager): " + "; ".join(
            f"S={count} {rate:.0f}" for count, rate in rates[name].items()), flush=True)
        if "compiled" in modes:
            compiled = {count: env_steps_per_second(case, count, args.steps_scale, device, compiled=True)
                        for count in args.seeds if count in args.compile_seeds}
            print(f"{name} {case[1]} env steps/s per seed end to end (compile: on, compilation included): "
                  + "; ".join(f"S={count} {rate:.0f}" for count, rate in compiled.items()), flush=True)
    hours, jobs, unmeasured = projected_hours(args.config, rates)
    note = f" (not counted: {', '.join(unmeasured)}, no rate measured)" if unmeasured else ""
    print(f"projected {args.config.name}: {jobs} training jobs, {hours:.0f} device-hours one job at a time at the "
          f"eager end-to-end rates above{note}", flush=True)
    return 0 if all(math.isfinite(rate) for by_count in rates.values() for rate in by_count.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
