"""Normalize-and-Project (Lyle et al. 2024, "Normalization and effective learning rates in
reinforcement learning").

Normalize: LayerNorm before each nonlinearity (as the ``layer_norm`` method).
Project: every ``period`` gradient updates (default 1: after each update, as the paper),
each weight matrix W of the chosen roles' ``nn.Linear`` layers (output layers included)
is rescaled to its initial Frobenius norm, W <- W * ||W0|| / ||W||. With the norm fixed,
the effective learning rate of the normalised layers no longer decays as weights grow.
Biases and LayerNorm parameters are not projected; frozen weights (buffers) are skipped.
The initial norms are taken at ``setup`` and kept in the method's state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, positive_int, role_names
from plasticity_bench.networks import NetworkConfig


def weight_matrices(net: nn.Module) -> dict[str, nn.Parameter]:
    """Qualified name → trainable weight matrix of every nn.Linear of ``net``."""
    return {f"{name}.weight": module.weight for name, module in net.named_modules()
            if isinstance(module, nn.Linear) and isinstance(module.weight, nn.Parameter) and module.weight.requires_grad}


class NormalizeAndProject(Method):
    name = "nap"

    def __init__(self, period: int = 1, roles: Any = None):
        self.period = positive_int("period", period)
        self.roles = role_names(roles)
        self.initial_norms: dict[str, dict[str, torch.Tensor]] = {}

    def first_action_updates(self) -> dict[str, int]:
        return {"period": self.period}

    def network_config(self, config: NetworkConfig) -> NetworkConfig:
        return dataclasses.replace(config, layer_norm=True)

    def setup(self, roles: dict[str, Role]) -> None:
        self.initial_norms = {
            name: {w_name: w.detach().norm() for w_name, w in weight_matrices(roles[name].network).items()}
            for name in chosen_roles(self.name, roles, self.roles)
        }

    @torch.no_grad()
    def project(self, roles: dict[str, Role]) -> None:
        for role_name, norms in self.initial_norms.items():
            for w_name, weight in weight_matrices(roles[role_name].network).items():
                if w_name in norms:
                    weight.mul_(norms[w_name] / weight.norm().clamp_min(1e-12))

    def after_update(self, roles: dict[str, Role], update_step: int,
                     sample_batch: Callable[[], Batch]) -> dict[str, float]:
        if update_step % self.period == 0:
            self.project(roles)
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"initial_norms": self.initial_norms}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for role_name, norms in state.get("initial_norms", {}).items():
            current = self.initial_norms.get(role_name, {})
            self.initial_norms[role_name] = {name: norm.to(current[name].device) if name in current else norm
                                             for name, norm in norms.items()}
