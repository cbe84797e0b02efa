"""Metrics of plasticity: functions of ``nn.Module``s, batches and loss closures."""

from plasticity_bench.metrics.activity import (
    LayerActivity,
    active_fraction,
    active_fraction_per_layer,
    dormant_scores,
    grama_scores,
    inactive_ratio,
    inactive_ratio_per_layer,
    normalise,
    probe_activity,
)
from plasticity_bench.metrics.monitor import MONITOR_TAUS, monitor_roles

# Name → one-line definition, for ``plasticity-bench list``; the names are those of the
# ``metric`` column that ``monitor_roles`` writes (per hidden layer and for layer "all").
METRICS: dict[str, str] = {
    **{
        f"grama_inactive_ratio@{tau:g}": f"fraction of hidden neurons with GraMa score <= {tau:g} "
        "(GraMa: E|dL/dh_i| over the batch / its layer mean; Liu et al. 2025)"
        for tau in MONITOR_TAUS
    },
    **{
        f"dormant_ratio@{tau:g}": f"fraction of hidden neurons with ReDo score <= {tau:g} "
        "(ReDo: E|h_i| over the batch / its layer mean; Sokar et al. 2023)"
        for tau in MONITOR_TAUS
    },
    "active_fraction": "mean over batch and hidden neurons of 1[h > 0] (fraction of active units)",
}

__all__ = [
    "METRICS",
    "MONITOR_TAUS",
    "LayerActivity",
    "active_fraction",
    "active_fraction_per_layer",
    "dormant_scores",
    "grama_scores",
    "inactive_ratio",
    "inactive_ratio_per_layer",
    "monitor_roles",
    "normalise",
    "probe_activity",
]
