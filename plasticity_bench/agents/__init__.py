"""Agents: SAC, TD3 and DQN (CleanRL-faithful updates), each naming its networks by role
(plasticity_bench/roles.py)."""

from plasticity_bench.agents.base import Agent

__all__ = ["Agent"]
