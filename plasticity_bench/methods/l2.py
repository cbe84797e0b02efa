"""Plain (coupled) L2 regularisation: ``coefficient * sum_j theta_j^2`` added to each chosen
role's training loss, every parameter of its network (weights, biases, LayerNorm gains).

Unlike ``weight_decay`` (AdamW's decoupled decay, applied outside the adaptive step), this
penalty's gradient goes through Adam's normalisation, as in the L2 baseline of plasticity
studies (Plasticine; Lyle et al. 2023, where it is "neutral or worse"). ``l2_init`` is the
same penalty around the initial parameters instead of zero.

Default coefficient 5e-4: Plasticine's L2 baseline is Adam with (coupled) weight_decay 1e-3,
i.e. gradient + 1e-3 * theta, which is this penalty's gradient at coefficient 1e-3 / 2.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, non_negative, role_names

DEFAULT_COEFFICIENT = 5e-4


class L2(Method):
    name = "l2"

    def __init__(self, coefficient: float = DEFAULT_COEFFICIENT, roles: Any = None):
        self.coefficient = non_negative("coefficient", coefficient)
        self.roles = role_names(roles)
        self.chosen: set[str] = set()

    def setup(self, roles: dict[str, Role]) -> None:
        self.chosen = set(chosen_roles(self.name, roles, self.roles))

    def loss_terms(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor | None:
        if role_name not in self.chosen:
            return None
        return self.coefficient * torch.stack([p.pow(2).sum() for p in network.parameters() if p.requires_grad]).sum()
