"""Rank of a network's features: srank (Kumar et al. 2021) and effective rank.

Both are functions of the singular values sigma_1 >= ... >= sigma_d of a feature matrix
Phi (N samples x d features):

- ``srank_delta(Phi) = min { k : sum_{i<=k} sigma_i / sum_i sigma_i >= 1 - delta }``,
  delta = 0.01 as in Kumar et al. ("Implicit under-parameterization", ICLR 2021);
- ``effective_rank(Phi) = exp(-sum_i p_i log p_i)``, ``p_i = sigma_i / sum_j sigma_j``
  (0 log 0 = 0).

A matrix of zeros (a layer of dead neurons) has no spectrum to normalise; both are 0 then.
The feature matrices come from the activity probe: each hidden activation layer's outputs
and, per body, the inputs of its output layer (``activity.output_layers``: the penultimate
features, which in an MLP are the last hidden layer's outputs). Both are computed in the
features' dtype; float32 SVD is accurate to ~1e-6 relative, far below the 1% of delta.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from plasticity_bench.metric_names import SRANK_DELTA
from plasticity_bench.metrics.activity import probe


def singular_values(features: torch.Tensor) -> torch.Tensor:
    """Singular values, descending, of ``features`` (N, d) (more dims: flattened per sample)."""
    if features.dim() == 1:
        features = features.unsqueeze(0)
    elif features.dim() > 2:
        features = features.reshape(features.shape[0], -1)
    return torch.linalg.svdvals(features.detach().float())


def srank_from_singular_values(sigma: torch.Tensor, delta: float = SRANK_DELTA) -> torch.Tensor:
    """0-d float tensor: smallest k with ``cumsum(sigma)[k-1] >= (1 - delta) * sum(sigma)``."""
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    total = sigma.sum()
    below = (torch.cumsum(sigma, 0) < (1.0 - delta) * total).sum()  # cumsum is non-decreasing
    return torch.where(total > 0, below + 1, torch.zeros_like(below)).float()


def effective_rank_from_singular_values(sigma: torch.Tensor) -> torch.Tensor:
    """0-d tensor: ``exp(-sum p log p)``, ``p = sigma / sum sigma``; 0 when sigma is all 0."""
    total = sigma.sum()
    p = sigma / torch.where(total > 0, total, torch.ones_like(total))
    entropy = -torch.special.xlogy(p, p).sum()
    return torch.where(total > 0, entropy.exp(), torch.zeros_like(total))


def srank(features: torch.Tensor, delta: float = SRANK_DELTA) -> torch.Tensor:
    """srank_delta of a feature matrix (N, d), as a 0-d float tensor (an integer value)."""
    return srank_from_singular_values(singular_values(features), delta)


def effective_rank(features: torch.Tensor) -> torch.Tensor:
    """Effective rank of a feature matrix (N, d), as a 0-d tensor."""
    return effective_rank_from_singular_values(singular_values(features))


def hidden_features(net: nn.Module, inputs: Any) -> dict[str, torch.Tensor]:
    """Each hidden activation layer's outputs on ``inputs``: name → (N, width), forward order.

    The forward is ``net(*inputs)`` if ``inputs`` is a tuple, else ``net(inputs)``, without
    gradient and in eval mode (modes restored)."""
    return probe(net, inputs=inputs, keep_features=True).features


def penultimate_features(net: nn.Module, inputs: Any) -> dict[str, torch.Tensor]:
    """The features each body's output layer reads: name → (N, d); see ProbeResult."""
    return probe(net, inputs=inputs, keep_features=True).penultimate


def feature_ranks(net: nn.Module, inputs: Any, delta: float = SRANK_DELTA) -> dict[str, dict[str, float]]:
    """srank and effective rank of every hidden layer's and every penultimate feature
    matrix: name → {"srank": ..., "effective_rank": ...}."""
    result = probe(net, inputs=inputs, keep_features=True)
    matrices = {**result.features, **result.penultimate}
    ranks = {}
    for name, features in matrices.items():
        sigma = singular_values(features)
        ranks[name] = {"srank": float(srank_from_singular_values(sigma, delta)),
                       "effective_rank": float(effective_rank_from_singular_values(sigma))}
    return ranks
