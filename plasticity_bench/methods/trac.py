"""TRAC (Muppidi et al. 2024): every chosen role trains with ``optim.TRACAdam``, Adam wrapped
in TRAC's parameter-free scaling of the offset from the initial parameters (see
``plasticity_bench/optim/trac.py``). Adam keeps the agent's learning rate, as Plasticine
wraps its task learning rate; the tuner's betas, s_prev and eps are the authors' defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import role_names
from plasticity_bench.optim.trac import TRACAdam


class TRAC(Method):
    name = "trac"
    provides_optimizer = True

    def __init__(self, roles: Any = None):
        self.roles = role_names(roles)

    def optimizer(self, role_name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer | None:
        if self.roles is not None and role_name not in self.roles:
            return None
        return TRACAdam(params, lr=lr)
