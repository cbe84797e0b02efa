"""What an architecture is built from; methods may rewrite it (e.g. add LayerNorm) before
the agent builds its networks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkConfig:
    arch: str = "mlp"
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "ReLU"
    layer_norm: bool = False
