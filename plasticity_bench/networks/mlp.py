"""Multilayer perceptron: Linear → [LayerNorm] → activation, repeated; a Linear output layer."""

from __future__ import annotations

import torch
from torch import nn

from plasticity_bench.networks.config import NetworkConfig
from plasticity_bench.networks.layers import NeuronLayer, make_activation


class MLP(nn.Module):
    """Every activation is an nn.Module so that metric probes can hook it."""

    def __init__(self, in_features: int, out_features: int, config: NetworkConfig = NetworkConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = in_features
        for hidden in config.hidden_sizes:
            layers.append(nn.Linear(width, hidden))
            if config.layer_norm:
                layers.append(nn.LayerNorm(hidden))
            activation = make_activation(config.activation)
            layers.append(activation)
            width = hidden * getattr(activation, "copies", 1)  # CReLU emits 2 outputs per unit
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def neuron_layers(self, prefix: str = "") -> list[NeuronLayer]:
        """Each hidden layer's activation with the parameters that feed and read it."""
        found: list[NeuronLayer] = []
        modules = list(self.layers.named_children())
        linears = [(i, m) for i, (_, m) in enumerate(modules) if isinstance(m, nn.Linear)]
        for position, (index, incoming) in enumerate(linears[:-1]):
            outgoing = linears[position + 1][1]
            between = [m for _, m in modules[index + 1 : linears[position + 1][0]]]
            norm = next((m for m in between if isinstance(m, nn.LayerNorm)), None)
            act_index = next(
                j for j in range(index + 1, linears[position + 1][0]) if not isinstance(modules[j][1], nn.LayerNorm)
            )
            name = f"{prefix}layers.{modules[act_index][0]}"
            copies = getattr(modules[act_index][1], "copies", 1)
            found.append(NeuronLayer(name=name, incoming=incoming, norm=norm, outgoing=[outgoing], copies=copies))
        return found

