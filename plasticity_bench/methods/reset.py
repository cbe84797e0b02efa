"""Periodic resets (Nikishin et al., ICML 2022, "The primacy bias in deep RL").

Every ``period`` gradient updates, re-initialise the last ``layers`` layers of each
network body of the chosen roles (or ``"all"``), delete the optimizer state of the
re-drawn parameters (``optimizer.state[p]`` removed, so Adam restarts their moments and
step count) and copy them into the role's targets, so a target never bootstraps from the
pre-reset head. The replay buffer is kept (that is the point of the method).

"The last k layers" of a body (an MLP, a residual net, each Q network of a twin critic)
are its last k ``nn.Linear`` modules in definition order together with every module
defined after the first of them (e.g. a LayerNorm between them); "all" re-draws every
module of the role's network. SAC's temperature is not a network and is not reset.

Defaults: Nikishin et al. reset all layers of SAC's actor and critic every 2e5 env steps
(their DMC SAC setting, replay ratio 1). ``period`` counts gradient updates (the trainer's
update counter), so 200_000 matches their schedule at replay ratio 1, where updates ≈ env
steps (minus learning_starts); at replay ratio r use period = 2e5 * r.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from plasticity_bench.roles import Role
from plasticity_bench.methods.options import positive_int, role_names
from plasticity_bench.methods.periodic import PeriodicRoleMethod, forget_parameters, sync_targets
from plasticity_bench.networks.reinit import reinitialise


def bodies(net: nn.Module) -> list[nn.Module]:
    """The networks inside ``net``: outermost modules that list their neuron layers (an
    MLP, a ResidualNet), or ``net`` itself when it is one or holds none."""
    if hasattr(net, "neuron_layers") or not any(hasattr(m, "neuron_layers") for m in net.modules()):
        return [net]
    return [body for child in net.children() for body in bodies(child)]


def last_layers(net: nn.Module, layers: int | str) -> list[nn.Module]:
    """The modules that a reset of the last ``layers`` layers re-draws (see the module doc)."""
    if layers == "all":
        return list(net.modules())
    chosen: list[nn.Module] = []
    for body in bodies(net):
        modules = list(body.modules())
        linear_positions = [i for i, m in enumerate(modules) if isinstance(m, nn.Linear)]
        start = linear_positions[-layers] if layers <= len(linear_positions) else 0
        chosen += modules[start:]
    return chosen


def reset_role(role: Role, layers: int | str) -> list[nn.Parameter]:
    """Re-draw the last ``layers`` of ``role.network``, forget their optimizer state and
    copy them into the targets; returns the re-drawn parameters."""
    params = reinitialise(last_layers(role.network, layers))
    forget_parameters(role.optimizer, params)
    sync_targets(role, params)
    return params


def _layers_option(value: Any) -> int | str:
    if value == "all":
        return "all"
    try:
        return positive_int("layers", value)
    except ValueError:
        raise ValueError(f"layers must be 'all' or a positive integer, got {value!r}") from None


class Reset(PeriodicRoleMethod):
    name = "reset"

    def __init__(self, period: int = 200_000, layers: Any = "all", roles: Any = None):
        self.period = positive_int("period", period)
        self.layers = _layers_option(layers)
        self.roles = role_names(roles)

    def act(self, role_name: str, role: Role) -> dict[str, float]:
        params = reset_role(role, self.layers)
        total = sum(p.numel() for p in role.network.parameters())
        return {f"reset_fraction/{role_name}": sum(p.numel() for p in params) / total if total else 0.0}
