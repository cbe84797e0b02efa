"""Networks whose activations are modules, and the neuron-layer view methods act on."""

from plasticity_bench.networks.config import NetworkConfig
from plasticity_bench.networks.layers import ACTIVATIONS, NeuronLayer, is_activation, make_activation, neuron_layers
from plasticity_bench.networks.mlp import MLP
from plasticity_bench.networks.residual import ResidualNet

__all__ = ["ACTIVATIONS", "MLP", "build_body", "NetworkConfig", "NeuronLayer", "ResidualNet", "is_activation", "make_activation", "neuron_layers"]


def build_body(config: NetworkConfig, in_features: int, out_features: int):
    """The function approximator of ``config.arch`` mapping in_features → out_features.

    "residual" builds a ResidualNet; every other architecture's bodies are MLPs (an
    architecture that replaces only one network, e.g. the actor, builds that one itself)."""
    if config.arch == "residual":
        return ResidualNet(in_features, out_features, config)
    return MLP(in_features, out_features, config)
