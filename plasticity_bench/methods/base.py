"""The Method interface: an intervention acts on networks and optimizer state, never on an
agent's internals (the dopamine ``weight_recyclers`` separation)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.networks import NetworkConfig


class Method:
    """Base class of every intervention; the default does nothing.

    Subclasses set ``name``; their constructor takes the method's options as keyword
    arguments, each with the paper's default, and ``options()`` reads them from that
    signature so that ``--set name.option=value`` can be validated. A built-in method's
    one-line description is in ``registry.METHODS`` (``plasticity-bench list`` prints it
    without importing the method).

    What a method may do to its roles, in ``setup`` and ``after_update``, and get exactly
    what it gets in a one-seed run also when seeds train together (training/stack.py): edit
    parameters and optimizer state in place, replace them, drop a parameter's optimizer
    state, change an optimizer's param-group settings (a learning rate), freeze or unfreeze
    parameters (``requires_grad_``), change or reset Adam's ``state["step"]``. Each seed's
    modules and optimizer are its own; the seed stack sees every such change after the
    method returns and rebuilds itself, or trains the seeds apart (each as its one-seed run)
    once they differ. What acts inside the update goes through ``loss_terms`` and
    ``observe_loss``, or sets ``batches_across_seeds = False``.
    """

    name: ClassVar[str] = "none"
    # Methods that periodically reset parameters own the reset schedule; two of them in
    # one run would fight over the same neurons, so composition rejects that.
    owns_reset_schedule: ClassVar[bool] = False
    # Methods that build the optimizers (``optimizer`` returns one); a run can have at
    # most one such method, else it is ambiguous whose optimizer trains the networks.
    provides_optimizer: ClassVar[bool] = False
    # Architecture → why this method cannot act on it (spec validation rejects the cell).
    unsupported_archs: ClassVar[dict[str, str]] = {}
    # False for a method that acts inside the gradient update other than through
    # ``loss_terms`` / ``observe_loss`` (which are detected): hooks on the training forward,
    # or new network structure mid-run. Seeds of such a cell train one by one in their
    # process instead of sharing a stacked update (training/stack.py).
    batches_across_seeds: ClassVar[bool] = True

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"method {self.name!r} takes no options, got {sorted(options)}")

    @classmethod
    def options(cls) -> dict[str, Any]:
        """Option name → default value: the constructor's parameters that have a default, in
        their order (``**options``, ``*args`` and parameters without a default are not options)."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # past self
        return {p.name: p.default for p in parameters
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}

    def plan(self, total_updates: int) -> None:
        """Told once, before ``setup``, how many gradient updates the run will make (a
        method that acts at a fraction of training turns it into an update count)."""

    def first_action_updates(self) -> dict[str, int]:
        """Option name → the gradient update at which, by that option, the method first acts
        (e.g. ``{"period": 1000}``); read after ``plan``. A run whose budget ends before one
        of them is refused before it trains (plasticity_bench/budget.py)."""
        return {}

    def network_config(self, config: NetworkConfig) -> NetworkConfig:
        """Change the architecture before networks are built (e.g. add LayerNorm)."""
        return config

    def setup(self, roles: dict[str, Role]) -> None:
        """Called once after the agent is built, before any checkpoint is restored (e.g. to
        record theta0 or register the method's own hooks). ``roles`` is the agent's dict;
        a method may keep it to act on later."""

    def loss_terms(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor | None:
        """A scalar added to the training loss of role ``role_name`` in the agent's update
        (``network`` is the module being trained), or None for nothing."""
        return None

    def observe_loss(self, role_name: str, loss: torch.Tensor) -> None:
        """Sees each training loss of role ``role_name`` before the methods' terms are
        added (e.g. to scale a term relative to it); ``loss`` must not be modified."""

    def optimizer(self, role_name: str, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer | None:
        """The optimizer of role ``role_name`` over ``params`` at learning rate ``lr``, or
        None for the agent's default (Adam). Methods that return one set ``provides_optimizer``."""
        return None

    def after_update(
        self, roles: dict[str, Role], update_step: int, sample_batch: Callable[[], Batch]
    ) -> dict[str, float]:
        """Called after every gradient update (``update_step`` counts from 1).

        Returns statistics to log (e.g. neurons reset per role), or an empty dict.
        """
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
