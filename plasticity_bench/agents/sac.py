"""Soft Actor-Critic, following CleanRL's sac_continuous_action.py update by update.

Actions live in [-1, 1] (environments rescale), so the tanh squashing needs no affine map.
The entropy coefficient follows CleanRL's rule: with ``autotune`` it starts at alpha = 1
(log alpha = 0) and is learned; without it, alpha is the fixed ``alpha`` hyperparameter.
As in CleanRL, the trainer acts uniformly at random for the first ``learning_starts`` steps.
Deviations: the delayed actor and target updates are keyed on the agent's own update
counter, not on the env step: the same schedule at replay ratio 1, defined at any other.
Evaluation acts with the policy's mean action (CleanRL's SAC has no evaluation; the SAC
paper evaluates the mean), so evaluation returns measure the learned policy, not its noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from plasticity_bench.agents.base import Agent, TrainingHooks, backward, frozen
from plasticity_bench.roles import Batch, Role
from plasticity_bench.agents.common import TwinQ, make_actor, soft_update, twin_q_loss
from plasticity_bench.networks import NetworkConfig
from plasticity_bench.optim import adam


class SAC(Agent):
    stacked_networks = ("actor", "critic", "critic_target")
    stacked_tensors = ("log_alpha",)
    stacked_optimizers = ("actor_optimizer", "critic_optimizer", "alpha_optimizer")

    def __init__(self, obs_dim: int, action_dim: int, hp: dict[str, Any], network: NetworkConfig,
                 total_steps: int, device: torch.device,
                 hooks: TrainingHooks | None = None):
        self.hp, self.device = hp, device
        self.hooks = hooks or TrainingHooks()
        self.actor = make_actor(obs_dim, action_dim, network).to(device)
        self.critic = TwinQ(obs_dim, action_dim, network).to(device)
        self.critic_target = TwinQ(obs_dim, action_dim, network).to(device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_optimizer = self.make_optimizer("actor", self.actor.parameters(), hp["policy_lr"])
        self.critic_optimizer = self.make_optimizer("critic", self.critic.parameters(), hp["q_lr"])
        self.target_entropy = -float(action_dim)
        initial_log_alpha = 0.0 if hp["autotune"] else float(np.log(hp["alpha"]))  # CleanRL's rule
        self.log_alpha = torch.tensor(initial_log_alpha, device=device, requires_grad=hp["autotune"])
        self.alpha_optimizer = adam([self.log_alpha], lr=hp["q_lr"])
        self.updates = 0
        # CleanRL's per-critic losses and values, and the policy's entropy, of the last loss
        # evaluations, which update() reports for its own step (a role's loss function can
        # return nothing else).
        self.critic_diagnostics: dict[str, torch.Tensor] = {}
        self.entropy: torch.Tensor | None = None
        self.roles = self.make_roles()

    def make_roles(self) -> dict[str, Role]:
        return {
            "actor": Role(self.actor, self.actor_optimizer, self.actor_loss, lambda b: (b.obs,)),
            "critic": Role(self.critic, self.critic_optimizer, self.critic_loss, lambda b: (b.obs, b.actions),
                           targets=(self.critic_target,)),
        }

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def critic_loss(self, critic: nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            next_action, next_log_pi = self.actor.sample(batch.next_obs, self.draw_normal)
            next_q1, next_q2 = self.critic_target(batch.next_obs, next_action)
            next_log_pi = next_log_pi.squeeze(-1)
            next_value = torch.min(next_q1, next_q2).squeeze(-1) - self.per_seed(self.alpha, next_log_pi) * next_log_pi
            # Bootstrap unless the episode truly terminated (time-limit truncation bootstraps).
            target = batch.rewards + (1 - batch.terminations) * self.hp["gamma"] * next_value
        q1, q2 = critic(batch.obs, batch.actions)
        return twin_q_loss(q1, q2, target, self.seeds is not None, self.critic_diagnostics)

    def actor_loss(self, actor: nn.Module, batch: Batch) -> torch.Tensor:
        action, log_pi = actor.sample(batch.obs, self.draw_normal)
        q1, q2 = self.critic(batch.obs, action)
        self.entropy = -self.mean(log_pi.detach())
        return self.mean(self.per_seed(self.alpha, log_pi) * log_pi - torch.min(q1, q2))

    def alpha_loss(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            _, log_pi = self.actor.sample(batch.obs, self.draw_normal)
        return self.mean(-self.per_seed(self.log_alpha.exp(), log_pi) * (log_pi + self.target_entropy))

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        policy_due, target_due = self.update_branches(self.updates)
        critic_loss = self.training_loss("critic", self.critic, batch)  # the methods' seam: their terms
        self.critic_optimizer.zero_grad()
        backward(critic_loss)
        self.critic_optimizer.step()
        stats = {"critic_loss": critic_loss.detach(), **self.critic_diagnostics}

        # TD3-style delayed policy updates, compensated by doing `policy_frequency` of them.
        if policy_due:
            for _ in range(self.hp["policy_frequency"]):
                with frozen(self.critic):  # it only scores the actions: no weight gradients
                    actor_loss = self.training_loss("actor", self.actor, batch)
                    self.actor_optimizer.zero_grad()
                    backward(actor_loss)
                    self.actor_optimizer.step()
                stats["actor_loss"] = actor_loss.detach()
                if self.hp["autotune"]:
                    alpha_loss = self.alpha_loss(batch)
                    self.alpha_optimizer.zero_grad()
                    backward(alpha_loss)
                    self.alpha_optimizer.step()
                    stats["alpha_loss"] = alpha_loss.detach()
            stats["entropy"] = self.entropy
        stats["alpha"] = self.alpha

        if target_due:
            soft_update(self.critic_target, self.critic, self.hp["tau"])
        return stats

    def update_branches(self, update: int) -> tuple[bool, ...]:
        return update % self.hp["policy_frequency"] == 0, update % self.hp["target_network_frequency"] == 0

    @torch.no_grad()
    def act(self, obs: np.ndarray, env_step: int, rngs: list[np.random.Generator], explore: bool) -> list[np.ndarray]:
        """Exploration samples the policy with torch's generators (each seed's own on a
        stack), which checkpoints hold; evaluation takes the deterministic policy."""
        obs_t = self.policy_input(obs)
        action = self.actor.sample(obs_t, self.draw_normal)[0] if explore else self.actor.deterministic(obs_t)
        return list(self.per_seed_rows(action).cpu().numpy())

    def modules_to_save(self) -> dict[str, Any]:
        return {
            "actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
            "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer,
            "alpha_optimizer": self.alpha_optimizer,
        }

    def counters(self) -> dict[str, Any]:
        return {"updates": self.updates, "log_alpha": self.log_alpha.detach().clone()}

    def load_counters(self, counters: dict[str, Any]) -> None:
        self.updates = counters["updates"]
        with torch.no_grad():
            self.log_alpha.copy_(counters["log_alpha"])
