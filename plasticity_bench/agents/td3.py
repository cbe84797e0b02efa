"""Twin Delayed DDPG, following CleanRL's td3_continuous_action.py update by update.

Actions live in [-1, 1] (environments rescale), so CleanRL's action_scale is 1 and its
action_bias 0. As in CleanRL, the trainer acts uniformly at random for the first
``learning_starts`` steps, time-limit truncation bootstraps, and one Adam optimizer
holds both critics. Measured against CleanRL's script on InvertedDoublePendulum-v5
(20k steps, learning_starts 5000, seeds 1-5) with the same measures, the returns agree
within the spread between seeds: mean training return over the last 2.5k steps 1288 here
vs 1107, deterministic evaluation at 20k 2616 vs 2593 (per seed 733-2072, 1017-6735).

Deviations: CleanRL keys the delayed actor and target updates on the env step (one
update per step); here they are keyed on the agent's own update counter, the same
schedule at replay ratio 1 and the right one at any other ratio. Evaluation acts with
the deterministic policy, as the TD3 paper evaluates; CleanRL's td3_eval adds the
exploration noise, which would make evaluation returns measure the noise too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from plasticity_bench.agents.base import Agent, TrainingHooks, backward, frozen
from plasticity_bench.roles import Batch, Role
from plasticity_bench.agents.common import TwinQ, make_actor, soft_update, twin_q_loss
from plasticity_bench.networks.distributions import global_normal
from plasticity_bench.networks import NetworkConfig


class TD3(Agent):
    stacked_networks = ("actor", "actor_target", "critic", "critic_target")
    stacked_optimizers = ("actor_optimizer", "critic_optimizer")
    def __init__(self, obs_dim: int, action_dim: int, hp: dict[str, Any], network: NetworkConfig,
                 total_steps: int, device: torch.device,
                 hooks: TrainingHooks | None = None):
        self.hp, self.device = hp, device
        self.hooks = hooks or TrainingHooks()
        self.action_dim = action_dim
        self.actor = make_actor(obs_dim, action_dim, network, deterministic=True).to(device)
        self.actor_target = make_actor(obs_dim, action_dim, network, deterministic=True).to(device)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic = TwinQ(obs_dim, action_dim, network).to(device)
        self.critic_target = TwinQ(obs_dim, action_dim, network).to(device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_optimizer = self.make_optimizer("actor", self.actor.parameters(), hp["learning_rate"])
        # One optimizer over both Q networks, as CleanRL's q_optimizer.
        self.critic_optimizer = self.make_optimizer("critic", self.critic.parameters(), hp["learning_rate"])
        self.updates = 0
        # CleanRL's per-critic losses and values of the last critic loss, which update() reports.
        self.critic_diagnostics: dict[str, torch.Tensor] = {}
        self.roles = self.make_roles()

    def make_roles(self) -> dict[str, Role]:
        return {
            "actor": Role(self.actor, self.actor_optimizer, self.actor_loss, lambda b: (b.obs,),
                          targets=(self.actor_target,)),
            "critic": Role(self.critic, self.critic_optimizer, self.critic_loss, lambda b: (b.obs, b.actions),
                           targets=(self.critic_target,)),
        }

    def critic_loss(self, critic: nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            # Target policy smoothing: clipped Gaussian noise on the target actor's action.
            noise = self.draw_normal(batch.actions.shape) if self.draw_normal else global_normal(batch.actions.shape, batch.actions)
            clipped_noise = (noise * self.hp["policy_noise"]).clamp(
                -self.hp["noise_clip"], self.hp["noise_clip"]
            )
            next_actions = (self.actor_target(batch.next_obs) + clipped_noise).clamp(-1.0, 1.0)
            next_q1, next_q2 = self.critic_target(batch.next_obs, next_actions)
            min_next_q = torch.min(next_q1, next_q2).squeeze(-1)
            # Bootstrap unless the episode truly terminated (time-limit truncation bootstraps).
            target = batch.rewards + (1 - batch.terminations) * self.hp["gamma"] * min_next_q
        q1, q2 = critic(batch.obs, batch.actions)
        return twin_q_loss(q1, q2, target, self.seeds is not None, self.critic_diagnostics)

    def actor_loss(self, actor: nn.Module, batch: Batch) -> torch.Tensor:
        q1, _ = self.critic(batch.obs, actor(batch.obs))
        return -self.mean(q1)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        (policy_due,) = self.update_branches(self.updates)
        critic_loss = self.training_loss("critic", self.critic, batch)  # the methods' seam: their terms
        self.critic_optimizer.zero_grad()
        backward(critic_loss)
        self.critic_optimizer.step()
        stats = {"critic_loss": critic_loss.detach(), **self.critic_diagnostics}

        # Delayed policy updates: the actor and all targets move every policy_frequency updates.
        if policy_due:
            with frozen(self.critic):  # it only scores the actions: no weight gradients
                actor_loss = self.training_loss("actor", self.actor, batch)
                self.actor_optimizer.zero_grad()
                backward(actor_loss)
                self.actor_optimizer.step()
            stats["actor_loss"] = actor_loss.detach()
            soft_update(self.actor_target, self.actor, self.hp["tau"])
            soft_update(self.critic_target, self.critic, self.hp["tau"])
        return stats

    def update_branches(self, update: int) -> tuple[bool, ...]:
        return (update % self.hp["policy_frequency"] == 0,)

    @torch.no_grad()
    def act(self, obs: np.ndarray, env_step: int, rngs: list[np.random.Generator], explore: bool) -> list[np.ndarray]:
        """The actor's actions, one forward pass; when exploring, each seed's Gaussian noise
        from its numpy generator, on the host (a CUDA generator would not be checkpointed).
        A stochastic actor (the diffusion policy) evaluates with its ``deterministic`` policy."""
        policy = self.actor if explore else getattr(self.actor, "deterministic", self.actor)
        actions = self.per_seed_rows(policy(self.policy_input(obs))).cpu().numpy()
        if not explore:
            return list(actions)
        return [np.clip(action + rng.normal(0.0, self.hp["exploration_noise"], size=action.shape), -1.0, 1.0)
                .astype(np.float32) for action, rng in zip(actions, rngs)]

    def modules_to_save(self) -> dict[str, Any]:
        return {
            "actor": self.actor, "actor_target": self.actor_target,
            "critic": self.critic, "critic_target": self.critic_target,
            "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer,
        }

    def counters(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_counters(self, counters: dict[str, Any]) -> None:
        self.updates = counters["updates"]
