"""Training: ``train`` one run, ``train_seeds`` several seeds of one cell (entry.py says how
the package is laid out)."""

from plasticity_bench.training.entry import train, train_seeds

__all__ = ["train", "train_seeds"]
