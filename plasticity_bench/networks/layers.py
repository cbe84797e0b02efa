"""What methods and metrics know about a network: its activation modules and neuron layers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

class CReLU(nn.Module):
    """Concatenated ReLU [relu(x), relu(-x)] along the last (neuron) axis (Abbas et al. 2023).

    It doubles the layer's outputs: output j < H is relu(x_j), output H + j is relu(-x_j),
    for H pre-activations; ``copies = 2`` tells networks and recyclers so (see NeuronLayer).
    """

    is_activation = True
    copies = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(x), torch.relu(-x)], dim=-1)


class Fourier(nn.Module):
    """Deep Fourier features [sin(x), cos(x)] along the neuron axis (Lewandowski et al. 2024).

    Like CReLU it doubles the layer's outputs (``copies = 2``): output j < H is sin(x_j),
    output H + j is cos(x_j). Each unit is linear near some point of every period, which
    is what keeps the network trainable (the paper's argument); no unit can saturate for
    good, as sin and cos are never flat at the same x.
    """

    is_activation = True
    copies = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1)


# Activations the names users pass on the CLI: element-wise ones keep the neuron axis;
# CReLU and Fourier double it.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "ReLU": nn.ReLU,
    "LeakyReLU": nn.LeakyReLU,
    "ELU": nn.ELU,
    "GELU": nn.GELU,
    "SiLU": nn.SiLU,
    "Mish": nn.Mish,
    "Tanh": nn.Tanh,
    "Sigmoid": nn.Sigmoid,
    "Softplus": nn.Softplus,
    "CReLU": CReLU,
    "Fourier": Fourier,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def is_activation(module: nn.Module) -> bool:
    """A module whose output is a layer of neurons: torch's activations, or any module that
    declares itself one with a class attribute ``is_activation = True`` (e.g. CReLU)."""
    if getattr(type(module), "is_activation", False):
        return True
    return type(module).__module__ == "torch.nn.modules.activation" and not isinstance(
        module, (nn.MultiheadAttention, nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)
    )


def default_weight_init(weight: torch.Tensor) -> None:
    """nn.Linear's own initialiser (Kaiming-uniform with a = sqrt(5), i.e. U(±1/sqrt(fan_in)))."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))


@dataclass
class NeuronLayer:
    """One hidden layer of neurons, named by its activation module's qualified name.

    ``incoming`` produces the neurons' pre-activations (row i of its weight feeds neuron i);
    ``norm`` is the LayerNorm between them, if any; ``outgoing`` are the Linear layers that
    read the neurons (column i of their weights). ``copies``: outputs per incoming row (an
    activation with ``copies = 2``, CReLU, turns row i into outputs i and i + width, read by
    outgoing columns i and i + width); ``width`` counts rows.
    """

    name: str
    incoming: nn.Linear
    outgoing: list[nn.Linear]
    norm: nn.LayerNorm | None = None
    init_weight: object = field(default=default_weight_init)
    copies: int = 1

    @property
    def width(self) -> int:
        return self.incoming.out_features


def neuron_layers(net: nn.Module, prefix: str = "") -> list[NeuronLayer]:
    """Neuron layers of every building block inside ``net``, in definition order.

    A building block (MLP, residual block, ...) lists its own layers via a
    ``neuron_layers(prefix)`` method; names are qualified from ``net`` so they match the
    keys of the metric functions.
    """
    if hasattr(net, "neuron_layers"):
        return net.neuron_layers(prefix)
    return [layer for name, child in net.named_children() for layer in neuron_layers(child, f"{prefix}{name}.")]
