"""Curvature: the top Hessian eigenvalue of a loss w.r.t. a network's parameters.

Lyle et al. (2023) find curvature, unlike norms or ranks, tracks plasticity loss. The
estimate is power iteration on Hessian-vector products: ``Hv = d(g . v)/dtheta`` with
``g = dL/dtheta`` built with ``create_graph=True`` (double backward), so the Hessian is
never formed. Power iteration converges to the eigenvalue of largest MAGNITUDE; the value
returned is its Rayleigh quotient ``v . Hv`` and keeps its sign (a saddle's dominant
negative curvature reads negative). Convergence is geometric in |lambda_2 / lambda_1|;
iteration stops after ``iterations`` HVPs or once the estimate changes by at most
``tolerance`` (relative) between two iterations.

Cost: one forward + one backward with graph, then per iteration one double backward
(about 2-3 backward passes each), so ~20 iterations cost tens of training updates; the
monitor therefore runs it only with ``monitor_hessian`` (off by default). Measured by
bench/monitor_cost.py (CPU, 1 thread, shared 2-core machine, 2026-11-27): SAC critic
256x256 on a 256 batch 0.27 s per call (tolerance 1e-3) to 0.31 s (all 20 HVPs), i.e.
~9-10 SAC updates; the SAC actor 0.15-0.29 s (5-9 updates); the DQN CartPole q-network
14-23 ms (9-24 updates). At monitor_every_updates=1000 that is under 1% (2.4% for DQN worst case)
of update time per role; the default metric set costs ~2.5 (SAC) / ~4 (DQN) updates a call.

Side effects: none on parameters, ``.grad`` or train/eval modes (eval mode during the
call); the start vector comes from a private generator seeded by ``seed``, so the global
torch RNG is touched only by whatever ``loss_fn`` itself draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from plasticity_bench.metrics.activity import _eval_mode


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([(x * y).sum() for x, y in zip(a, b)]).sum()


def hessian_top_eigenvalue(
    net: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    batch: Any,
    iterations: int = 20,
    tolerance: float = 1e-3,
    seed: int = 0,
) -> torch.Tensor:
    """0-d tensor: dominant eigenvalue of d^2 L / d theta^2, theta = params of ``net`` that
    require grad, L = ``loss_fn(net, batch)``; 0 when L has no curvature in theta."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    params = [p for p in net.parameters() if p.requires_grad]
    with _eval_mode(net), torch.enable_grad():
        loss = loss_fn(net, batch)
        if not params or not loss.requires_grad:
            return torch.zeros(())
        grads = torch.autograd.grad(loss.reshape(()), params, create_graph=True, allow_unused=True)
        # Parameters whose gradient is constant (or absent) have zero Hessian rows and columns.
        pairs = [(p, g) for p, g in zip(params, grads) if g is not None and g.requires_grad]
        if not pairs:
            return torch.zeros((), device=loss.device)
        used_params, used_grads = [p for p, _ in pairs], [g for _, g in pairs]
        generator = torch.Generator().manual_seed(seed)
        vector = [torch.randn(p.shape, generator=generator).to(p) for p in used_params]
        norm = _dot(vector, vector).sqrt()
        vector = [v / norm for v in vector]
        estimate = torch.zeros((), device=loss.device)
        for iteration in range(iterations):
            product = torch.autograd.grad(used_grads, used_params, grad_outputs=vector, retain_graph=True,
                                          allow_unused=True)
            product = [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(used_params, product)]
            previous, estimate = estimate, _dot(vector, product)
            norm = _dot(product, product).sqrt()
            if float(norm) == 0.0:  # v is in the Hessian's null space: nothing curves
                return torch.zeros((), device=loss.device)
            vector = [h / norm for h in product]
            if iteration > 0 and float((estimate - previous).abs()) <= tolerance * float(estimate.abs()):
                break
    return estimate.detach()
