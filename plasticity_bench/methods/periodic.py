"""Whole-module interventions on a fixed schedule (reset, shrink & perturb): the method that acts
on each chosen role every ``period`` updates, and what such an action needs: forgetting a
parameter's optimizer state and copying the network into its targets (fresh copies are
networks/reinit.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles
from plasticity_bench.roles import Batch, Role


def forget_parameters(optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter]) -> None:
    """Delete the optimizer state (moments and step count) of ``params``: the next step
    treats them as new (Adam's first step, with bias correction from step 1)."""
    for param in params:
        optimizer.state.pop(param, None)


@torch.no_grad()
def sync_targets(role: Role, params: Iterable[nn.Parameter] | None = None) -> None:
    """Copy ``params`` of ``role.network`` (default: all parameters and buffers) into the
    same-named entries of each of ``role.targets``."""
    wanted = None if params is None else {id(p) for p in params}
    for target in role.targets:
        target_params = dict(target.named_parameters())
        for name, param in role.network.named_parameters():
            if wanted is None or id(param) in wanted:
                target_params[name].copy_(param)
        if wanted is None:
            target_buffers = dict(target.named_buffers())
            for name, buffer in role.network.named_buffers():
                target_buffers[name].copy_(buffer)



class PeriodicRoleMethod(Method):
    """Acts on each chosen role every ``period`` gradient updates (``act``) and logs what
    ``act`` returns; subclasses set ``period`` and ``roles`` in their constructor."""

    owns_reset_schedule = True
    period: int
    roles: tuple[str, ...] | None

    def act(self, role_name: str, role: Role) -> dict[str, float]:
        raise NotImplementedError

    def first_action_updates(self) -> dict[str, int]:
        return {"period": self.period}

    def after_update(
        self, roles: dict[str, Role], update_step: int, sample_batch: Callable[[], Batch]
    ) -> dict[str, float]:
        if update_step % self.period != 0:
            return {}
        stats: dict[str, float] = {}
        for role_name in chosen_roles(self.name, roles, self.roles):
            stats.update(self.act(role_name, roles[role_name]))
        return stats
