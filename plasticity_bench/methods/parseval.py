"""Parseval regularisation (Chung, Cheung, Tessler & Lau, NeurIPS 2024, "Parseval
regularization for continual reinforcement learning").

Adds, for every hidden layer of each chosen role's network (the Linear feeding a layer of
neurons; output layers are left free),

    coefficient * (reference_width / H)^2 * || W W^T - scale * I ||_F^2

to its training loss, W the layer's H x fan_in weight matrix. It keeps the rows of W
orthogonal with squared norm ``scale``, which preserves the diversity of the units and
the gradient's propagation through the layer, the properties whose loss the paper links to
lost plasticity. Defaults are the authors' released code's: scale = gain^2 = 2 (ReLU's
gain sqrt 2), coefficient 1e-3 for 64-unit layers and scaled by (64 / H)^2 for wider ones
(their 1e-4 at width ~200). Plasticine applies the term with scale 1 to one layer only.
The paper's optional learnable per-unit scales (diagonal layers, used on MetaWorld) are not
added here. In a residual block only the first Dense (the one feeding the block's neurons)
is regularised; the second writes into the residual stream.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, non_negative, positive_int, role_names
from plasticity_bench.networks import neuron_layers


def parseval_penalty(weight: torch.Tensor, scale: float) -> torch.Tensor:
    """|| W W^T - scale * I ||_F^2 of one H x fan_in weight matrix."""
    gram = weight @ weight.T
    return (gram - scale * torch.eye(gram.shape[0], device=weight.device, dtype=weight.dtype)).pow(2).sum()


class Parseval(Method):
    name = "parseval"

    def __init__(self, coefficient: float = 1e-3, scale: float = 2.0, reference_width: int = 64, roles: Any = None):
        self.coefficient = non_negative("coefficient", coefficient)
        self.scale = non_negative("scale", scale)
        self.reference_width = positive_int("reference_width", reference_width)
        self.roles = role_names(roles)
        self.chosen: set[str] = set()

    def setup(self, roles: dict[str, Role]) -> None:
        self.chosen = set(chosen_roles(self.name, roles, self.roles))

    def loss_terms(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor | None:
        if role_name not in self.chosen:
            return None
        terms = [(self.reference_width / layer.incoming.out_features) ** 2
                 * parseval_penalty(layer.incoming.weight, self.scale)
                 for layer in neuron_layers(network) if layer.incoming.weight.requires_grad]
        return self.coefficient * torch.stack(terms).sum() if terms else None
