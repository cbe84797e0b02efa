"""The plasticity probe of Lyle et al. (2023): how well a fixed optimiser budget fits new
targets, starting from a network's current parameters.

Recipe (PAPERS.md section 3). A copy of the network is fitted for ``steps`` Adam steps to
fresh random targets ``g(x) = a + sin(1e5 * f(x; w0))`` on inputs from the replay buffer,
where ``w0`` is a fresh initialisation of the same architecture and ``a`` the current
network's mean output over those inputs; the final loss is the metric (lower = more
plastic), and the copy is discarded. ``sin(1e5 * .)`` turns the random network's output
into a pseudo-random, high-frequency function of the input: fitting it takes the features
to change, which is what a network that lost plasticity cannot do. Shifting by ``a`` keeps
the task about the function's shape, not about moving the output's mean.

Choices of this implementation, and why:

- Targets have the network's own output shape (its output tensors flattened and joined:
  SAC's actor gives [mean, log_std], a twin critic [q1, q2], DQN one column per action),
  not Lyle's 10 targets. A 10-dim head would have to replace each architecture's output
  layer (one per body of a twin critic, inside a diffusion actor's denoiser), i.e. probe a
  different network than the one trained; the network's own outputs need no surgery and
  work for every role of every agent and architecture. ``f(x; w0)`` is computed by the same
  architecture, so it always has this shape.
- The probe set is ``batch_size`` replay inputs, fitted full-batch: every step sees the
  same inputs, so the final loss is that of the fitted set (trainability, Lyle's measure),
  and a network whose forward draws noise (the diffusion actor's chain) is a fixed function
  under the probe: each forward runs with the global generator seeded to ``noise_seed``, so
  the chain noise of input i is the same at every step (as the actor's ``deterministic``
  evaluates with a fixed noise realisation).
- The optimiser is a fresh Adam, whatever the role trains with: the probe compares the
  parameters' plasticity under one fixed learner, not the methods' optimisers.

It must not change training. Everything random (the replay indices, ``w0``'s
initialisation, the chain noise) comes from generators seeded by ``seed``; the global torch
generator, which nn.Module initialisers and the diffusion chain use, is forked and restored
(``torch.random.fork_rng``); the live network, its optimizer and the replay buffer are only
read (replay indices come from ``ReplayBuffer.sample`` with the probe's own generator).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.agents.base import Role
from plasticity_bench.methods.recycling import fresh_copy
from plasticity_bench.optim import adam
from plasticity_bench.replay import ReplayBuffer

TARGET_FREQUENCY = 1e5  # Lyle et al.'s sin(1e5 * f): a high-frequency function of the input
PROBE_METRIC = "plasticity_probe"


def flat_output(output: torch.Tensor | Sequence[torch.Tensor], batch: int) -> torch.Tensor:
    """A forward's output as one (batch, k) matrix: tensors flattened per sample and joined
    (a twin critic's (q1, q2) becomes two columns)."""
    if isinstance(output, torch.Tensor):
        return output.reshape(batch, -1)
    return torch.cat([flat_output(part, batch) for part in output], dim=1)


def global_generator(device: torch.device) -> torch.Generator:
    """The generator that random ops on ``device`` draw from without an explicit one."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


def _forward(network: nn.Module, inputs: tuple[torch.Tensor, ...], noise_seed: int) -> torch.Tensor:
    # A fixed noise realisation for a forward that draws any (the seeding costs microseconds;
    # torch.manual_seed, which also visits every other backend, costs a third of a millisecond).
    global_generator(inputs[0].device).manual_seed(int(noise_seed))
    return flat_output(network(*inputs), inputs[0].shape[0])


def probe_seeds(seed: int) -> tuple[int, int]:
    """(seed of w0's initialisation, seed of the forwards' noise) for a probe seeded ``seed``."""
    init_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(init_seed), int(noise_seed)


@torch.no_grad()
def random_targets(network: nn.Module, inputs: tuple[torch.Tensor, ...], seed: int) -> torch.Tensor:
    """``a + sin(1e5 f(inputs; w0))`` as a (batch, outputs) matrix, ``w0`` a fresh
    initialisation of ``network``'s architecture drawn from ``seed``, ``a`` the mean of
    ``network``'s outputs. Runs copies only; the global torch generator is restored."""
    init_seed, noise_seed = probe_seeds(seed)
    device = inputs[0].device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        learner = copy.deepcopy(network)  # a method's forward hooks on network must not see the probe
        current_mean = _forward(learner, inputs, noise_seed).mean(dim=0)
        torch.manual_seed(init_seed)  # nn.Module initialisers draw from the global generators
        initial = fresh_copy(learner)  # w0: every module re-drawn by its own initialiser
        return current_mean + torch.sin(TARGET_FREQUENCY * _forward(initial, inputs, noise_seed))


def fit_random_targets(network: nn.Module, inputs: tuple[torch.Tensor, ...], *, steps: int, lr: float,
                       seed: int) -> float:
    """Final loss of a copy of ``network`` fitted for ``steps`` full-batch Adam steps (learning
    rate ``lr``) to ``random_targets(network, inputs, seed)``. ``network`` is never run, only
    copied (a method's forward hooks on it must not see the probe's inputs); the global torch
    generator is restored on return."""
    targets = random_targets(network, inputs, seed)
    _, noise_seed = probe_seeds(seed)
    device = inputs[0].device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        learner = copy.deepcopy(network)
        params = [p for p in learner.parameters() if p.requires_grad]
        for param in params:
            param.grad = None  # the copy carries the live network's last gradients
        optimizer = adam(params, lr=lr)
        for _ in range(steps):
            loss = F.mse_loss(_forward(learner, inputs, noise_seed), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            final = F.mse_loss(_forward(learner, inputs, noise_seed), targets)
    return float(final)


def probe_roles(roles: dict[str, Role], replay: ReplayBuffer, *, steps: int, lr: float, batch_size: int,
                seed: int) -> list[dict]:
    """Rows ``{network, layer: "all", metric: "plasticity_probe", value}``, one per role: the
    final probe loss of each role's network on ``batch_size`` replay inputs (its
    ``forward_inputs``: the critic's (obs, action), the actor's obs) drawn with a generator
    seeded by ``seed``; each role's ``w0`` has a seed of its own, derived from ``seed``."""
    sample_seed, *role_seeds = np.random.SeedSequence(seed).generate_state(1 + len(roles))
    generator = torch.Generator(device=replay.device).manual_seed(int(sample_seed))
    batch = replay.sample(batch_size, generator=generator)
    rows = []
    for (role_name, role), role_seed in zip(roles.items(), role_seeds):
        loss = fit_random_targets(role.network, role.forward_inputs(batch), steps=steps, lr=lr, seed=int(role_seed))
        rows.append({"network": role_name, "layer": "all", "metric": PROBE_METRIC, "value": loss})
    return rows
