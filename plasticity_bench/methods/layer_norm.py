"""LayerNorm after each hidden Linear, before the nonlinearity (Lyle et al. 2023)."""

from __future__ import annotations

import dataclasses

from plasticity_bench.methods.base import Method
from plasticity_bench.networks import NetworkConfig


class LayerNormMethod(Method):
    name = "layer_norm"
    unsupported_archs = {"residual": "its blocks already apply LayerNorm after every Dense layer (BRO/SimBa)"}

    def network_config(self, config: NetworkConfig) -> NetworkConfig:
        return dataclasses.replace(config, layer_norm=True)
