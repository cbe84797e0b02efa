"""Shrink & Perturb (Ash & Adams, NeurIPS 2020, "On warm-starting neural network training").

Every ``period`` gradient updates, each trainable parameter of the chosen roles becomes

    form "noise" (the paper's):  theta <- shrink * theta + perturb * theta_fresh
    form "fresh":                theta <- shrink * theta + (1 - shrink) * theta_fresh

where theta_fresh is a fresh draw of the parameter's own initialiser (``fresh_copy``:
nn.Linear's Kaiming-uniform weights and uniform biases). LayerNorm's initialiser is
deterministic (gain 1, offset 0), so its gain becomes shrink * gamma + perturb (form
"noise") or shrink * gamma + (1 - shrink) (form "fresh"): a pull towards 1, no noise.
The "fresh" form is the interpolation towards a new initialisation that RL uses of S&P
apply (e.g. the SR-SPR and BBF agents' shrink-and-perturb of their encoders). Frozen
parameters (requires_grad False) are left alone. The optimizer state is kept and targets
are left to follow through the agent's own target updates (the paper changes parameters
only).

Defaults: shrink = 0.4, perturb = 0.1, form "noise" — Ash & Adams' own (their released
``warm_start`` code), where S&P is applied once per new round of data. In RL there is no
such round, so the period is this suite's choice: every 200_000 updates, the period of the
Nikishin et al. 2022 reset baseline, so the two periodic interventions act equally often.
RL agents' settings for comparison: SR-SPR (D'Oro et al. 2023) shrink 0.8 with 0.2 of a
fresh init (``form=fresh, shrink=0.8``), BBF 0.5 / 0.5; Plasticine shrinks by 1 - 1e-6
towards theta0 after every step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from plasticity_bench.roles import Role
from plasticity_bench.methods.options import positive_int, role_names
from plasticity_bench.methods.periodic import PeriodicRoleMethod
from plasticity_bench.networks.reinit import fresh_copy

FORMS = ("noise", "fresh")


@torch.no_grad()
def shrink_perturb_(network: nn.Module, shrink: float, perturb: float, form: str = "noise") -> None:
    """Apply one shrink-and-perturb step to ``network`` in place (see the module doc)."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; valid: {', '.join(FORMS)}")
    fresh = fresh_copy(network)
    weight = perturb if form == "noise" else 1.0 - shrink
    for param, draw in zip(network.parameters(), fresh.parameters()):
        if param.requires_grad:
            param.mul_(shrink).add_(draw, alpha=weight)


def _unit_interval(option: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{option} must be a number in [0, 1], got {value!r}")
    return number


class ShrinkPerturb(PeriodicRoleMethod):
    name = "shrink_perturb"

    def __init__(self, shrink: float = 0.4, perturb: float = 0.1, form: str = "noise",
                 period: int = 200_000, roles: Any = None):
        self.shrink = _unit_interval("shrink", shrink)
        try:
            self.perturb = float(perturb)
        except (TypeError, ValueError):
            raise ValueError(f"perturb must be a number >= 0, got {perturb!r}") from None
        if not self.perturb >= 0:
            raise ValueError(f"perturb must be a number >= 0, got {perturb!r}")
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r} for method 'shrink_perturb'; valid: {', '.join(FORMS)}")
        self.form = form
        self.period = positive_int("period", period)
        self.roles = role_names(roles)

    def act(self, role_name: str, role: Role) -> dict[str, float]:
        shrink_perturb_(role.network, self.shrink, self.perturb, self.form)
        return {f"shrink_perturb/{role_name}": 1.0}
