"""The plasticity probe of Lyle et al. (2023): how well a network, from its current
parameters, fits new targets with its own optimiser and a fixed budget.

Protocol (docs/metrics.md, "The plasticity probe"). For each of ``targets`` random target
functions ``g_k(x) = a + sin(1e5 * f(x; w0_k))`` (``w0_k`` a fresh initialisation of the same
architecture, ``a`` the network's current mean output over the probe inputs), a copy of the
network is fitted for ``steps`` full-batch steps on ``batch_size`` replay inputs, with an
optimiser of the type and settings the network trains with (its learning rate unless
``probe_lr`` is set). Each fit gives its loss before the first step ``L0_k``, after the last
``L_k`` and its targets' variance ``b_k`` (the loss of predicting each output's mean). A probe
reports the means over the targets: ``L``, ``L0``, ``b``, the plasticity ``P = b - L`` (Lyle
et al.'s measure: how much of the targets' variance the fit explains) and ``L / L0``. Lyle et
al. call ``P(theta_t) - P(theta_0)`` the plasticity loss, which is why every run also probes at
update 0.

Why these choices:

- 2000 steps by default (Lyle et al.'s). A short fit measures where it starts, not how well it
  learns: at 100 steps a network that memorised random labels keeps most of its initial
  loss (its logits are large), so a collapsed network with small outputs looked *more*
  plastic than a healthy one.
- Targets have the network's own output shape (its outputs flattened and joined: SAC's actor
  gives [mean, log_std], a twin critic [q1, q2]) so that the probed network is the trained one
  with no new head; ``f(x; w0)`` comes from the same architecture, so it has that shape.
- Full batch on a fixed set of replay inputs: the final loss is the loss of the fitted set
  (trainability), and a network whose forward draws noise (the diffusion actor's chain) is a
  fixed function under the probe (each forward reseeds the generator it draws from).
- The ``targets`` copies are fitted together as one stack of networks (``networks/stacked.py``,
  one batched matmul per layer) where the network stacks; otherwise, or when the stacked
  forward does not reproduce the network's own (a module that mixes axes), one by one. The
  optimisers are element-wise, so the two give the same fit up to float rounding.

The probe must not change training. Its random draws (replay indices, each ``w0_k``, chain
noise) come from generators seeded by ``seed``; the global torch generator, which
initialisers and the diffusion chain use, is forked and restored; the live network, its
optimizer and the replay buffer are only read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from plasticity_bench.roles import Role
from plasticity_bench.networks.reinit import fresh_copy
from plasticity_bench.networks.stacked import NotStackableError, stack_networks
from plasticity_bench.optim import adam
from plasticity_bench.replay import ReplayBuffer

TARGET_FREQUENCY = 1e5  # Lyle et al.'s sin(1e5 * f): a high-frequency function of the input
# Metric names of a probe's rows, each the mean over the probe's target functions.
PROBE_LOSS = "probe_loss"  # L: the loss after the fit
PROBE_INITIAL_LOSS = "probe_initial_loss"  # L0: the loss before the first step
PROBE_TARGET_VARIANCE = "probe_target_variance"  # b: the targets' variance
PLASTICITY = "plasticity"  # P = b - L, Lyle et al.'s plasticity
PROBE_LOSS_RATIO = "probe_loss_ratio"  # L / L0
PROBE_METRICS = (PROBE_LOSS, PROBE_INITIAL_LOSS, PROBE_TARGET_VARIANCE, PLASTICITY, PROBE_LOSS_RATIO)

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class ProbeFit:
    """One probe's means over its target functions."""

    loss: float
    initial_loss: float
    target_variance: float

    @property
    def plasticity(self) -> float:
        return self.target_variance - self.loss

    @property
    def loss_ratio(self) -> float:
        return self.loss / self.initial_loss if self.initial_loss > 0 else float("nan")

    def values(self) -> dict[str, float]:
        return {PROBE_LOSS: self.loss, PROBE_INITIAL_LOSS: self.initial_loss,
                PROBE_TARGET_VARIANCE: self.target_variance, PLASTICITY: self.plasticity,
                PROBE_LOSS_RATIO: self.loss_ratio}


def flat_output(output: torch.Tensor | Sequence[torch.Tensor], leading: int) -> torch.Tensor:
    """A forward's output with its first ``leading`` axes kept and the rest flattened, parts
    joined along the last axis (a twin critic's (q1, q2) becomes two columns)."""
    if isinstance(output, torch.Tensor):
        return output.reshape(*output.shape[:leading], -1)
    return torch.cat([flat_output(part, leading) for part in output], dim=-1)


def global_generator(device: torch.device) -> torch.Generator:
    """The generator that random ops on ``device`` draw from without an explicit one."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


def _forward(network: nn.Module, inputs: tuple[torch.Tensor, ...], noise_seed: int, leading: int = 1) -> torch.Tensor:
    # A fixed noise realisation for a forward that draws any (the seeding costs microseconds;
    # torch.manual_seed, which also visits every other backend, costs a third of a millisecond).
    global_generator(inputs[0].device).manual_seed(int(noise_seed))
    return flat_output(network(*inputs), leading)


def probe_seeds(seed: int) -> tuple[int, int]:
    """(seed of w0's initialisation, seed of the forwards' noise) for a target seeded ``seed``."""
    init_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(init_seed), int(noise_seed)


def _fork_rng(device: torch.device):
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


@torch.no_grad()
def random_targets(network: nn.Module, inputs: tuple[torch.Tensor, ...], seed: int) -> torch.Tensor:
    """``a + sin(1e5 f(inputs; w0))`` as a (batch, outputs) matrix, ``w0`` a fresh
    initialisation of ``network``'s architecture drawn from ``seed``, ``a`` the mean of
    ``network``'s outputs. Runs copies only; the global torch generator is restored."""
    init_seed, noise_seed = probe_seeds(seed)
    with _fork_rng(inputs[0].device):
        learner = copy.deepcopy(network)  # a method's forward hooks on network must not see the probe
        current_mean = _forward(learner, inputs, noise_seed).mean(dim=0)
        torch.manual_seed(init_seed)  # nn.Module initialisers draw from the global generators
        initial = fresh_copy(learner)  # w0: every module re-drawn by its own initialiser
        return current_mean + torch.sin(TARGET_FREQUENCY * _forward(initial, inputs, noise_seed))


def optimizer_like(optimizer: torch.optim.Optimizer, lr: float | None = None) -> OptimizerFactory:
    """A factory of fresh optimizers of ``optimizer``'s type and settings (its first param
    group's), with learning rate ``lr`` when given. Adam and AdamW go through ``optim.adam``
    (fused where it can be); any other type is built from its ``defaults``."""
    group = optimizer.param_groups[0]
    learning_rate = float(group["lr"] if lr is None else lr)
    kind = type(optimizer)
    if kind in (torch.optim.Adam, torch.optim.AdamW):
        settings = {key: group[key] for key in ("betas", "eps", "weight_decay", "amsgrad")}
        return lambda params: adam(params, learning_rate, kind, **settings)
    settings = {key: value for key, value in optimizer.defaults.items() if key != "lr"}
    return lambda params: kind(params, lr=learning_rate, **settings)


def _learner(network: nn.Module) -> nn.Module:
    learner = copy.deepcopy(network)
    for param in learner.parameters():
        param.grad = None  # the copy carries the live network's last gradients
    return learner


def _fit(learner: nn.Module, losses: Callable[[], torch.Tensor], make_optimizer: OptimizerFactory,
         steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(losses before, losses after) ``steps`` full-batch steps of ``learner``; ``losses()`` gives
    the loss of each copy it holds (one, or a stack's), whose sum's gradient is each copy's own."""
    optimizer = make_optimizer([p for p in learner.parameters() if p.requires_grad])
    history = []
    for step in range(steps + 1):
        loss = losses()
        history.append(loss.detach())
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
    return history[0], history[-1]


def _fit_one(network: nn.Module, inputs: tuple[torch.Tensor, ...], targets: torch.Tensor, noise_seed: int,
             make_optimizer: OptimizerFactory, steps: int) -> tuple[float, float]:
    """(loss before, loss after) ``steps`` full-batch steps of a copy of ``network``."""
    learner = _learner(network)
    before, after = _fit(learner, lambda: (_forward(learner, inputs, noise_seed) - targets).square().mean(),
                         make_optimizer, steps)
    return before.item(), after.item()


def _fit_stacked(network: nn.Module, inputs: tuple[torch.Tensor, ...], targets: torch.Tensor,
                 make_optimizer: OptimizerFactory, steps: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-target (losses before, losses after) of ``len(targets)`` copies of ``network``
    fitted as one stack, or None when the network does not stack or its stacked forward
    differs from its own (a module that acts on more than the last axis)."""
    count = targets.shape[0]
    try:
        stacked = stack_networks([_learner(network) for _ in range(count)])
    except NotStackableError:
        return None
    stacked_inputs = tuple(x.unsqueeze(0).expand(count, *x.shape) for x in inputs)
    with torch.no_grad():
        if not torch.allclose(_forward(stacked, stacked_inputs, 0, leading=2)[0], _forward(_learner(network), inputs, 0),
                              rtol=1e-4, atol=1e-6):
            return None
    # One loss per copy (the copies share nothing).
    return _fit(stacked, lambda: (_forward(stacked, stacked_inputs, 0, leading=2) - targets).square().mean(dim=(1, 2)),
                make_optimizer, steps)


def fit_random_targets(network: nn.Module, inputs: tuple[torch.Tensor, ...], *, steps: int,
                       make_optimizer: OptimizerFactory, seed: int, targets: int = 1,
                       stack: bool = True) -> ProbeFit:
    """Fit copies of ``network`` to ``targets`` random target functions on ``inputs``
    (``random_targets``, each with a seed derived from ``seed``) for ``steps`` full-batch steps
    of ``make_optimizer``'s optimizer; the means over the targets. ``network`` is never run
    with gradients, only copied; the global torch generator is restored on return.
    ``stack=False`` fits the copies one by one (the reference the stacked fit is tested on)."""
    target_seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(targets)]
    all_targets = torch.stack([random_targets(network, inputs, target_seed) for target_seed in target_seeds])
    target_variance = all_targets.var(dim=1, unbiased=False).mean().item()
    with _fork_rng(inputs[0].device):
        fitted = _fit_stacked(network, inputs, all_targets, make_optimizer, steps) if stack and targets > 1 else None
        if fitted is not None:
            before, after = (float(x) for x in torch.stack([fitted[0].mean(), fitted[1].mean()]).tolist())
        else:
            pairs = [_fit_one(network, inputs, target, probe_seeds(target_seed)[1], make_optimizer, steps)
                     for target, target_seed in zip(all_targets, target_seeds)]
            before, after = float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs]))
    return ProbeFit(loss=after, initial_loss=before, target_variance=target_variance)


def probe_roles(roles: dict[str, Role], replay: ReplayBuffer, *, steps: int, lr: float | None, batch_size: int,
                targets: int, seed: int) -> list[dict]:
    """Rows ``{network, layer: "all", metric, value}`` for each role and each of
    ``PROBE_METRICS``: the probe of each role's network on ``batch_size`` replay inputs (its
    ``forward_inputs``: the critic's (obs, action), the actor's obs) drawn with a generator
    seeded by ``seed``, fitted with the role's optimizer type (``lr``: its learning rate,
    or the role's own when None); each role's targets have seeds of their own."""
    sample_seed, *role_seeds = np.random.SeedSequence(seed).generate_state(1 + len(roles))
    generator = torch.Generator(device=replay.device).manual_seed(int(sample_seed))
    batch = replay.sample(batch_size, generator=generator)
    rows = []
    for (role_name, role), role_seed in zip(roles.items(), role_seeds):
        fit = fit_random_targets(role.network, role.forward_inputs(batch), steps=steps,
                                 make_optimizer=optimizer_like(role.optimizer, lr), seed=int(role_seed),
                                 targets=targets)
        rows += [{"network": role_name, "layer": "all", "metric": metric, "value": value}
                 for metric, value in fit.values().items()]
    return rows
