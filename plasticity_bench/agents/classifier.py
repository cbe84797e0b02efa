"""The agent of continual supervised runs (algorithm ``sl``, training/supervised.py): one role,
a classifier trained on cross entropy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.agents.base import Agent, TrainingHooks
from plasticity_bench.networks import NetworkConfig, build_body
from plasticity_bench.roles import Batch, Role

ROLE = "classifier"


def cross_entropy_loss(network: nn.Module, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(network(batch.obs), batch.actions)


class Classifier(Agent):
    """One role, ``classifier``: a body (MLP or residual net) from the inputs to one logit per
    class, trained with Adam (or a method's optimizer) on cross entropy plus the methods'
    loss terms."""

    def __init__(self, input_dim: int, classes: int, hp: dict[str, Any], network: NetworkConfig,
                 device: torch.device, hooks: TrainingHooks | None = None):
        self.hooks = hooks or TrainingHooks()
        self.network = build_body(network, input_dim, classes).to(device)
        self.optimizer = self.make_optimizer(ROLE, self.network.parameters(), hp["learning_rate"])
        self.roles = {ROLE: Role(self.network, self.optimizer, cross_entropy_loss, lambda batch: (batch.obs,))}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"classifier_loss": self.gradient_step(ROLE, batch)}

    def modules_to_save(self) -> dict[str, Any]:
        return {"network": self.network, "optimizer": self.optimizer}
