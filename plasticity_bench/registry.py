"""Name → factory for algorithms, architectures, methods and metrics, with one-line
descriptions for ``plasticity-bench list``. Factories are "module:attribute" strings,
imported on first use, so listing and validating never pay for heavy imports."""

from __future__ import annotations

import importlib
from typing import Any

ALGOS: dict[str, tuple[str, str]] = {
    "sac": ("plasticity_bench.agents.sac:SAC", "Soft Actor-Critic (continuous actions; CleanRL sac_continuous_action)"),
    "dqn": ("plasticity_bench.agents.dqn:DQN", "Deep Q-Network (discrete actions; CleanRL dqn)"),
}

ARCHS: dict[str, tuple[str, str]] = {
    "mlp": ("plasticity_bench.networks.mlp:MLP", "multilayer perceptron: Linear → [LayerNorm] → activation, width/depth/activation configurable"),
}

METHODS: dict[str, tuple[str, str]] = {
    "none": ("plasticity_bench.methods.base:Method", "no intervention (baseline)"),
    "layer_norm": ("plasticity_bench.methods.layer_norm:LayerNormMethod", "LayerNorm after each hidden Linear, before the activation (Lyle et al. 2023)"),
    "redo": ("plasticity_bench.methods.redo:ReDo", "recycle tau-dormant neurons by activation score (Sokar et al. 2023)"),
    "regrama": ("plasticity_bench.methods.regrama:ReGraMa", "reset neurons with low gradient magnitude (GraMa score; Liu et al. 2025)"),
}


def load(reference: str) -> Any:
    """Import ``"package.module:Attribute"``."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def lookup(kind: str, table: dict[str, tuple[str, str]], name: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(table)}")
    return load(table[name][0])
