"""Re-drawing a network's parameters with its own initialisers: a fresh copy of a network
(whole-network resets, the plasticity probe's copies) and the re-initialisation of chosen
modules in place."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def fresh_copy(network: nn.Module) -> nn.Module:
    """A copy of ``network`` with every module re-drawn by its own initialiser
    (``reset_parameters``: nn.Linear's Kaiming-uniform weights and uniform biases,
    LayerNorm's ones and zeros), in module order, from torch's global generator."""
    fresh = copy.deepcopy(network)
    reinitialise(fresh.modules())
    return fresh


def reinitialise(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    """Re-draw each module that has an initialiser; returns the parameters it re-drew."""
    touched: list[nn.Parameter] = []
    with torch.no_grad():
        for module in modules:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
                touched += list(module.parameters(recurse=False))
    return touched
