"""Name → factory for algorithms, architectures, methods and metrics, with one-line
descriptions for ``plasticity-bench list``. Factories are "module:attribute" strings,
imported on first use, so listing and validating never pay for heavy imports. A built-in
method's description is therefore kept here only, not on its class."""

from __future__ import annotations

import importlib
from typing import Any

ALGOS: dict[str, tuple[str, str]] = {
    "sac": ("plasticity_bench.agents.sac:SAC", "Soft Actor-Critic (continuous actions; CleanRL sac_continuous_action)"),
    "td3": ("plasticity_bench.agents.td3:TD3", "Twin Delayed DDPG (continuous actions; CleanRL td3_continuous_action)"),
    "dqn": ("plasticity_bench.agents.dqn:DQN", "Deep Q-Network (discrete actions; CleanRL dqn)"),
    "sl": ("plasticity_bench.agents.classifier:Classifier", "continual supervised learning, the positive control: "
           "random-label memorisation over a sequence of tasks (Lyle et al. 2023); sl:* tasks, steps = gradient steps"),
}

ARCHS: dict[str, tuple[str, str]] = {
    "mlp": ("plasticity_bench.networks.mlp:MLP", "multilayer perceptron: Linear → [LayerNorm] → activation, width/depth/activation configurable"),
    "residual": ("plasticity_bench.networks.residual:ResidualNet", "BRO-style residual blocks with LayerNorm (SimBa pre-LN with residual_pre_norm); width, blocks configurable"),
    "diffusion": ("plasticity_bench.networks.diffusion:DiffusionActor", "diffusion policy actor (K-step DDPM reverse chain on diffusers' DDPMScheduler, DACER-style) with MLP critics; sac, td3"),
}

METHODS: dict[str, tuple[str, str]] = {
    "none": ("plasticity_bench.methods.base:Method", "no intervention (baseline)"),
    "layer_norm": ("plasticity_bench.methods.layer_norm:LayerNormMethod", "LayerNorm after each hidden Linear, before the activation (Lyle et al. 2023)"),
    "redo": ("plasticity_bench.methods.redo:ReDo", "recycle tau-dormant neurons by activation score (Sokar et al. 2023)"),
    "regrama": ("plasticity_bench.methods.regrama:ReGraMa", "reset neurons with low gradient magnitude (GraMa score; Liu et al. 2025)"),
    "shrink_perturb": ("plasticity_bench.methods.shrink_perturb:ShrinkPerturb", "periodically theta <- shrink*theta + perturb*fresh init (Ash & Adams 2020)"),
    "reset": ("plasticity_bench.methods.reset:Reset", "periodically re-initialise the last layers (or all) and their optimizer state (Nikishin et al. 2022)"),
    "plasticity_injection": ("plasticity_bench.methods.plasticity_injection:PlasticityInjection", "at update T freeze the head and add trainable h1 minus frozen h2 (Nikishin et al. 2023)"),
    "crelu": ("plasticity_bench.methods.crelu:CReLUMethod", "CReLU activations [relu(x), relu(-x)] with halved widths (Abbas et al. 2023)"),
    "l2_init": ("plasticity_bench.methods.l2_init:L2Init", "loss + lambda * ||theta - theta0||^2, regenerative regularisation (Kumar et al. 2023)"),
    "weight_decay": ("plasticity_bench.methods.weight_decay:WeightDecay", "AdamW with decoupled weight decay instead of Adam (Loshchilov & Hutter 2019)"),
    "nap": ("plasticity_bench.methods.nap:NormalizeAndProject", "LayerNorm before each nonlinearity + rescale each weight matrix to its initial norm (Lyle et al. 2024)"),
    "cbp": ("plasticity_bench.methods.cbp:ContinualBackprop", "continual backprop: replace a small fraction of mature low-utility units (Dohare et al. 2024)"),
    "c_chain": ("plasticity_bench.methods.c_chain:CChain", "loss + lambda * MSE to the network of 2 updates earlier on a reference batch (C-CHAIN, Tang et al. 2025)"),
    "l2": ("plasticity_bench.methods.l2:L2", "loss + lambda * ||theta||^2, coupled L2 regularisation through the optimizer"),
    "parseval": ("plasticity_bench.methods.parseval:Parseval", "loss + lambda * ||W W^T - s I||_F^2 on every hidden layer (Chung et al. 2024)"),
    "dff": ("plasticity_bench.methods.dff:DeepFourierFeatures", "deep Fourier features [sin(x), cos(x)] as every hidden activation, widths halved (Lewandowski et al. 2024)"),
    "trac": ("plasticity_bench.methods.trac:TRAC", "TRAC: Adam with a parameter-free, online-tuned scale of the offset from initialisation (Muppidi et al. 2024)"),
}


METHOD_ENTRY_POINT_GROUP = "plasticity_bench.methods"


def load(reference: str) -> Any:
    """Import ``"package.module:Attribute"``."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def lookup(kind: str, table: dict[str, tuple[str, str]], name: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(table)}")
    return load(table[name][0])


def installed_methods() -> dict[str, Any]:
    """Methods that other packages register under the ``plasticity_bench.methods`` entry-point group."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=METHOD_ENTRY_POINT_GROUP)}


def method_names() -> list[str]:
    """Every method a run may name without a "module:Class" reference."""
    return [*METHODS, *(name for name in installed_methods() if name not in METHODS)]
