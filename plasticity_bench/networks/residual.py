"""Residual networks in the style of BRO (Nauman et al. 2024) and SimBa (Lee et al. 2024).

BRO (default)::

    x → Dense → LayerNorm → act                                 (input layer: a neuron layer)
      → [ x + LayerNorm(Dense(act(LayerNorm(Dense(x))))) ] × blocks
      → Dense                                                   (output layer)

SimBa (``pre_norm=True``)::

    x → Dense                                                   (embedding: no activation)
      → [ x + Dense(act(Dense(LayerNorm(x)))) ] × blocks        (inner width 4 × width)
      → LayerNorm → Dense

The residual stream has one width, ``hidden_sizes[0]`` of the NetworkConfig (every entry
of ``hidden_sizes`` must equal it); ``blocks`` counts the residual blocks. The LayerNorms are
part of the architecture, so ``NetworkConfig.layer_norm`` changes nothing here.

Neuron layers (what metrics score and recyclers reset) are the activation outputs: the BRO
input layer's and each block's inner activation. A block's second Dense feeds a LayerNorm
(BRO) or the sum (SimBa), not an activation, so it produces no neurons.

Outgoing weights of neurons that reach the residual stream. The BRO input layer's neurons
are the stream itself: neuron i is added, through every skip connection, to coordinate i of
each later block's output and of the output layer's input. Their ``outgoing`` lists only the
Dense that reads the activation directly (the first block's first Dense, or the output
layer when there are no blocks). Zeroing its columns does NOT silence such a neuron: a
recycled input neuron still flows through the skip path, so, unlike a recycled neuron of a
plain MLP, it changes the network's function even when it was dormant. Silencing it fully
would mean zeroing column i of every later reader, which would also cut the blocks'
contributions to coordinate i, i.e. change neurons that were not chosen. Block-inner
neurons reach the stream only through the block's second Dense, so zeroing its columns
silences them exactly (as in an MLP).
"""

from __future__ import annotations

import torch
from torch import nn

from plasticity_bench.networks.config import NetworkConfig
from plasticity_bench.networks.layers import NeuronLayer, make_activation


class BROBlock(nn.Module):
    """x + LayerNorm(Dense(act(LayerNorm(Dense(x)))))."""

    def __init__(self, width: int, activation: str):
        super().__init__()
        self.dense1 = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.activation = make_activation(activation)
        self.dense2 = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.dense2(self.activation(self.norm1(self.dense1(x)))))

    def neuron_layers(self, prefix: str = "") -> list[NeuronLayer]:
        return [NeuronLayer(f"{prefix}activation", incoming=self.dense1, outgoing=[self.dense2], norm=self.norm1)]


class SimBaBlock(nn.Module):
    """x + Dense(act(Dense(LayerNorm(x)))), the inner layer 4× wider (SimBa's inverted bottleneck)."""

    def __init__(self, width: int, activation: str, expansion: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.dense1 = nn.Linear(width, expansion * width)
        self.activation = make_activation(activation)
        self.dense2 = nn.Linear(expansion * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dense2(self.activation(self.dense1(self.norm(x))))

    def neuron_layers(self, prefix: str = "") -> list[NeuronLayer]:
        # The LayerNorm acts on the block's input, not between dense1 and the activation.
        return [NeuronLayer(f"{prefix}activation", incoming=self.dense1, outgoing=[self.dense2])]


class ResidualNet(nn.Module):
    """BRO-style residual network (SimBa-style with ``config.pre_norm``); see the module doc."""

    def __init__(self, in_features: int, out_features: int, config: NetworkConfig = NetworkConfig()):
        super().__init__()
        widths = set(config.hidden_sizes)
        if len(widths) != 1:
            raise ValueError(f"a residual network has one width; hidden_sizes {list(config.hidden_sizes)} lists several")
        if config.blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {config.blocks}")
        width = config.hidden_sizes[0]
        self.config = config
        self.input_dense = nn.Linear(in_features, width)
        if config.pre_norm:
            blocks = [SimBaBlock(width, config.activation) for _ in range(config.blocks)]
            self.input_norm, self.input_activation = nn.Identity(), nn.Identity()
            self.output_norm = nn.LayerNorm(width)
        else:
            blocks = [BROBlock(width, config.activation) for _ in range(config.blocks)]
            self.input_norm, self.input_activation = nn.LayerNorm(width), make_activation(config.activation)
            self.output_norm = nn.Identity()
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Linear(width, out_features)
        if config.init == "orthogonal":  # BRO's initialisation
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.orthogonal_(module.weight)
                    nn.init.zeros_(module.bias)
        elif config.init != "default":
            raise ValueError(f"unknown init {config.init!r}; valid: default, orthogonal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_activation(self.input_norm(self.input_dense(x)))
        return self.output(self.output_norm(self.blocks(x)))

    def neuron_layers(self, prefix: str = "") -> list[NeuronLayer]:
        """Input-layer neurons (BRO only), then each block's inner neurons, in forward order."""
        found: list[NeuronLayer] = []
        if not self.config.pre_norm:
            first_reader = self.blocks[0].dense1 if len(self.blocks) else self.output
            found.append(NeuronLayer(f"{prefix}input_activation", incoming=self.input_dense,
                                     outgoing=[first_reader], norm=self.input_norm))
        for index, block in enumerate(self.blocks):
            found += block.neuron_layers(f"{prefix}blocks.{index}.")
        return found
