"""Cost of training-time logging (training_log.py), as a ratio of training time with it on
to training time with it off, measured in the same process.

Two trainers of the same spec train in alternating blocks of ``--updates`` updates: one logs as ``plasticity-bench train`` does (every update
statistic summed on the device, means, steps/s and episode returns recorded, TensorBoard
event files written at each health check), one as the trainer did before logging existed
(device sums of the roles' losses only, for the health check; no event files, no scalars).
Both check health every ``--check-every`` updates (the default monitor cadence; the monitor
itself, the same in both, is left out, so the ratio is an upper bound). The agents'
diagnostics (Q-value means, entropy) are computed in both: a few reductions per update.
On a machine shared with other jobs, a burst of load can hit one block: the median of the
per-pair ratios (each pair of blocks back to back) is more robust than the ratio of the
totals, and both move by 10-20% from run to run on a loaded 2-core machine (an A/A run,
both trainers logging, gave 1.18-1.25 there). So the script also times what logging adds,
piece by piece, on the logging trainer's own statistics: summing them per update (minus the
roles' losses, summed either way), recording an episode's return and length, and a log
point (means, steps/s, event file writes); their sum per update over the unlogged time per
update is the estimate that load cannot blur.
Usage: python bench/logging_overhead.py [--algo sac --task dmc:cheetah-run --device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from plasticity_bench.devices import resolve_device
from plasticity_bench.spec import build_spec
from plasticity_bench.training.records import RunRecords
from plasticity_bench.training.run import Trainer
from plasticity_bench.training_log import TrainingLog


class UnloggedTrainer(Trainer):
    """The trainer without training-time logging: the baseline of the ratio."""

    def accumulate(self, stats: dict[str, torch.Tensor]) -> None:
        # The roles' own losses (q_loss, critic_loss, ...), as the health check summed them.
        super().accumulate({name: value for name, value in stats.items() if name.removesuffix("_loss") in self.agent.roles})

    def start_counters(self, log: TrainingLog | None) -> None:
        super().start_counters(log)
        records = self.records
        self.records = UnloggedRecords(self.spec, self.run_dir, records.log, records.about, self.continual, False)


class UnloggedRecords(RunRecords):
    """No log points: no means, no steps/s, no event-file writes."""

    def log_progress(self, env_steps: int, updates: int, loss_means: dict[str, float]) -> None:
        pass


def train_block(trainer: Trainer, updates: int, check_every: int) -> None:
    """Train ``updates`` more updates (env steps included), checking health on cadence."""
    target = trainer.updates + updates
    while trainer.updates < target:
        over = trainer.collect_step()
        trainer.train_on_replay()
        if trainer.updates - trainer.checked_update >= check_every:
            trainer.check_finite()
        if over:
            trainer.start_episode()


def seconds_per_call(call, repeats: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def logging_cost_per_update(trainer: Trainer, episodes_per_update: float, check_every: int,
                            device: torch.device) -> float:
    """Seconds per update that logging adds to ``trainer`` (see the module docstring)."""
    stats = trainer.agent.update(trainer.replay.sample(trainer.hp["batch_size"]))
    roles_only = {name: value for name, value in stats.items() if name.removesuffix("_loss") in trainer.agent.roles}
    summing = seconds_per_call(lambda: trainer.accumulate(stats), 2000, device)
    summing_roles = seconds_per_call(lambda: trainer.accumulate(roles_only), 2000, device)
    episode = seconds_per_call(lambda: trainer.log.record(trainer.env_steps, {"charts/episodic_return": 1.0,
                                                                            "charts/episodic_length": 1}), 500, device)
    means = {f"losses/{name}": 1.0 for name in stats}
    point = seconds_per_call(lambda: trainer.records.log_progress(trainer.env_steps, trainer.updates, means),
                            200, device)
    return summing - summing_roles + episodes_per_update * episode + point / check_every


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="sac")
    parser.add_argument("--task", default="dmc:cheetah-run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--updates", type=int, default=500, help="updates per timed block")
    parser.add_argument("--blocks", type=int, default=10, help="timed blocks per trainer, alternating")
    parser.add_argument("--check-every", type=int, default=1000, help="updates between health checks (and log points)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    spec = build_spec(args.algo, "mlp", "none", args.task, seed=0, steps=10**7, overrides=["learning_starts=1000"])
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for label, cls, log in (("on", Trainer, True), ("off", UnloggedTrainer, False)):
            run_dir = Path(tmp) / label
            trainer = cls(spec, run_dir, 1, device, False, TrainingLog(run_dir, tensorboard=log))
            trainer.hp = {**trainer.hp, "monitor_every_updates": 10**12}  # the monitor is not what is measured
            trainer.log.open(0, spec.run_id, spec.to_dict())
            trainers[label] = [trainer, trainer.start_episode(), []]
        for state in trainers.values():  # warm-up: fill past learning_starts, first updates
            train_block(state[0], 100, args.check_every)
        for block in range(args.blocks):
            order = list(trainers.values()) if block % 2 == 0 else list(trainers.values())[::-1]
            for state in order:
                synchronize(device)
                start = time.perf_counter()
                train_block(state[0], args.updates, args.check_every)
                synchronize(device)
                state[2].append(time.perf_counter() - start)
        logged = trainers["on"][0]
        rows = len(logged.log.rows)
        episodes_per_update = logged.episodes / logged.updates
        added = logging_cost_per_update(logged, episodes_per_update, args.check_every, device)
        for trainer, _, _ in trainers.values():
            trainer.log.close()

    on, off = (np.array(trainers[label][2]) for label in ("on", "off"))
    timed = args.blocks * args.updates
    print(f"{args.algo} on {args.task} ({device}), {timed} updates per trainer in {args.blocks} blocks, health "
          f"check every {args.check_every}: logging on {1e3 * on.sum() / timed:.3f} ms/update, off "
          f"{1e3 * off.sum() / timed:.3f} ms/update (env steps included; {rows} train.parquet rows)")
    print(f"ratio on/off: median of pairs {np.median(on / off):.4f}, of totals {on.sum() / off.sum():.4f}")
    off_per_update = off.sum() / timed
    print(f"logging adds {1e6 * added:.1f} us/update ({episodes_per_update:.2f} episodes/update): "
          f"estimated ratio on/off {(off_per_update + added) / off_per_update:.4f}")


if __name__ == "__main__":
    main()
