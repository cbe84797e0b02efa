"""Metrics of plasticity: functions of ``nn.Module``s, batches and loss closures."""

from plasticity_bench.metrics.activity import (
    GRAMA_VARIANTS,
    LayerActivity,
    ProbeResult,
    active_fraction,
    active_fraction_per_layer,
    dormant_scores,
    grama_scores,
    inactive_ratio,
    inactive_ratio_per_layer,
    normalise,
    output_layers,
    probe,
    probe_activity,
)
from plasticity_bench.metric_names import METRICS
from plasticity_bench.metrics.curvature import hessian_top_eigenvalue
from plasticity_bench.metrics.monitor import MONITOR_TAUS, monitor_roles
from plasticity_bench.metrics.norms import (
    feature_norm,
    grad_norm,
    snapshot_parameters,
    weight_drift,
    weight_magnitude,
)
from plasticity_bench.metrics.rank import (
    SRANK_DELTA,
    effective_rank,
    feature_ranks,
    hidden_features,
    penultimate_features,
    singular_values,
    srank,
)

__all__ = [
    "GRAMA_VARIANTS",
    "METRICS",
    "MONITOR_TAUS",
    "SRANK_DELTA",
    "LayerActivity",
    "ProbeResult",
    "active_fraction",
    "active_fraction_per_layer",
    "dormant_scores",
    "effective_rank",
    "feature_norm",
    "feature_ranks",
    "grad_norm",
    "grama_scores",
    "hessian_top_eigenvalue",
    "hidden_features",
    "inactive_ratio",
    "inactive_ratio_per_layer",
    "monitor_roles",
    "normalise",
    "output_layers",
    "penultimate_features",
    "probe",
    "probe_activity",
    "singular_values",
    "snapshot_parameters",
    "srank",
    "weight_drift",
    "weight_magnitude",
]
