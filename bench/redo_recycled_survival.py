"""How long do ReDo's recycled units live? (The diagnosis in methods/redo.py's docstring.)

Trains one SAC (default: the default config's dmc:cartpole-swingup cell) with ReDo up to
its first reset event, then follows the units recycled in the critic's second hidden layer
(q1) on a fixed replay batch: the fraction alive (positive pre-activation on some sample)
and their mean pre-activation, at a few updates after the event. Run once with the
recipe's optimizer reset and once keeping the Adam state, in the same process, and print
both side by side. Usage: python bench/redo_recycled_survival.py [--task ... --seed 0]
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer

CHECKPOINTS = (0, 1, 2, 5, 10, 20, 50, 100, 300, 999)


def follow_recycled_units(task: str, seed: int, reset_optimizer: bool, period: int) -> dict[int, tuple[float, float]]:
    """After-event update → (fraction of recycled units alive, their mean pre-activation)."""
    spec = build_spec("sac", "mlp", "redo", task, seed, steps=10**7,
                      overrides=["learning_starts=1000", "monitor_every_updates=1000000000", "eval_every_steps=1000000000",
                                 "probe_every_updates=0", f"redo.period={period}", f"redo.reset_optimizer={str(reset_optimizer).lower()}"])
    found: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, tmp, threads=1, device=torch.device("cpu"), progress=False)
        redo, critic = trainer.methods[0], trainer.agent.roles["critic"].network.q1
        recycled = batch = None
        trainer.start_episode()
        while trainer.updates < 2 * period:
            over = trainer.collect_step()
            trainer.train_on_replay()
            if over:
                trainer.start_episode()
            since = trainer.updates - period
            if since == 0 and recycled is None:
                recycled = redo.previous["critic"]["q1.layers.3"].nonzero().flatten()
                batch = trainer.replay.sample(1024, generator=torch.Generator().manual_seed(seed))
            if recycled is not None and since in CHECKPOINTS and since not in found:
                with torch.no_grad():
                    pre_activation = critic.layers[:3](torch.cat([batch.obs, batch.actions], -1))[:, recycled]
                found[since] = (float((pre_activation > 0).any(dim=0).float().mean()), float(pre_activation.mean()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="dmc:cartpole-swingup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--period", type=int, default=1000)
    args = parser.parse_args()
    zeroed = follow_recycled_units(args.task, args.seed, True, args.period)
    kept = follow_recycled_units(args.task, args.seed, False, args.period)
    print(f"SAC + ReDo on {args.task}, seed {args.seed}: critic q1 layer-2 units recycled at update {args.period}")
    print(f"{'updates after':>13} | {'alive, Adam zeroed':>18} {'mean z':>7} | {'alive, Adam kept':>16} {'mean z':>7}")
    for since in CHECKPOINTS:
        (a, z), (b, y) = zeroed[since], kept[since]
        print(f"{since:>13} | {a:>18.3f} {z:>7.3f} | {b:>16.3f} {y:>7.3f}")


if __name__ == "__main__":
    main()
