"""Norms of a network: weight magnitude, drift from initialisation, gradient and feature norms.

Over "the network's parameters" means every element of ``net.parameters()`` (weights,
biases, LayerNorm gains; frozen ones too) weighted equally:

- weight magnitude ``sqrt(mean theta^2)``;
- drift ``sqrt(mean (theta - theta0)^2)``, theta0 the parameters at the start of training
  (the Trainer snapshots them once, ``snapshot_parameters``, and keeps them in its
  checkpoint). When the parameters no longer match theta0 in number or shapes (a method
  grew or replaced layers), the drift is undefined and ``weight_drift`` returns None: the
  monitor then writes no drift row rather than a number over a different parameter set;
- gradient norm ``||dL/dtheta||_2`` over the parameters that require grad, of the loss
  ``loss_fn(net, batch)``, by ``torch.autograd.grad`` (no ``.grad`` changes; eval mode);
- feature norm: mean over samples of the L2 norm of a sample's feature vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from plasticity_bench.metrics.activity import _eval_mode


def snapshot_parameters(net: nn.Module) -> list[torch.Tensor]:
    """Detached copies of ``net.parameters()``, in order (theta0 for ``weight_drift``)."""
    return [p.detach().clone() for p in net.parameters()]


def _root_mean_square(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    if not tensors:
        raise ValueError("the network has no parameters")
    total = sum(t.float().pow(2).sum() for t in tensors)
    count = sum(t.numel() for t in tensors)
    return (total / count).sqrt()


def weight_magnitude(net: nn.Module) -> torch.Tensor:
    """0-d tensor ``sqrt(mean theta^2)`` over all parameter elements of ``net``."""
    return _root_mean_square([p.detach() for p in net.parameters()])


def parameters_match(net: nn.Module, initial: Sequence[torch.Tensor]) -> bool:
    """True when ``initial`` has one tensor of the same shape per parameter of ``net``."""
    params = list(net.parameters())
    return len(params) == len(initial) and all(p.shape == q.shape for p, q in zip(params, initial))


def weight_drift(net: nn.Module, initial: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """0-d tensor ``sqrt(mean (theta - theta0)^2)``; None when the shapes no longer match."""
    if not parameters_match(net, initial):
        return None
    return _root_mean_square([p.detach() - q.detach().to(p.device) for p, q in zip(net.parameters(), initial)])


def gradient_norm_of(gradients: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """0-d tensor: L2 norm of the concatenated gradients (None counts as zeros)."""
    present = [g.float() for g in gradients if g is not None]
    if not present:
        return torch.zeros(())
    return torch.stack([g.pow(2).sum() for g in present]).sum().sqrt()


def grad_norm(net: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batch: Any) -> torch.Tensor:
    """0-d tensor ``||dL/dtheta||_2`` over the parameters of ``net`` that require grad."""
    params = [p for p in net.parameters() if p.requires_grad]
    with _eval_mode(net), torch.enable_grad():
        loss = loss_fn(net, batch)
        if not params or not loss.requires_grad:
            return torch.zeros(())
        gradients = torch.autograd.grad(loss.reshape(()), params, allow_unused=True)
    return gradient_norm_of(gradients)


def feature_norm(features: torch.Tensor) -> torch.Tensor:
    """0-d tensor: mean over the N rows of ``features`` (N, d) of each row's L2 norm."""
    if features.dim() == 1:
        features = features.unsqueeze(0)
    return features.detach().float().reshape(features.shape[0], -1).norm(dim=1).mean()
