"""Parts the agents share: the tanh-Gaussian actor, twin Q critics, their loss and Polyak
averaging (the distribution itself is networks/distributions.py). Every function here works on one seed's tensors
([batch, ...]) and on stacked seeds ([seeds, batch, ...]): they act on the last axis only."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.networks import NetworkConfig, build_body
from plasticity_bench.networks.distributions import NoiseDraw, squash_log_std, tanh_gaussian

class GaussianActor(nn.Module):
    """Tanh-squashed Gaussian policy; one trunk whose output layer holds mean and log-std."""

    def __init__(self, obs_dim: int, action_dim: int, config: NetworkConfig):
        super().__init__()
        self.trunk = build_body(config, obs_dim, 2 * action_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.trunk(obs).chunk(2, dim=-1)
        return mean, squash_log_std(log_std)

    def sample(self, obs: torch.Tensor, draw: NoiseDraw | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self(obs)
        return tanh_gaussian(mean, log_std.exp(), draw)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


class DeterministicActor(nn.Module):
    """TD3's a = tanh(body(s)); the tanh is a function, not a module, because it is the
    output layer's squashing and must not be scored as a layer of hidden neurons."""

    def __init__(self, obs_dim: int, action_dim: int, config: NetworkConfig):
        super().__init__()
        self.trunk = build_body(config, obs_dim, action_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.trunk(obs))


def make_actor(obs_dim: int, action_dim: int, config: NetworkConfig, deterministic: bool = False) -> nn.Module:
    """The policy network for ``config.arch``: the diffusion actor (both agents), else SAC's
    Gaussian actor or, with ``deterministic``, TD3's. Actors use ``config.for_actor()``."""
    if config.arch == "diffusion":
        from plasticity_bench.networks.diffusion import DiffusionActor  # diffusers loads with it

        return DiffusionActor(obs_dim, action_dim, config)
    config = config.for_actor()
    return (DeterministicActor if deterministic else GaussianActor)(obs_dim, action_dim, config)


class TwinQ(nn.Module):
    """Two independent Q(s, a) networks trained on the same target (clipped double Q)."""

    def __init__(self, obs_dim: int, action_dim: int, config: NetworkConfig):
        super().__init__()
        self.q1 = build_body(config, obs_dim + action_dim, 1)
        self.q2 = build_body(config, obs_dim + action_dim, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x), self.q2(x)


def batch_mean(x: torch.Tensor, seeds: bool) -> torch.Tensor:
    """The mean over a batch: of everything for one seed, per seed for stacked seeds ([S])."""
    return x.flatten(1).mean(1) if seeds else x.mean()


def twin_q_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor, seeds: bool,
                diagnostics: dict[str, torch.Tensor]) -> torch.Tensor:
    """The clipped-double-Q critics' loss, MSE(q1) + MSE(q2); puts CleanRL's qf1_loss,
    qf2_loss, qf_loss (their mean), qf1_values and qf2_values into ``diagnostics``."""
    qf1_loss = batch_mean(F.mse_loss(q1.squeeze(-1), target, reduction="none"), seeds)
    qf2_loss = batch_mean(F.mse_loss(q2.squeeze(-1), target, reduction="none"), seeds)
    loss = qf1_loss + qf2_loss
    diagnostics.update(qf1_loss=qf1_loss.detach(), qf2_loss=qf2_loss.detach(), qf_loss=loss.detach() / 2,
                       qf1_values=batch_mean(q1.detach(), seeds), qf2_values=batch_mean(q2.detach(), seeds))
    return loss


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging target ← tau·source + (1 − tau)·target (tau = 1 copies)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)
