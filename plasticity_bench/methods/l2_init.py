"""L2 Init, regenerative regularisation (Kumar et al. 2023, "Maintaining plasticity in
continual learning via regenerative regularization").

Adds ``coefficient * sum_j (theta_j - theta0_j)^2`` to each chosen role's training loss,
theta0 the role's parameters when the method is set up (right after the agent is built;
a resumed run restores theta0 from the method's state). Parameters created later (e.g. by
plasticity injection) or whose shape changed have no theta0 and are not regularised.

Default coefficient 1e-2: Kumar et al. sweep {1e-2, 1e-3, 1e-4, 1e-5} and report that the
single value 1e-2 does best across their problems. (Plasticine multiplies 0.01 by the
unsquared norm ||theta - theta0||, not the paper's squared one.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, non_negative, role_names


class L2Init(Method):
    name = "l2_init"

    def __init__(self, coefficient: float = 1e-2, roles: Any = None):
        self.coefficient = non_negative("coefficient", coefficient)
        self.roles = role_names(roles)
        self.initial: dict[str, dict[str, torch.Tensor]] = {}

    def setup(self, roles: dict[str, Role]) -> None:
        self.initial = {
            name: {p_name: p.detach().clone() for p_name, p in roles[name].network.named_parameters()}
            for name in chosen_roles(self.name, roles, self.roles)
        }

    def loss_terms(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor | None:
        initial = self.initial.get(role_name)
        if not initial:
            return None
        terms = [(p - initial[name]).pow(2).sum() for name, p in network.named_parameters()
                 if p.requires_grad and name in initial and initial[name].shape == p.shape]
        return self.coefficient * torch.stack(terms).sum() if terms else None

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "initial" in state:
            # theta0 goes where setup put it (a checkpoint may have been mapped elsewhere).
            self.initial = {role: {name: tensor.to(self.initial[role][name].device)
                                   if name in self.initial.get(role, {}) else tensor
                                   for name, tensor in params.items()}
                            for role, params in state["initial"].items()}
