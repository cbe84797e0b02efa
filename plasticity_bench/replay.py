"""Uniform replay buffer on preallocated tensors; sampling is one randint and an index."""

from __future__ import annotations

import numpy as np
import torch

from plasticity_bench.roles import Batch


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], action_shape: tuple[int, ...],
                 discrete: bool, device: torch.device | str = "cpu"):
        self.capacity = capacity
        self.device = torch.device(device)
        action_dtype = torch.long if discrete else torch.float32
        self.obs = torch.zeros((capacity, *obs_shape), dtype=torch.float32, device=self.device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros((capacity, *action_shape), dtype=action_dtype, device=self.device)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.terminations = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.position = 0  # next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        """Store one transition. ``next_obs`` must be the true next observation, also when the
        episode was truncated, so that the TD target can bootstrap from it."""
        i = self.position
        if self.device.type == "cpu":  # numpy views of the storage: no tensor per field and step
            self.obs.numpy()[i] = obs
            self.next_obs.numpy()[i] = next_obs
            self.actions.numpy()[i] = action
            self.rewards.numpy()[i] = reward
            self.terminations.numpy()[i] = terminated
        else:
            self.obs[i] = torch.as_tensor(obs)
            self.next_obs[i] = torch.as_tensor(next_obs)
            self.actions[i] = torch.as_tensor(action)
            self.rewards[i] = float(reward)
            self.terminations[i] = float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        index = torch.randint(0, self.size, (batch_size,), device=self.device, generator=generator)
        return Batch(self.obs[index], self.actions[index], self.rewards[index], self.next_obs[index], self.terminations[index])

    def state_dict(self) -> dict:
        # Only the filled part is saved: a 1M-slot buffer early in training costs nothing.
        filled = slice(0, self.size)
        return {
            "position": self.position,
            "size": self.size,
            "obs": self.obs[filled].clone(),
            "next_obs": self.next_obs[filled].clone(),
            "actions": self.actions[filled].clone(),
            "rewards": self.rewards[filled].clone(),
            "terminations": self.terminations[filled].clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        size = state["size"]
        for name in ("obs", "next_obs", "actions", "rewards", "terminations"):
            getattr(self, name)[:size] = state[name].to(self.device)
        self.position, self.size = state["position"], size
