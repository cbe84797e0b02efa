"""Activity metrics of an agent's networks, as long-format rows for ``metrics.parquet``."""

from __future__ import annotations

import torch

from plasticity_bench.agents.base import Batch, Role
from plasticity_bench.metrics.activity import probe_activity

# Thresholds at which the inactive ratios are logged: 0 (ReDo's strict dormancy and the
# paper's ReLU theorem), 0.025 and 0.1 (the tau values studied by ReDo and GraMa).
MONITOR_TAUS: tuple[float, ...] = (0.0, 0.025, 0.1)
NETWORK_WIDE = "all"


def _tau_name(tau: float) -> str:
    return f"{tau:g}"


def monitor_roles(roles: dict[str, Role], batch: Batch) -> list[dict]:
    """Rows ``{network, layer, metric, value}`` for each role, per hidden layer and "all".

    Metrics: ``grama_inactive_ratio@tau`` and ``dormant_ratio@tau`` for tau in
    MONITOR_TAUS, and ``active_fraction``. One probe per role: the forward inside
    ``role.loss_fn(net, batch)`` and one backward give GraMa, dormant and active units from
    the same samples. "all" weights every neuron of the network equally.
    """
    names: list[tuple[str, str, str]] = []
    values: list[torch.Tensor] = []
    for role_name, role in roles.items():
        activity = probe_activity(role.network, loss_fn=role.loss_fn, batch=batch)
        if not activity:
            continue
        per_layer = {layer: (a.grama, a.dormant, a.active) for layer, a in activity.items()}
        per_layer[NETWORK_WIDE] = tuple(torch.cat(parts) for parts in zip(*per_layer.values()))
        for layer, (grama, dormant, active) in per_layer.items():
            for tau in MONITOR_TAUS:
                names.append((role_name, layer, f"grama_inactive_ratio@{_tau_name(tau)}"))
                values.append((grama <= tau).float().mean())
                names.append((role_name, layer, f"dormant_ratio@{_tau_name(tau)}"))
                values.append((dormant <= tau).float().mean())
            names.append((role_name, layer, "active_fraction"))
            values.append(active.mean())
    if not values:
        return []
    floats = torch.stack([v.to(values[0].device) for v in values]).tolist()  # one host sync
    return [
        {"network": network, "layer": layer, "metric": metric, "value": value}
        for (network, layer, metric), value in zip(names, floats)
    ]
