"""A run's update statistics between two health checks, summed on the device.

NaN and inf survive a sum, so one add per statistic and update replaces a host sync per
update, and the means the training log shows come from the same sums at the check's one
sync (``Trainer.check_finite``). A seed stack sums its seeds' statistics along a leading
seed axis ([seeds]) and hands each seed its share before the seed checks them."""

from __future__ import annotations

import torch


class StatisticSums:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        """Add one update's statistics (0-dim tensors, or [seeds] on a stack; Agent.update)."""
        for name, value in stats.items():  # a copy: a CUDA graph's outputs are overwritten by its next replay
            self._add(name, value.detach().to(torch.float64, copy=True), 1)

    def add_share(self, stack: StatisticSums, index: int) -> None:
        """Add seed ``index``'s share of a stack's sums (over as many updates as the stack made)."""
        for name, total in stack.sums.items():
            self._add(name, total[index], stack.counts[name])

    def _add(self, name: str, value: torch.Tensor, count: int) -> None:
        total = self.sums.get(name)
        self.sums[name] = value if total is None else total + value
        self.counts[name] = self.counts.get(name, 0) + count

    def clear(self) -> None:
        self.sums, self.counts = {}, {}
