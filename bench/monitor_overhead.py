"""Cost of plasticity monitoring at the default cadence, as a fraction of training time.

Times, in the same process, (a) training steps (env step + updates at the default replay
ratio) and (b) monitor calls on a held replay batch, then prints
monitor time per ``monitor_every_updates`` updates / training time for those updates.
Usage: python bench/monitor_overhead.py [--algo sac --task dmc:cheetah-run]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algo", default="sac")
    parser.add_argument("--task", default="dmc:cheetah-run")
    parser.add_argument("--method", default="none")
    parser.add_argument("--updates", type=int, default=1000, help="updates timed for the training baseline")
    parser.add_argument("--monitor-calls", type=int, default=10)
    args = parser.parse_args()

    warmup = 2000
    spec = build_spec(args.algo, "mlp", args.method, args.task, seed=0, steps=10**7,
                      overrides=[f"learning_starts={warmup}"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, tmp, threads=1, device=torch.device("cpu"), progress=False)
        trainer.hp = {**trainer.hp, "monitor_every_updates": 10**12}  # time training without monitoring
        trainer.start_episode()
        while trainer.updates < 50:
            over = trainer.collect_step()
            trainer.train_on_replay()
            if over:
                trainer.start_episode()
        first_update, start = trainer.updates, time.perf_counter()
        while trainer.updates < first_update + args.updates:
            over = trainer.collect_step()
            trainer.train_on_replay()
            if over:
                trainer.start_episode()
        train_time_per_update = (time.perf_counter() - start) / args.updates

        start = time.perf_counter()
        for _ in range(args.monitor_calls):
            trainer.monitor()
        monitor_time = (time.perf_counter() - start) / args.monitor_calls

    every = spec.hyperparams["monitor_every_updates"]
    overhead = monitor_time / (every * train_time_per_update)
    print(f"{args.algo} on {args.task}: training {1e3 * train_time_per_update:.2f} ms/update (incl. env), "
          f"monitor call {1e3 * monitor_time:.1f} ms = {monitor_time / train_time_per_update:.1f} updates")
    print(f"monitoring every {every} updates costs {100 * overhead:.2f}% of training time (target <= 5%)")


if __name__ == "__main__":
    main()
