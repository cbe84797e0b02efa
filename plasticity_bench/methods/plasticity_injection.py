"""Plasticity injection (Nikishin et al., NeurIPS 2023, "Deep RL with plasticity injection").

At gradient update ``at_update`` the head h of each network body (its output layer) of
the chosen roles is frozen and two fresh heads with the same initialisation are added, h1
trainable and h2 frozen:

    y(x) = h(x) + ( h1(x) - h2(x) )

h1 and h2 are identical at injection, so h1(x) - h2(x) is exactly 0 and the network's
function is unchanged; afterwards only h1 (and the trunk) train, so the number of trainable
parameters stays that of the head. Gradients still flow through the frozen h and h2 into
the trunk, as in the paper. The new parameters join the role's optimizer through
``optimizer.add_param_group`` (the old head's parameters stay in their group but never get
a gradient again). The frozen h and h2 are buffers, not parameters, so an agent that toggles
``requires_grad_`` on a whole network (SAC's and TD3's actor step) cannot unfreeze them.

Targets: each of the role's targets gets the same structure, holding the online network's
frozen h and the same h1/h2 copies, so at injection the target's head mirrors the online
head (the paper's targets mirror the online network).

Resume: the method's state records whether it has injected; ``load_state_dict`` re-applies
the structure (to the roles given to ``setup``), and the trainer restores method states
before the agent's, so the agent's saved parameters and optimizer groups load into the
injected structure.

When: once, after ``at_fraction`` = 1/4 of the run's gradient updates by default, as the
paper's main experiments inject once after 50M of 200M frames (Plasticine injects at half
of training); ``at_update`` names an update count instead. Into: every role's head (the
paper injects into the value network's head; ``roles`` narrows it). Only the output layer
is the head here (one Linear); a multi-layer head is not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, positive_int, role_names
from plasticity_bench.metrics.activity import output_layers


class InjectedLinear(nn.Linear):
    """h(x) + (h1(x) - h2(x)): h (``weight``, ``bias``) and h2 (``frozen_*``) are buffers;
    h1 (``injected_*``) are the only parameters.

    It stays an ``nn.Linear`` (with ``weight``/``bias`` = the frozen h), so neuron-layer
    views and output-layer lookups still find the body's output layer.
    """

    def __init__(self, head: nn.Linear, fresh: nn.Linear):
        super().__init__(head.in_features, head.out_features, bias=head.bias is not None, device="meta")
        del self.weight, self.bias
        self.register_buffer("weight", head.weight.detach().clone())
        self.register_buffer("bias", None if head.bias is None else head.bias.detach().clone())
        self.injected_weight = nn.Parameter(fresh.weight.detach().clone())
        self.injected_bias = None if fresh.bias is None else nn.Parameter(fresh.bias.detach().clone())
        self.register_buffer("frozen_weight", fresh.weight.detach().clone())
        self.register_buffer("frozen_bias", None if fresh.bias is None else fresh.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        injected = F.linear(x, self.injected_weight, self.injected_bias) - F.linear(x, self.frozen_weight, self.frozen_bias)
        return F.linear(x, self.weight, self.bias) + injected


def _replace(net: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, module)


def inject(role: Role) -> int:
    """Inject every output layer of ``role.network`` (and of its targets); returns the
    number of heads injected. Heads already injected are left alone."""
    new_params: list[nn.Parameter] = []
    heads = {name: head for name, head in output_layers(role.network).items() if not isinstance(head, InjectedLinear)}
    for name, head in heads.items():
        fresh = nn.Linear(head.in_features, head.out_features, bias=head.bias is not None,
                          device=head.weight.device, dtype=head.weight.dtype)
        injected = InjectedLinear(head, fresh)
        _replace(role.network, name, injected)
        new_params += [p for p in (injected.injected_weight, injected.injected_bias) if p is not None]
        for target in role.targets:
            # The target mirrors the online network's head (frozen h, h1, h2).
            _replace(target, name, InjectedLinear(head, fresh))
    if new_params:
        role.optimizer.add_param_group({"params": new_params})
    return len(heads)


class PlasticityInjection(Method):
    name = "plasticity_injection"
    batches_across_seeds = False  # it replaces each head with an InjectedLinear mid-run

    def __init__(self, at_fraction: float = 0.25, at_update: Any = None, roles: Any = None):
        if not 0 < at_fraction <= 1:
            raise ValueError(f"at_fraction must lie in (0, 1], got {at_fraction}")
        self.at_fraction = float(at_fraction)
        self.at_update = None if at_update is None else positive_int("at_update", at_update)
        self.roles = role_names(roles)
        self.injected = False
        self._roles: dict[str, Role] | None = None

    def plan(self, total_updates: int) -> None:
        if self.at_update is None:  # an explicit update count wins over the fraction
            self.at_update = max(1, math.ceil(self.at_fraction * total_updates))

    def first_action_updates(self) -> dict[str, int]:
        return {"at_update": self.at_update}

    def setup(self, roles: dict[str, Role]) -> None:
        chosen_roles(self.name, roles, self.roles)  # fail early on a bad role name
        self._roles = roles

    def inject_all(self, roles: dict[str, Role]) -> dict[str, float]:
        stats = {f"injected_heads/{name}": float(inject(roles[name])) for name in chosen_roles(self.name, roles, self.roles)}
        self.injected = True
        return stats

    def after_update(self, roles: dict[str, Role], update_step: int,
                     sample_batch: Callable[[], Batch]) -> dict[str, float]:
        if self.injected or update_step < self.at_update:
            return {}
        return self.inject_all(roles)

    def state_dict(self) -> dict[str, Any]:
        return {"injected": self.injected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("injected") and not self.injected:
            if self._roles is None:
                raise RuntimeError("plasticity_injection: setup(roles) must run before load_state_dict")
            self.inject_all(self._roles)
