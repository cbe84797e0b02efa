"""Agents: SAC and DQN (CleanRL-faithful updates), each naming its networks by role."""

from plasticity_bench.agents.base import Agent, Batch, Role

__all__ = ["Agent", "Batch", "Role"]
