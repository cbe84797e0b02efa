"""Continual backprop (Dohare et al., Nature 2024, "Loss of plasticity in deep continual
learning").

For every hidden unit i of the chosen roles (a neuron layer's incoming row), a running
contribution utility

    u_i <- decay * u_i + (1 - decay) * mean_x |h_i(x)| * sum_k |w_ki|

with h_i the unit's activation output on the training batches of the last update and w_ki
its outgoing weights (all readers; a CReLU unit sums its two outputs). Every update, each
unit's age grows by 1; per layer, ``replacement_rate`` * (number of mature units, age >
``maturity_threshold``) is added to a running count, and its integer part is replaced: the
mature units with the lowest utility get incoming weights from the initialiser, bias 0,
outgoing weights 0 and their optimizer moments zeroed (``recycling.recycle_neurons``), and
utility and age 0.

Activations come from the agent's own training forward passes: ``setup`` registers one
forward hook per hidden activation module, which adds the batch mean of |h| (one abs, one
mean per call: O(batch x width), no host sync) while the module is in training mode with
gradients enabled; acting, evaluation (no grad) and the monitor's probes (eval mode) are
not counted. Calls of the same module between two updates (SAC's critic scoring the actor's
actions too) are averaged. Ages and counts live on the host, so the method syncs with the
device only when it replaces a unit.

Defaults: replacement_rate 1e-4 and decay 0.99 (Dohare et al.); maturity_threshold 1000
(the recipe in docs/science.md; Dohare et al. use 100 in their supervised problems and larger values in
RL).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, non_negative, role_names
from plasticity_bench.methods.recycling import recycle_neurons
from plasticity_bench.networks.layers import NeuronLayer, neuron_layers


class _ActivationMeans:
    """Forward-hook target: sum of per-output batch means of |h| since the last reset."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.calls = 0

    def __call__(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        values = output.detach().abs()
        mean = values.reshape(-1, values.shape[-1]).mean(dim=0)
        self.total = mean if self.total is None else self.total + mean
        self.calls += 1

    def take(self) -> torch.Tensor | None:
        mean = None if self.total is None else self.total / self.calls
        self.total, self.calls = None, 0
        return mean


class ContinualBackprop(Method):
    name = "cbp"
    owns_reset_schedule = True
    batches_across_seeds = False  # its utilities come from hooks on every training forward

    def __init__(self, replacement_rate: float = 1e-4, decay: float = 0.99, maturity_threshold: int = 1000,
                 roles: Any = None):
        self.replacement_rate = non_negative("replacement_rate", replacement_rate)
        self.decay = non_negative("decay", decay)
        if self.decay > 1:
            raise ValueError(f"decay must be in [0, 1], got {decay!r}")
        self.maturity_threshold = int(non_negative("maturity_threshold", maturity_threshold))
        self.roles = role_names(roles)
        self.utility: dict[str, dict[str, torch.Tensor]] = {}
        self.age: dict[str, dict[str, torch.Tensor]] = {}  # host int64
        self.pending: dict[str, dict[str, float]] = {}  # fractional replacements owed
        self._means: dict[str, dict[str, _ActivationMeans]] = {}
        self._handles: list[Any] = []

    def first_action_updates(self) -> dict[str, int]:
        return {"maturity_threshold": self.maturity_threshold + 1}  # a unit is mature once its age exceeds it

    def setup(self, roles: dict[str, Role]) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for role_name in chosen_roles(self.name, roles, self.roles):
            net = roles[role_name].network
            self.utility[role_name], self.age[role_name], self.pending[role_name] = {}, {}, {}
            self._means[role_name] = {}
            for layer in neuron_layers(net):
                device = layer.incoming.weight.device
                self.utility[role_name][layer.name] = torch.zeros(layer.width, device=device)
                self.age[role_name][layer.name] = torch.zeros(layer.width, dtype=torch.long)
                self.pending[role_name][layer.name] = 0.0
                means = _ActivationMeans()
                self._means[role_name][layer.name] = means
                self._handles.append(net.get_submodule(layer.name).register_forward_hook(means))

    def update_utility(self, role_name: str, layer: NeuronLayer) -> None:
        mean_activation = self._means[role_name][layer.name].take()
        if mean_activation is None:
            return
        with torch.no_grad():
            outgoing = sum(out.weight.abs().sum(dim=0) for out in layer.outgoing)  # per output column
            contribution = (mean_activation * outgoing).view(layer.copies, layer.width).sum(dim=0)
            utility = self.utility[role_name][layer.name]
            utility.mul_(self.decay).add_(contribution, alpha=1 - self.decay)

    def replace(self, role: Role, role_name: str, layer: NeuronLayer) -> int:
        age = self.age[role_name][layer.name]
        age += 1
        mature = age > self.maturity_threshold
        self.pending[role_name][layer.name] += self.replacement_rate * int(mature.sum())
        count = math.floor(self.pending[role_name][layer.name])
        if count < 1:
            return 0
        self.pending[role_name][layer.name] -= count
        utility = self.utility[role_name][layer.name]
        candidates = torch.where(mature.to(utility.device), utility, torch.full_like(utility, math.inf))
        index = torch.topk(candidates, min(count, int(mature.sum())), largest=False).indices
        mask = torch.zeros(layer.width, dtype=torch.bool, device=utility.device)
        mask[index] = True
        recycle_neurons(role, {layer.name: mask})
        utility[index] = 0.0
        age[index.cpu()] = 0
        return int(index.numel())

    def after_update(self, roles: dict[str, Role], update_step: int,
                     sample_batch: Callable[[], Batch]) -> dict[str, float]:
        stats: dict[str, float] = {}
        for role_name in self.utility:
            role = roles[role_name]
            replaced = 0
            for layer in neuron_layers(role.network):
                if layer.name not in self.utility[role_name]:
                    continue
                self.update_utility(role_name, layer)
                replaced += self.replace(role, role_name, layer)
            if replaced:
                stats[f"replaced_units/{role_name}"] = float(replaced)
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"utility": self.utility, "age": self.age, "pending": self.pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for role_name, layers in state.get("utility", {}).items():
            for layer_name, value in layers.items():
                self.utility[role_name][layer_name].copy_(value)
                self.age[role_name][layer_name].copy_(state["age"][role_name][layer_name])
                self.pending[role_name][layer_name] = float(state["pending"][role_name][layer_name])
