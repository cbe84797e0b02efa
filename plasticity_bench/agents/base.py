"""What every agent offers the trainer, the monitor and the methods."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn


class Batch(NamedTuple):
    """A replay sample; first dimension is the batch. ``terminations`` is 1.0 only when the
    episode truly ended (not on time-limit truncation), so TD targets bootstrap otherwise."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


LossFn = Callable[[nn.Module, Batch], torch.Tensor]


@dataclass
class Role:
    """One trained network of an agent, seen through the narrow interface that metrics and
    methods use: the module, its optimizer, the loss it is trained on, and how a replay
    batch becomes the module's forward inputs."""

    network: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    forward_inputs: Callable[[Batch], tuple[torch.Tensor, ...]]


class Agent:
    """Base class: subclasses fill ``self.roles`` and implement ``act`` and ``update``."""

    roles: dict[str, Role]

    def act(self, obs: np.ndarray, env_step: int, explore: bool) -> np.ndarray | int:
        raise NotImplementedError

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient update; returns detached loss tensors (no host sync here)."""
        raise NotImplementedError

    def modules_to_save(self) -> dict[str, Any]:
        """Everything with a state_dict that a checkpoint must hold (nets, targets, optims)."""
        raise NotImplementedError

    def counters(self) -> dict[str, Any]:
        return {}

    def load_counters(self, counters: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {name: m.state_dict() for name, m in self.modules_to_save().items()},
            "counters": self.counters(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules_to_save().items():
            module.load_state_dict(state["modules"][name])
        self.load_counters(state["counters"])
