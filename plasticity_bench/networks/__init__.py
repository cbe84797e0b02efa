"""Networks whose activations are modules, and the neuron-layer view methods act on."""

from plasticity_bench.networks.layers import ACTIVATIONS, NeuronLayer, is_activation, make_activation, neuron_layers
from plasticity_bench.networks.mlp import MLP, MLPConfig

__all__ = ["ACTIVATIONS", "MLP", "MLPConfig", "NeuronLayer", "is_activation", "make_activation", "neuron_layers"]
