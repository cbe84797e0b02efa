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

Default coefficient 0.1 is this suite's choice: the paper scales the term with an
automatically adjusted coefficient relative to the RL loss, which is not implemented here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from plasticity_bench.agents.base import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.recycling import chosen_roles, non_negative, role_names

HISTORY = 3  # snapshots theta_{t-2}, theta_{t-1}, theta_t


def _tensors(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    raise TypeError(f"c_chain: cannot compare a network output of type {type(output).__name__}")


class CChain(Method):
    name = "c_chain"
    description = "loss + lambda * MSE to the network of 2 updates earlier on a reference batch (C-CHAIN, Tang et al. 2025)"

    def __init__(self, coefficient: float = 0.1, roles: Any = None):
        self.coefficient = non_negative("coefficient", coefficient)
        self.roles = role_names(roles)
        self.history: dict[str, deque[dict[str, torch.Tensor]]] = {}
        self.reference: Batch | None = None
        self._roles: dict[str, Role] = {}

    @classmethod
    def options(cls) -> dict[str, Any]:
        return {"coefficient": 0.1, "roles": None}

    @staticmethod
    def snapshot(network: nn.Module) -> dict[str, torch.Tensor]:
        return {name: t.detach().clone() for name, t in [*network.named_parameters(), *network.named_buffers()]}

    def setup(self, roles: dict[str, Role]) -> None:
        self._roles = roles
        self.history = {name: deque([self.snapshot(roles[name].network)], maxlen=HISTORY)
                        for name in chosen_roles(self.name, roles, self.roles)}

    def after_update(self, roles: dict[str, Role], update_step: int,
                     sample_batch: Callable[[], Batch]) -> dict[str, float]:
        for role_name, history in self.history.items():
            history.append(self.snapshot(roles[role_name].network))
        self.reference = sample_batch()
        return {}

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
        return self.coefficient * churn

    def state_dict(self) -> dict[str, Any]:
        return {"history": {name: list(history) for name, history in self.history.items()},
                "reference": self.reference}

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
