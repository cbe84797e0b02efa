"""Diffusion policy actor: an action is K reverse-diffusion steps of a state-conditioned
denoiser, trained online through the chain by the critic (DACER, Wang et al. 2024;
Diffusion-QL, Wang et al. 2023), usable by SAC and TD3.

Chain. ``x_K ~ N(0, I)``; for each of the scheduler's K timesteps t (K-1, ..., 0) the
denoiser predicts the noise ``eps(x_t, s, t)`` and diffusers' ``DDPMScheduler.step`` gives
``x_{t-1}``: the DDPM posterior mean of the clipped predicted ``x_0`` plus, for t > 0,
``sqrt(posterior variance) * z``. Schedule and step are diffusers' own, never re-written
here. The train schedule has exactly K timesteps (``num_train_timesteps = K`` and
``set_timesteps(K)``, so the chain visits every timestep): there is no separate denoising
training on a longer schedule to stay compatible with, as the denoiser learns only from
the critic. The default beta schedule is diffusers' cosine ("squaredcos_cap_v2"): with K = 5
its cumulative alpha falls to ~1e-4, so x_K ~ N(0, I) is consistent with it, while the
DDPM "linear" schedule with 5 steps would leave ~95% of the signal at t = K.

Action bounds. The chain runs in pre-tanh space: the scheduler's ``clip_sample`` clamps each
predicted x_0 to ``[-PRE_TANH_RANGE, PRE_TANH_RANGE]`` (DACER and Diffusion-QL clamp the same
way, in action units, for a stable chain), and the action is ``tanh`` of the result, so it
lies in (-1, 1) with the bounded chain reaching +-tanh(3) = +-0.995. The last step (t = 0)
adds no noise and returns the clamped x_0 itself. As in DACER, an untrained denoiser (noise
prediction ~0) turns the amplified x_t / sqrt(alpha_bar_t) into widely spread, partly clamped
x_0: initial actions lean towards +-1, and clamped entries pass no gradient until the
denoiser learns to predict noise that keeps x_0 inside the range.

Randomness. The initial noise, the scheduler's variance noise (``step(..., generator=None)``
draws with ``torch.randn`` from torch's global generator) and SAC's Gaussian noise below all
come from torch's global RNG (of the actor's device), which the trainer checkpoints; the
only other generator is the fixed-seed one of ``deterministic`` (below), re-created on
every call, so no state is lost.

Roles.
- ``forward(obs)`` (TD3's deterministic-policy role, before TD3's exploration noise):
  ``tanh(chain(obs))`` with fresh chain noise: the diffusion policy's own sample.
- ``deterministic(obs)`` (evaluation, by SAC and TD3): the same sampler with a fixed noise
  realisation (a generator seeded with ``EVAL_NOISE_SEED`` on each call), as DACER evaluates
  with its sampler under a key derived from data. It is a deterministic function of the
  state and draws nothing from the global RNG, so evaluation leaves training's random
  stream alone. The alternative, the chain from zero noise without variance noise, is
  not a sample of the sampler the critic trained (and ``step`` always adds its noise).
- ``sample(obs) -> (action, log_prob)`` (SAC). Entropy: a diffusion policy's log-density is
  intractable. DACER estimates its entropy with a Gaussian mixture fitted to sampled
  actions and only uses it to adapt the noise scale. Here the policy ends in a Gaussian
  layer with a learnable, state-independent standard deviation sigma:
  ``u = chain(obs) + sigma * eps``, ``a = tanh(u)``, and ``log_prob`` is the density of ``a``
  given the chain's output (Normal(u; chain, sigma) with the tanh correction, as SAC's
  Gaussian actor). Its expectation is the conditional entropy H(a | chain noise) <= H(a),
  a lower bound on the policy's entropy: SAC's entropy bonus and alpha auto-tuning act on
  that bound, through sigma (the chain's own spread is not credited). sigma is
  parameterised like SAC's log-std, squashed into [LOG_STD_MIN, LOG_STD_MAX].

Plasticity metrics. The denoiser is an MLP whose activations are modules, so
``neuron_layers(actor)`` lists ``denoiser.layers.<i>`` and the metric probes hook them. The
denoiser runs K times per action with the same neurons; the probes pool the K calls as K
extra rows per sample, so a neuron's score is its mean |h| (or |dL/dh|) over samples and
reverse steps: the natural reading for a shared layer, like positions of a conv channel,
and the one under which a neuron silent at every step is dormant.

diffusers is imported when an actor is built, not when this module is imported (the import
costs seconds, and most runs never build a diffusion actor).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from plasticity_bench.networks.distributions import NoiseDraw, squash_log_std, tanh_gaussian
from plasticity_bench.networks.config import NetworkConfig
from plasticity_bench.networks.mlp import MLP

PRE_TANH_RANGE = 3.0  # the scheduler's clip_sample_range, in pre-tanh units
TIME_EMBEDDING_DIM = 16
# DDPMScheduler's named beta schedules (spec.py validates against these without importing diffusers).
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear", "sigmoid")
EVAL_NOISE_SEED = 0


def make_scheduler(steps: int, beta_schedule: str):
    """diffusers' DDPMScheduler with ``steps`` train timesteps, all visited by the chain."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(
        num_train_timesteps=steps,
        beta_schedule=beta_schedule,
        prediction_type="epsilon",
        variance_type="fixed_small",
        clip_sample=True,
        clip_sample_range=PRE_TANH_RANGE,
    )
    scheduler.set_timesteps(steps)
    return scheduler


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int = TIME_EMBEDDING_DIM) -> torch.Tensor:
    """(K,) integer timesteps → (K, dim) [sin(t f_j), cos(t f_j)], f_j geometric from 1 to 1e-4."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
    angles = timesteps.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class DiffusionActor(nn.Module):
    """Policy whose action is the output of a K-step DDPM reverse chain (see module doc).

    ``config.denoiser_hidden_sizes`` sizes the denoiser MLP, ``config.denoiser_activation`` is
    its activation (DACER's Mish by default; LayerNorm from ``config``); ``config.diffusion_steps`` is K; ``config.beta_schedule`` names a diffusers
    beta schedule.
    """

    def __init__(self, obs_dim: int, action_dim: int, config: NetworkConfig):
        super().__init__()
        self.action_dim = action_dim
        self.steps = config.diffusion_steps
        self.scheduler = make_scheduler(config.diffusion_steps, config.beta_schedule)
        self.timesteps = [int(t) for t in self.scheduler.timesteps]
        denoiser_config = dataclasses.replace(config, arch="mlp", hidden_sizes=tuple(config.denoiser_hidden_sizes),
                                              activation=config.denoiser_activation)
        # Input: [noisy action x_t, observation, embedding of t]; output: predicted noise.
        self.denoiser = MLP(action_dim + obs_dim + TIME_EMBEDDING_DIM, action_dim, denoiser_config)
        # Not persistent: a function of the schedule, rebuilt at construction.
        self.register_buffer("time_embeddings", sinusoidal_embedding(self.scheduler.timesteps), persistent=False)
        # Raw parameter of SAC's final Gaussian layer; 0 ↦ log-std -1.5, SAC's actor at init.
        self.log_std_param = nn.Parameter(torch.zeros(action_dim))

    def chain(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pre-tanh action x_0 of the reverse chain, (B, action_dim); differentiable."""
        batch = obs.shape[0]
        x = torch.randn(batch, self.action_dim, generator=generator, device=obs.device, dtype=obs.dtype)
        x = x * self.scheduler.init_noise_sigma
        for index, t in enumerate(self.timesteps):
            embedding = self.time_embeddings[index].to(obs.dtype).expand(batch, -1)
            predicted_noise = self.denoiser(torch.cat([x, obs, embedding], dim=-1))
            x = self.scheduler.step(predicted_noise, t, x, generator=generator).prev_sample
        return x

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """A sample of the diffusion policy in (-1, 1): TD3's policy output."""
        return torch.tanh(self.chain(obs))

    def log_std(self) -> torch.Tensor:
        return squash_log_std(self.log_std_param)

    def sample(self, obs: torch.Tensor, draw: NoiseDraw | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC's reparameterised action and its log-probability given the chain, (B, 1)."""
        mean = self.chain(obs)
        return tanh_gaussian(mean, self.log_std().exp().expand_as(mean), draw)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation policy: the chain under a fixed noise realisation, no SAC noise."""
        generator = torch.Generator(device=obs.device).manual_seed(EVAL_NOISE_SEED)
        return torch.tanh(self.chain(obs, generator=generator))
