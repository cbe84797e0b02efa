"""Networks whose activations are modules, and the neuron-layer view methods act on."""

from plasticity_bench.networks.config import NetworkConfig
from plasticity_bench.networks.layers import ACTIVATIONS, NeuronLayer, is_activation, make_activation, neuron_layers
from plasticity_bench.networks.mlp import MLP

__all__ = ["ACTIVATIONS", "MLP", "build_body", "NetworkConfig", "NeuronLayer", "is_activation", "make_activation", "neuron_layers"]


def build_body(config: NetworkConfig, in_features: int, out_features: int):
    """The function approximator of ``config.arch`` mapping in_features → out_features."""
    return MLP(in_features, out_features, config)
