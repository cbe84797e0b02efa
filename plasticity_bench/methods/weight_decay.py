"""Decoupled weight decay: every role's optimizer is AdamW (Loshchilov & Hutter, ICLR 2019)
instead of Adam, with the agent's learning rate.

AdamW's update: theta <- theta - lr * weight_decay * theta, then the Adam step. Default
weight_decay 0.01 is AdamW's own default in PyTorch (and the decay Loshchilov & Hutter's
normalised schedule starts from); Sokar et al. 2023 and Lyle et al. 2023 use weight decay as
a baseline against plasticity loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import non_negative, role_names
from plasticity_bench.optim import adam


class WeightDecay(Method):
    name = "weight_decay"
    provides_optimizer = True

    def __init__(self, weight_decay: float = 0.01, roles: Any = None):
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.roles = role_names(roles)

    def optimizer(self, role_name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer | None:
        if self.roles is not None and role_name not in self.roles:
            return None
        return adam(params, lr=lr, kind=torch.optim.AdamW, weight_decay=self.weight_decay)
