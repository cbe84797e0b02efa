"""Deep Q-Network, following CleanRL's dqn.py (MSE TD loss, hard target updates, linear ε).

Exploration is ε-greedy from the first env step on CleanRL's linear schedule, with no
uniform-random phase before ``learning_starts``. Evaluation is ε-greedy with a small
``eval_epsilon`` (CleanRL's evaluate uses 0.05): a greedy policy can lock into a loop
(Acrobot) and the score would then measure that loop rather than the learned values.

Updates run at ``replay_ratio`` per env step (CleanRL's train_frequency 10 is 0.1) and the
target period, given in env steps as in CleanRL, is converted to updates by the spec
(spec.agent_hyperparams): the same schedule at CleanRL's settings, and one that stays
defined at any other ratio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.agents.base import Agent, TrainingHooks, backward
from plasticity_bench.roles import Batch, Role
from plasticity_bench.agents.common import soft_update
from plasticity_bench.networks import NetworkConfig, build_body


def linear_schedule(start: float, end: float, duration: float, t: int) -> float:
    slope = (end - start) / max(duration, 1.0)
    return max(slope * t + start, end)


class DQN(Agent):
    random_warmup = False  # ε starts at start_e (1.0), so warm-up is ε-greedy as in CleanRL
    stacked_networks = ("q_network", "target_network")
    stacked_optimizers = ("optimizer",)

    def __init__(self, obs_dim: int, num_actions: int, hp: dict[str, Any], network: NetworkConfig,
                 total_steps: int, device: torch.device,
                 hooks: TrainingHooks | None = None):
        self.hp, self.device = hp, device
        self.hooks = hooks or TrainingHooks()
        self.num_actions = num_actions
        self.total_steps = total_steps
        self.q_network = build_body(network, obs_dim, num_actions).to(device)
        self.target_network = build_body(network, obs_dim, num_actions).to(device)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.optimizer = self.make_optimizer("q", self.q_network.parameters(), hp["learning_rate"])
        self.target_period = hp["target_period_updates"]  # resolved from env steps in spec.agent_hyperparams
        self.updates = 0
        self.roles = self.make_roles()
        # CleanRL's td_loss and q_values of the last loss evaluation, which update() reports
        # for its own step (the loss function is the role's, so it cannot return more).
        self.diagnostics: dict[str, torch.Tensor] = {}

    def make_roles(self) -> dict[str, Role]:
        return {"q": Role(self.q_network, self.optimizer, self.q_loss, lambda b: (b.obs,), targets=(self.target_network,))}

    def q_loss(self, q_network: nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            target_max = self.target_network(batch.next_obs).max(dim=-1).values
            td_target = batch.rewards + self.hp["gamma"] * target_max * (1 - batch.terminations)
        old_value = q_network(batch.obs).gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        loss = self.mean(F.mse_loss(td_target, old_value, reduction="none"))
        self.diagnostics = {"td_loss": loss.detach(), "q_values": self.mean(old_value.detach())}
        return loss

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        (target_due,) = self.update_branches(self.updates)
        loss = self.training_loss("q", self.q_network, batch)  # the methods' seam: their terms
        self.optimizer.zero_grad()
        backward(loss)
        self.optimizer.step()
        if target_due:
            soft_update(self.target_network, self.q_network, self.hp["tau"])
        return {"q_loss": loss.detach(), **self.diagnostics}

    def update_branches(self, update: int) -> tuple[bool, ...]:
        return (update % self.target_period == 0,)

    def epsilon(self, env_step: int) -> float:
        duration = self.hp["exploration_fraction"] * self.total_steps
        return linear_schedule(self.hp["start_e"], self.hp["end_e"], duration, env_step)

    @torch.no_grad()
    def act(self, obs: np.ndarray, env_step: int, rngs: list[np.random.Generator], explore: bool) -> list[int]:
        """ε-greedy: each seed's ε draws from its generator, the greedy actions from one
        forward pass, made only when some seed acts greedily."""
        epsilon = self.epsilon(env_step) if explore else self.hp["eval_epsilon"]
        actions = [int(rng.integers(self.num_actions)) if rng.random() < epsilon else None for rng in rngs]
        if any(action is None for action in actions):
            greedy = self.per_seed_rows(self.q_network(self.policy_input(obs)).argmax(dim=-1)).tolist()
            actions = [choice if action is None else action for action, choice in zip(actions, greedy)]
        return actions

    def modules_to_save(self) -> dict[str, Any]:
        return {"q_network": self.q_network, "target_network": self.target_network, "optimizer": self.optimizer}

    def counters(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_counters(self, counters: dict[str, Any]) -> None:
        self.updates = counters["updates"]
