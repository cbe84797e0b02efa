"""What every agent offers the trainer, the monitor and the methods."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from plasticity_bench.agents.common import batch_mean
from plasticity_bench.networks.distributions import NoiseDraw
from plasticity_bench.optim import adam
from plasticity_bench.roles import Batch, Role


def backward(loss: torch.Tensor) -> None:
    """Backpropagate one seed's loss, or a stack's [seeds] losses summed: the sum gives each
    seed's parameters exactly the gradient of its own loss."""
    (loss if loss.dim() == 0 else loss.sum()).backward()


@contextmanager
def frozen(network: nn.Module) -> Iterator[None]:
    """No weight gradients for ``network`` inside (e.g. the critic that scores an actor's
    actions): skipping them saves backward work and changes nothing else."""
    network.requires_grad_(False)
    try:
        yield
    finally:
        network.requires_grad_(True)


class TrainingHooks:
    """What methods change inside an agent's update, and nothing else: extra loss terms
    per role and the optimizer each role is built with. An agent builds its optimizers
    with ``make_optimizer`` and computes each role's loss with ``training_loss`` (base
    class), so it never names a method. ``methods`` are objects with the Method hooks
    ``observe_loss(role_name, loss)``, ``loss_terms(role_name, network, batch)`` and
    ``optimizer(role_name, params, lr)``."""

    def __init__(self, methods: Sequence = ()):
        self.methods = tuple(methods)

    def loss_terms(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor | None:
        """The sum of every method's term for this role, or None when none adds one."""
        total = None
        for method in self.methods:
            term = method.loss_terms(role_name, network, batch)
            if term is not None:
                total = term if total is None else total + term
        return total

    def observe_loss(self, role_name: str, loss: torch.Tensor) -> None:
        for method in self.methods:
            method.observe_loss(role_name, loss)

    def optimizer(self, role_name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """The first method's optimizer for this role, else Adam (the agents' default)."""
        params = list(params)
        for method in self.methods:
            optimizer = method.optimizer(role_name, params, lr)
            if optimizer is not None:
                return optimizer
        return adam(params, lr=lr)


class Agent:
    """Base class: subclasses fill ``self.roles`` (with ``make_roles``) and implement ``act``
    and ``update``.

    The same update serves one seed and a stack of seeds (training/stack.py): a stack's agent is
    a copy whose attributes named in ``stacked_networks`` (modules), ``stacked_tensors``
    (leaf tensors trained outside a module) and ``stacked_optimizers`` carry a leading seed
    axis, with ``seeds`` set and ``draw_normal`` drawing each seed's noise from its own
    generator. Updates therefore index the last axes only, reduce batches with ``self.mean``
    and give each seed's own loss, [seeds] where one seed's is a scalar.
    """

    roles: dict[str, Role]
    hooks: TrainingHooks = TrainingHooks()  # subclasses set the trainer's hooks in __init__
    stacked_networks: ClassVar[tuple[str, ...]] = ()
    stacked_tensors: ClassVar[tuple[str, ...]] = ()
    stacked_optimizers: ClassVar[tuple[str, ...]] = ()
    # None: a seed's own modules, which keep no seed axis because metrics and methods read
    # them as ordinary networks; on a stack's agent, the number of seeds along the leading axis.
    seeds: int | None = None
    draw_normal: NoiseDraw | None = None
    # Whether the trainer acts uniformly at random before `learning_starts` (CleanRL's SAC
    # and TD3); an agent whose own exploration covers the warm-up (DQN's ε) sets False.
    random_warmup: bool = True

    def make_roles(self) -> dict[str, Role]:
        raise NotImplementedError

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """A batch mean: a scalar for one seed, one per seed ([seeds]) for a stack."""
        return batch_mean(x, self.seeds is not None)

    def per_seed(self, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``value`` (a scalar, or [seeds] on a stack) shaped to broadcast against ``like``."""
        return value.reshape(value.shape + (1,) * (like.dim() - value.dim()))

    def make_optimizer(self, role_name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        return self.hooks.optimizer(role_name, params, lr)

    def training_loss(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor:
        """The role's own loss plus the methods' terms: what the update minimises."""
        loss = self.roles[role_name].loss_fn(network, batch)
        self.hooks.observe_loss(role_name, loss)
        extra = self.hooks.loss_terms(role_name, network, batch)
        return loss if extra is None else loss + extra

    def gradient_step(self, role_name: str, batch: Batch) -> torch.Tensor:
        """One optimizer step of a role on its training loss; returns the detached loss."""
        role = self.roles[role_name]
        loss = self.training_loss(role_name, role.network, batch)
        role.optimizer.zero_grad()
        backward(loss)
        role.optimizer.step()
        return loss.detach()

    def act(self, obs: np.ndarray, env_step: int, rngs: list[np.random.Generator], explore: bool) -> list:
        """One action per row of ``obs`` (one row per seed: a stack's seeds, or the one seed of
        an agent training alone), from one forward pass: the behaviour policy's when
        ``explore``, else the evaluation policy's. Each seed's host-side draws come from its
        generator in ``rngs`` (training passes the trainer's, which checkpoints hold;
        evaluation one of its episode's own); its torch draws from ``draw_normal`` on a
        stack, from torch's global generator alone (training/stack.py sets it to the seed's)."""
        raise NotImplementedError

    def policy_input(self, obs: np.ndarray) -> torch.Tensor:
        """Rows of observations as the policy's input: [1, obs] (a batch of one) alone,
        [seeds, 1, obs] (a batch of one per seed) on a stack."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return obs_t if self.seeds is None else obs_t.unsqueeze(1)

    def per_seed_rows(self, output: torch.Tensor) -> torch.Tensor:
        """The policy's output for ``policy_input``'s rows as one row per seed."""
        return output if self.seeds is None else output.squeeze(1)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient update; returns detached 0-dim tensors, never synced here: first each
        role's training loss (``<role>_loss``, methods' terms included), then diagnostics
        named as CleanRL logs them (``td_loss``, ``q_values``, ``qf1_values``, ``alpha``, ...).
        The trainer sums them on the device for its health check and logs their means as
        ``losses/<name>`` (training_log.py)."""
        raise NotImplementedError

    def update_branches(self, update: int) -> tuple[bool, ...]:
        """Which optional steps (a delayed actor step, a target update) update number
        ``update`` makes: the only decisions ``update``'s Python code takes, so updates with
        the same answer run the same kernels. A CUDA-graph update (training/graphs.py)
        captures one graph per answer; an agent that does not answer is not captured."""
        raise NotImplementedError

    def modules_to_save(self) -> dict[str, Any]:
        """Everything with a state_dict that a checkpoint must hold (nets, targets, optims)."""
        raise NotImplementedError

    def counters(self) -> dict[str, Any]:
        return {}

    def load_counters(self, counters: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {name: m.state_dict() for name, m in self.modules_to_save().items()},
            "counters": self.counters(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules_to_save().items():
            module.load_state_dict(state["modules"][name])
        self.load_counters(state["counters"])
