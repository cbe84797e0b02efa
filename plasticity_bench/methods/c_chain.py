"""C-CHAIN, continual churn approximated reduction (Tang et al., ICML 2025, "Mitigating
plasticity loss in continual reinforcement learning by reducing churn").

Adds ``coefficient * MSE(f_theta(x_ref), f_old(x_ref))`` to each chosen role's training
loss: f_theta the network being trained, f_old the same network two gradient updates
earlier, x_ref a reference replay batch drawn separately from the training batch (the churn
is measured on data outside the batch). MSE is the mean squared difference of each output
tensor, summed over the network's outputs (e.g. SAC's actor: mean and log-std; a twin
critic: both Q values).

Timing: after update t the method keeps theta_t (the last three parameter snapshots: at
setup and after each update) and draws x_ref for the next update; in update t + 1 the
network holds theta_t and f_old uses theta_{t-2}. The term starts once two updates have
happened. Memory: three copies of each chosen role's parameters; compute: one extra forward
of the network and one of f_old (no grad) per loss evaluation.

A network whose forward is stochastic (the diffusion actor samples noise) would churn by
its noise alone: choose ``roles`` without it there.

Coefficient. By default it is adjusted automatically, as in the authors' code: each role's
coefficient starts at ``initial_coefficient`` and, from update ``adapt_after`` on, is set
after every update to

    c = target_relative_scale * mean |L_RL| / (mean churn + 1e-8)

over the last ``window`` values of the role's RL loss (seen through ``observe_loss``) and
of its churn term, so the regulariser stays a fixed fraction of the RL loss. Defaults are
the authors' off-policy (MinAtar DQN) ones: scale 0.01, initial 50, adapting after 10k
updates over a 50k window (their DMC PPO setting: 0.05, 100, 50 iterations, 100). A number
given as ``coefficient`` fixes c instead. The current c of each role is logged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, non_negative, positive_int, role_names

HISTORY = 3  # snapshots theta_{t-2}, theta_{t-1}, theta_t


def _tensors(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    raise TypeError(f"c_chain: cannot compare a network output of type {type(output).__name__}")


class CChain(Method):
    name = "c_chain"

    def __init__(self, coefficient: Any = None, target_relative_scale: float = 0.01, initial_coefficient: float = 50.0,
                 adapt_after: int = 10_000, window: int = 50_000, roles: Any = None):
        self.fixed = None if coefficient is None else non_negative("coefficient", coefficient)
        self.target_relative_scale = non_negative("target_relative_scale", target_relative_scale)
        self.initial_coefficient = non_negative("initial_coefficient", initial_coefficient)
        self.adapt_after = positive_int("adapt_after", adapt_after)
        self.window = positive_int("window", window)
        self.roles = role_names(roles)
        self.history: dict[str, deque[dict[str, torch.Tensor]]] = {}
        self.reference: Batch | None = None
        self._roles: dict[str, Role] = {}
        self.coefficients: dict[str, float] = {}
        # Recent |RL loss| and churn values per role, for the automatic coefficient.
        self.rl_losses: dict[str, deque[float]] = {}
        self.churns: dict[str, deque[float]] = {}

    def first_action_updates(self) -> dict[str, int]:
        # The churn term acts from the start; the automatic coefficient only from adapt_after.
        return {"adapt_after": self.adapt_after} if self.fixed is None else {}

    @staticmethod
    def snapshot(network: nn.Module) -> dict[str, torch.Tensor]:
        return {name: t.detach().clone() for name, t in [*network.named_parameters(), *network.named_buffers()]}

    def setup(self, roles: dict[str, Role]) -> None:
        self._roles = roles
        chosen = chosen_roles(self.name, roles, self.roles)
        self.history = {name: deque([self.snapshot(roles[name].network)], maxlen=HISTORY) for name in chosen}
        start = self.initial_coefficient if self.fixed is None else self.fixed
        self.coefficients = {name: start for name in chosen}
        self.rl_losses = {name: deque(maxlen=self.window) for name in chosen}
        self.churns = {name: deque(maxlen=self.window) for name in chosen}

    def observe_loss(self, role_name: str, loss: torch.Tensor) -> None:
        if self.fixed is None and role_name in self.rl_losses:
            self.rl_losses[role_name].append(abs(float(loss.detach())))

    def after_update(self, roles: dict[str, Role], update_step: int,
                     sample_batch: Callable[[], Batch]) -> dict[str, float]:
        for role_name, history in self.history.items():
            history.append(self.snapshot(roles[role_name].network))
        self.reference = sample_batch()
        if self.fixed is None and update_step >= self.adapt_after:
            for role_name, churns in self.churns.items():
                if churns and self.rl_losses[role_name]:
                    rl_loss = sum(self.rl_losses[role_name]) / len(self.rl_losses[role_name])
                    self.coefficients[role_name] = self.target_relative_scale * rl_loss / (sum(churns) / len(churns) + 1e-8)
        return {f"c_chain_coefficient/{name}": c for name, c in self.coefficients.items()}

    def loss_terms(self, role_name: str, network: nn.Module, batch: Batch) -> torch.Tensor | None:
        history = self.history.get(role_name)
        if history is None or len(history) < HISTORY or self.reference is None:
            return None
        old_state = history[0]
        current = {name for name, _ in [*network.named_parameters(), *network.named_buffers()]}
        if set(old_state) != current:
            return None  # the structure changed (e.g. plasticity injection) since then
        inputs = self._roles[role_name].forward_inputs(self.reference)
        with torch.no_grad():
            old = _tensors(functional_call(network, old_state, inputs))
        new = _tensors(network(*inputs))
        churn = torch.stack([F.mse_loss(n, o) for n, o in zip(new, old)]).sum()
        if self.fixed is None:
            self.churns[role_name].append(float(churn.detach()))
        return self.coefficients[role_name] * churn

    def state_dict(self) -> dict[str, Any]:
        return {"history": {name: list(history) for name, history in self.history.items()},
                "reference": self.reference, "coefficients": dict(self.coefficients),
                "rl_losses": {name: list(values) for name, values in self.rl_losses.items()},
                "churns": {name: list(values) for name, values in self.churns.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Checkpoints load on the CPU: move snapshots and the batch to the networks' device.
        for name, snapshots in state.get("history", {}).items():
            device = next(self._roles[name].network.parameters()).device
            self.history[name] = deque([{k: t.to(device) for k, t in snapshot.items()} for snapshot in snapshots],
                                       maxlen=HISTORY)
        reference = state.get("reference")
        if reference is not None and self.history:
            device = next(self._roles[next(iter(self.history))].network.parameters()).device
            reference = Batch(*(field.to(device) for field in reference))
        self.reference = reference
        self.coefficients.update(state.get("coefficients", {}))
        for name, values in state.get("rl_losses", {}).items():
            self.rl_losses[name] = deque(values, maxlen=self.window)
        for name, values in state.get("churns", {}).items():
            self.churns[name] = deque(values, maxlen=self.window)
