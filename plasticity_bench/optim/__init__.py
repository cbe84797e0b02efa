"""Optimizers that plasticity methods train with (beyond torch's own)."""

from plasticity_bench.optim.trac import TRACAdam

__all__ = ["TRACAdam"]
