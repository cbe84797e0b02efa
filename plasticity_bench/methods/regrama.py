"""ReGraMa (Liu et al., NeurIPS 2025): recycle neurons whose gradient magnitude (GraMa) is low."""

from __future__ import annotations

import math
from typing import Any

import torch

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.recycling import NeuronRecycler, recycle_neurons
from plasticity_bench.metrics.activity import GRAMA_VARIANTS, grama_scores

MODES = ("threshold", "lowest_k_percent", "capped")


class ReGraMa(NeuronRecycler):
    """Every ``period`` gradient updates, score hidden neurons by GraMa
    ``E|dL/dz_i| / mean_k E|dL/dz_k|`` (z the pre-activation) under the role's own training
    loss on a separate replay batch, and recycle them with the ReDo pipeline.

    Modes (the released code's three): ``threshold`` recycles every neuron with score <=
    tau; ``lowest_k_percent`` the floor(percent% of width) lowest-scoring neurons of each
    layer, whatever their score; ``capped`` those <= tau but at most floor(percent% of
    width) per layer, lowest first (the paper's SAC-Humanoid setting caps at 5%).

    Variants (``metrics.activity.GRAMA_VARIANTS``; docs/metrics.md): ``released`` (the
    default, the released code's method and the setting that reproduces the paper's Table 8;
    below); ``pre_activation`` scores by GraMa at the pre-activation and recycles with the
    ReDo pipeline; ``output`` scores by the gradient at the activation's output (the
    paper's notation read literally, an ablation: it flags no dead ReLU unit), same
    pipeline; ``released`` follows the released code: score = mean over the incoming weight
    row of |dL/dW| (LayerNorm layers: |dL/dgamma|), normalised by the layer mean, and the
    reset re-draws incoming rows without zeroing outgoing weights and without touching the
    optimizer state. (The released code also scans the output layer and re-draws biases;
    here, as in the other variants, only hidden layers are scanned and biases are zeroed.)

    Roles: by default the value networks only (``roles="critics"``: SAC's and TD3's
    critic, DQN's Q-network), as the released code's main script resets only the critics;
    ``roles=None`` recycles every role.
    """

    name = "regrama"

    def __init__(
        self,
        tau: float = 0.01,
        period: int = 1000,
        batch_size: int = 256,
        roles: Any = "critics",
        mode: str = "threshold",
        percent: float = 5.0,
        variant: str = "released",
    ):
        # tau = 0.01 is the paper's setting for its main experiments (BRO-net and DACER,
        # App. A), and lies just above the ~0.0095 below which neurons were observed never
        # to recover; the check every 1000 gradient steps is also App. A's.
        super().__init__(tau=tau, period=period, batch_size=batch_size, roles=roles)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} for method 'regrama'; valid: {', '.join(MODES)}")
        try:
            number = float(percent)
        except (TypeError, ValueError):
            raise ValueError(f"percent must be a number in (0, 100], got {percent!r}") from None
        if not 0 < number <= 100:
            raise ValueError(f"percent must be a number in (0, 100], got {percent!r}")
        self.mode = mode
        self.percent = number
        if variant not in GRAMA_VARIANTS:
            raise ValueError(f"unknown variant {variant!r} for method 'regrama'; valid: {', '.join(GRAMA_VARIANTS)}")
        self.variant = variant

    def scores(self, role: Role, batch: Batch) -> dict[str, torch.Tensor]:
        return grama_scores(role.network, role.loss_fn, batch, variant=self.variant)

    def recycle(self, role: Role, masks: dict[str, torch.Tensor]) -> dict[str, int]:
        released = self.variant == "released"
        return recycle_neurons(role, masks, zero_outgoing=not released, reset_optimizer=not released)

    def select(self, score: torch.Tensor) -> torch.Tensor:
        below = score <= self.tau
        if self.mode == "threshold":
            return below
        budget = math.floor(score.numel() * self.percent / 100 + 1e-9)
        lowest = torch.zeros_like(below)
        lowest[torch.argsort(score, stable=True)[:budget]] = True
        return lowest if self.mode == "lowest_k_percent" else lowest & below
