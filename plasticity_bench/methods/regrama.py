"""ReGraMa (Liu et al., NeurIPS 2025): recycle neurons whose gradient magnitude (GraMa) is low."""

from __future__ import annotations

import math
from typing import Any

import torch

from plasticity_bench.agents.base import Batch, Role
from plasticity_bench.methods.recycling import NeuronRecycler, recycle_neurons
from plasticity_bench.metrics.activity import _eval_mode, grama_scores, normalise
from plasticity_bench.networks.layers import neuron_layers

MODES = ("threshold", "lowest_k_percent", "capped")
VARIANTS = ("paper", "released")


def released_scores(role: Role, batch: Batch) -> dict[str, torch.Tensor]:
    """The released code's score of each hidden unit (one per incoming row): mean over the
    incoming weight row of |dL/dW| (the batch-mean gradient), or |dL/dgamma| for a layer
    with a LayerNorm, each normalised by its layer mean like GraMa. The gradient is taken
    with ``torch.autograd.grad`` in eval mode, so no ``.grad`` changes."""
    layers = neuron_layers(role.network)
    params = [layer.norm.weight if layer.norm is not None and layer.norm.weight is not None else layer.incoming.weight
              for layer in layers]
    wanted = [p for p in params if p.requires_grad]
    with _eval_mode(role.network), torch.enable_grad():
        loss = role.loss_fn(role.network, batch)
        gradients = dict(zip(map(id, wanted), torch.autograd.grad(loss, wanted, allow_unused=True)))
    scores = {}
    for layer, param in zip(layers, params):
        gradient = gradients.get(id(param))
        if gradient is None:
            gradient = torch.zeros_like(param)
        magnitude = gradient.abs() if gradient.dim() == 1 else gradient.abs().mean(dim=1)
        scores[layer.name] = normalise(magnitude.detach())
    return scores


class ReGraMa(NeuronRecycler):
    """Every ``period`` gradient updates, score hidden neurons by GraMa
    ``E|dL/dh_i| / mean_k E|dL/dh_k|`` under the role's own training loss on a separate
    replay batch, and recycle them with the ReDo pipeline.

    Modes (the released code's three): ``threshold`` recycles every neuron with score <=
    tau; ``lowest_k_percent`` the floor(percent% of width) lowest-scoring neurons of each
    layer, whatever their score; ``capped`` those <= tau but at most floor(percent% of
    width) per layer, lowest first (the paper's SAC-Humanoid setting caps at 5%).

    Variants: ``paper`` (default) scores by GraMa and recycles with the ReDo pipeline;
    ``released`` follows the released code (PAPERS.md §1): score = mean over the incoming
    weight row of |dL/dW| (LayerNorm layers: |dL/dgamma|), normalised by the layer mean,
    and the reset re-draws incoming rows without zeroing outgoing weights and without
    touching the optimizer state. (The released code also scans the output layer and
    re-draws biases; here, as in the paper variant, only hidden layers are scanned and
    biases are zeroed.)
    """

    name = "regrama"
    description = "reset neurons with low gradient magnitude (GraMa score; Liu et al. 2025)"

    def __init__(
        self,
        tau: float = 0.01,
        period: int = 1000,
        batch_size: int = 256,
        roles: Any = None,
        mode: str = "threshold",
        percent: float = 5.0,
        variant: str = "paper",
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
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} for method 'regrama'; valid: {', '.join(VARIANTS)}")
        self.variant = variant

    @classmethod
    def options(cls) -> dict[str, Any]:
        return {"tau": 0.01, "period": 1000, "batch_size": 256, "roles": None, "mode": "threshold", "percent": 5.0,
                "variant": "paper"}

    def scores(self, role: Role, batch: Batch) -> dict[str, torch.Tensor]:
        if self.variant == "released":
            return released_scores(role, batch)
        return grama_scores(role.network, role.loss_fn, batch)

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
