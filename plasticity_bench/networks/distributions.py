"""What a noise draw is and the tanh-Gaussian policy distribution, shared by the agents'
actors and the diffusion actor. Every function works on one seed's tensors ([batch, ...]) and
on stacked seeds' ([seeds, batch, ...]): they act on the last axis only."""

from __future__ import annotations

from collections.abc import Callable

import torch

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

# Draws standard normal noise of a shape: one seed's from torch's global generator (as
# torch.distributions' rsample draws), stacked seeds' from each seed's own generator.
NoiseDraw = Callable[[torch.Size], torch.Tensor]


def global_normal(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """torch.distributions' own draw (``empty(...).normal_()``), so numbers match rsample's."""
    return torch.empty(shape, dtype=like.dtype, device=like.device).normal_()


def squash_log_std(raw: torch.Tensor) -> torch.Tensor:
    """CleanRL's log-std squashing into [LOG_STD_MIN, LOG_STD_MAX]."""
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1)


def tanh_gaussian(mean: torch.Tensor, std: torch.Tensor, draw: NoiseDraw | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised tanh(N(mean, std)) action and its log-probability with the tanh
    correction, summed over the action axis (keepdim). ``draw`` gives the noise (default:
    torch's global generator)."""
    normal = torch.distributions.Normal(mean, std, validate_args=False)  # checks would sync the device
    noise = draw(mean.shape) if draw is not None else global_normal(mean.shape, mean)
    pre_tanh = mean + noise * normal.scale  # rsample's own expression
    action = torch.tanh(pre_tanh)
    log_prob = normal.log_prob(pre_tanh) - torch.log(1 - action.pow(2) + 1e-6)
    return action, log_prob.sum(-1, keepdim=True)
