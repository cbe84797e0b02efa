"""Concatenated ReLU (Abbas et al. 2023, "Loss of plasticity in continual deep
reinforcement learning"): every hidden activation becomes CReLU(x) = [relu(x), relu(-x)],
which always passes gradient through one half, so a unit cannot die.

The CReLU module (``networks.layers.CReLU``) doubles a layer's outputs, so this method
halves every hidden width (``hidden_sizes`` and the diffusion denoiser's widths; odd widths
round down, at least 1), as Abbas et al. do to keep the network's size: each layer still
emits the original number of features, the first layer has half its parameters, the
output layer as many as before, and each hidden-to-hidden matrix half (H x H becomes
H/2 x H).

Neurons: a CReLU layer of width H (incoming rows) has 2H outputs; output j comes from row
j mod H. Metrics score the 2H outputs; recyclers fold them to one score per row by the
maximum and reset row i with both outgoing columns i and i + H (``NeuronLayer.copies``).
Architectures: MLP bodies (mlp, and the diffusion actor's denoiser); the residual nets'
stream width is fixed, so ``crelu`` with arch ``residual`` is rejected by the run spec.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from plasticity_bench.methods.base import Method
from plasticity_bench.networks import NetworkConfig


def halve(widths: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, width // 2) for width in widths)


class ConcatenatedActivationMethod(Method):
    """Every hidden activation becomes ``activation``, a module with two outputs per unit
    (``copies = 2``), and every hidden width is halved to keep the network's size."""

    activation: ClassVar[str]
    unsupported_archs = {"residual": "its activation doubles each layer's width, which the residual stream keeps fixed"}

    def network_config(self, config: NetworkConfig) -> NetworkConfig:
        return dataclasses.replace(config, activation=self.activation, hidden_sizes=halve(config.hidden_sizes),
                                   denoiser_hidden_sizes=halve(config.denoiser_hidden_sizes))


class CReLUMethod(ConcatenatedActivationMethod):
    name = "crelu"
    activation = "CReLU"
