"""How fast a stacked SAC update could be on this CPU, and what torch.compile makes of it.

1. Work: the floating-point operations of one update per seed (torch's FlopCounterMode over
   one update of a stack of S seeds, divided by S: the matmuls of the losses, backward and
   the optimizer's; element-wise work is not counted, being memory-bound).
2. Peak: this core's single-thread fp32 matmul rate, measured on a large square matmul and
   on the update's own shapes (a [S, 256, 128] x [S, 128, 128] batched matmul).
3. Ceiling: the update's time if it ran its FLOPs at that peak, against its measured time
   per seed in a stack of S: the most any kernel fusion or compilation could gain.
4. torch.compile (inductor) of the stack's update (losses, backward, optimizer step):
   time per update against eager in the same process, and how far its parameters drift
   from eager's after the same updates.

The case is the default SAC update (bench/seed_batch.py's split case: 128 wide, batch 256).
Usage: python bench/update_ceiling.py [--seeds 5] [--updates 200] [--skip-compile]
Run it alone on the machine: it prints wall-time ratios measured in this one process.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from plasticity_bench.training.stack import SeedStack
from seed_batch import SPLIT_CASE, update_seconds, warmed_trainers


def matmul_gflops(shape_a: tuple[int, ...], shape_b: tuple[int, ...], repeats: int = 50) -> float:
    a, b = torch.randn(shape_a), torch.randn(shape_b)
    for _ in range(5):
        torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    seconds = (time.perf_counter() - start) / repeats
    flops = 2 * a.numel() * b.shape[-1]  # each of a's entries meets each of b's columns once
    return flops / seconds / 1e9


def flops_per_seed(stack: SeedStack) -> float:
    with FlopCounterMode(display=False) as counter:
        stack.update()
    return counter.get_total_flops() / len(stack.trainers)


def parameters_of(stack: SeedStack) -> list[torch.Tensor]:
    return [param.detach().clone() for role in stack.agent.roles.values() for param in role.network.parameters()]


def compiled_against_eager(count: int, updates: int) -> None:
    """Two stacks built alike (the same seeds, so the same networks, replay and generators):
    one updates eagerly, the other through torch.compile; each makes 20 + ``updates`` updates."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as other:
        eager = SeedStack(warmed_trainers(SPLIT_CASE, count, tmp))
        compiled = SeedStack(warmed_trainers(SPLIT_CASE, count, other))
        compiled.agent.update = torch.compile(compiled.agent.update)
        start = time.perf_counter()
        compiled.update()
        compile_seconds = time.perf_counter() - start
        eager.update()
        eager_seconds = update_seconds(eager, updates)
        compiled_seconds = update_seconds(compiled, updates)
        drift = max(((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()
                    for a, b in zip(parameters_of(eager), parameters_of(compiled)))
    print(f"torch.compile of the stacked update (S={count}): first call {compile_seconds:.1f} s (compilation); "
          f"eager {eager_seconds * 1e3:.2f} ms, compiled {compiled_seconds * 1e3:.2f} ms per update "
          f"({eager_seconds / compiled_seconds:.2f}x); after {updates + 21} updates each, max relative parameter "
          f"difference {drift:.2e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    count = args.seeds
    peak = matmul_gflops((1024, 1024), (1024, 1024))
    shaped = matmul_gflops((count, 256, 128), (count, 128, 128), repeats=500)
    with tempfile.TemporaryDirectory() as tmp:
        one = SeedStack(warmed_trainers(SPLIT_CASE, 1, tmp))
        one_seconds = update_seconds(one, args.updates)
    with tempfile.TemporaryDirectory() as tmp:
        stack = SeedStack(warmed_trainers(SPLIT_CASE, count, tmp))
        stack_seconds = update_seconds(stack, args.updates)
        flops = flops_per_seed(stack)
    at_peak = flops / (peak * 1e9)
    per_seed = stack_seconds / count
    print(f"single-thread fp32 matmul: {peak:.1f} GFLOP/s at 1024x1024, {shaped:.1f} GFLOP/s at the update's "
          f"[{count}, 256, 128] x [{count}, 128, 128]", flush=True)
    print(f"SAC update ({', '.join(SPLIT_CASE[4])}, batch 256): {flops / 1e6:.1f} MFLOP per seed; at the 1024x1024 "
          f"peak {at_peak * 1e3:.3f} ms, at the update's own matmul rate {flops / (shaped * 1e9) * 1e3:.3f} ms", flush=True)
    print(f"measured: {one_seconds * 1e3:.2f} ms for one seed, {stack_seconds * 1e3:.2f} ms for a stack of {count} "
          f"({per_seed * 1e3:.2f} ms per seed, {one_seconds / per_seed:.2f}x one seed's); the FLOP ceiling is "
          f"{per_seed / at_peak:.1f}x faster than the stack per seed, {one_seconds / at_peak:.1f}x faster than "
          f"one seed alone; the stack runs its matmuls at {flops / per_seed / 1e9:.1f} GFLOP/s overall", flush=True)
    if not args.skip_compile:
        compiled_against_eager(count, args.updates)


if __name__ == "__main__":
    main()
