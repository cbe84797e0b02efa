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
import torch.nn.functional as F
from torch import nn

from plasticity_bench.agents.base import Agent, Batch, Role, TrainingHooks
from plasticity_bench.networks import NetworkConfig, build_body
from plasticity_bench.networks.diffusion import DiffusionActor  # diffusers itself loads lazily

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class GaussianActor(nn.Module):
    """Tanh-squashed Gaussian policy; one trunk whose output layer holds mean and log-std."""

    def __init__(self, obs_dim: int, action_dim: int, config: NetworkConfig):
        super().__init__()
        self.trunk = build_body(config, obs_dim, 2 * action_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.trunk(obs).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)
        return mean, log_std

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action and its log-probability (with the tanh correction)."""
        mean, log_std = self(obs)
        normal = torch.distributions.Normal(mean, log_std.exp())
        pre_tanh = normal.rsample()
        action = torch.tanh(pre_tanh)
        log_prob = normal.log_prob(pre_tanh) - torch.log(1 - action.pow(2) + 1e-6)
        return action, log_prob.sum(-1, keepdim=True)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


def make_actor(obs_dim: int, action_dim: int, config: NetworkConfig) -> nn.Module:
    """SAC's policy for ``config.arch``: a module with ``sample`` and ``deterministic``."""
    if config.arch == "diffusion":
        return DiffusionActor(obs_dim, action_dim, config)
    config = config.for_actor()
    return GaussianActor(obs_dim, action_dim, config)


class TwinQ(nn.Module):
    """Two independent Q(s, a) networks trained on the same target (clipped double Q)."""

    def __init__(self, obs_dim: int, action_dim: int, config: NetworkConfig):
        super().__init__()
        self.q1 = build_body(config, obs_dim + action_dim, 1)
        self.q2 = build_body(config, obs_dim + action_dim, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x), self.q2(x)


class SAC(Agent):
    def __init__(self, obs_dim: int, action_dim: int, hp: dict[str, Any], network: NetworkConfig,
                 total_steps: int, rng: np.random.Generator, device: torch.device,
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
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=hp["q_lr"])
        self.updates = 0
        # CleanRL's per-critic losses and values, and the policy's entropy, of the last loss
        # evaluations, which update() reports for its own step (a role's loss function can
        # return nothing else).
        self.critic_diagnostics: dict[str, torch.Tensor] = {}
        self.entropy: torch.Tensor | None = None
        self.roles = {
            "actor": Role(self.actor, self.actor_optimizer, self.actor_loss, lambda b: (b.obs,)),
            "critic": Role(self.critic, self.critic_optimizer, self.critic_loss, lambda b: (b.obs, b.actions),
                           targets=(self.critic_target,)),
        }

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def critic_loss(self, critic: nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            next_action, next_log_pi = self.actor.sample(batch.next_obs)
            next_q1, next_q2 = self.critic_target(batch.next_obs, next_action)
            next_value = torch.min(next_q1, next_q2).squeeze(-1) - self.alpha * next_log_pi.squeeze(-1)
            # Bootstrap unless the episode truly terminated (time-limit truncation bootstraps).
            target = batch.rewards + (1 - batch.terminations) * self.hp["gamma"] * next_value
        q1, q2 = critic(batch.obs, batch.actions)
        return twin_q_loss(q1, q2, target, self.critic_diagnostics)

    def actor_loss(self, actor: nn.Module, batch: Batch) -> torch.Tensor:
        action, log_pi = actor.sample(batch.obs)
        q1, q2 = self.critic(batch.obs, action)
        self.entropy = -log_pi.detach().mean()
        return (self.alpha * log_pi - torch.min(q1, q2)).mean()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        stats = {"critic_loss": self.gradient_step("critic", batch), **self.critic_diagnostics}

        # TD3-style delayed policy updates, compensated by doing `policy_frequency` of them.
        if self.updates % self.hp["policy_frequency"] == 0:
            for _ in range(self.hp["policy_frequency"]):
                stats["actor_loss"] = self.gradient_step("actor", batch, frozen=self.critic)
                if self.hp["autotune"]:
                    with torch.no_grad():
                        _, log_pi = self.actor.sample(batch.obs)
                    alpha_loss = (-self.log_alpha.exp() * (log_pi + self.target_entropy)).mean()
                    self.alpha_optimizer.zero_grad()
                    alpha_loss.backward()
                    self.alpha_optimizer.step()
                    stats["alpha_loss"] = alpha_loss.detach()
            stats["entropy"] = self.entropy
        stats["alpha"] = self.alpha

        if self.updates % self.hp["target_network_frequency"] == 0:
            soft_update(self.critic_target, self.critic, self.hp["tau"])
        return stats

    @torch.no_grad()
    def act(self, obs: np.ndarray, env_step: int, explore: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        # Exploration samples from the policy with torch's generator, which checkpoints hold.
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        action = self.actor.sample(obs_t)[0] if explore else self.actor.deterministic(obs_t)
        return action.squeeze(0).cpu().numpy()

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


def twin_q_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor,
                diagnostics: dict[str, torch.Tensor]) -> torch.Tensor:
    """The clipped-double-Q critics' loss, MSE(q1) + MSE(q2); puts CleanRL's qf1_loss,
    qf2_loss, qf_loss (their mean), qf1_values and qf2_values into ``diagnostics``."""
    qf1_loss, qf2_loss = F.mse_loss(q1.squeeze(-1), target), F.mse_loss(q2.squeeze(-1), target)
    loss = qf1_loss + qf2_loss
    diagnostics.update(qf1_loss=qf1_loss.detach(), qf2_loss=qf2_loss.detach(), qf_loss=loss.detach() / 2,
                       qf1_values=q1.detach().mean(), qf2_values=q2.detach().mean())
    return loss


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging target ← tau·source + (1 − tau)·target (tau = 1 copies)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)
