"""plasticity-bench: a reproducibility benchmark suite for plasticity loss in deep RL."""

__version__ = "0.1.0"
