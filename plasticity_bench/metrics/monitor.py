"""Plasticity metrics of an agent's networks, as long-format rows for ``metrics.parquet``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from plasticity_bench.roles import Batch, Role
from plasticity_bench.metric_names import MONITOR_TAUS
from plasticity_bench.metrics.activity import probe
from plasticity_bench.metrics.curvature import hessian_top_eigenvalue
from plasticity_bench.metrics.norms import feature_norm, gradient_norm_of, weight_drift, weight_magnitude
from plasticity_bench.metrics.tensor_sets import EXTRA_TENSOR_SETS, tensor_set_scores
from plasticity_bench.metrics.rank import (
    effective_rank_from_singular_values,
    singular_values,
    srank_from_singular_values,
)

NETWORK_WIDE = "all"
# The metric name of each GraMa variant's inactive ratio (activity.GRAMA_VARIANTS): the
# default, pre-activation GraMa keeps the plain name.
GRAMA_RATIO_METRICS = {"pre_activation": "grama_inactive_ratio", "output": "grama_output_inactive_ratio",
                       "released": "grama_released_inactive_ratio"}
# The metric of each score of the other tensor sets (metrics/tensor_sets.py); the key carries
# the set: dormant_ratio:block_out@0.1. Metrics without a set name are on the inner set.
TENSOR_SET_RATIO_METRICS = {"dormant": "dormant_ratio", "grama": "grama_inactive_ratio",
                            "grama_released": "grama_released_inactive_ratio"}


def tensor_set_metric(metric: str, tensor_set: str) -> str:
    """``dormant_ratio`` on ``block_out`` → ``dormant_ratio:block_out`` (inner keeps the bare name)."""
    return metric if tensor_set == "inner" else f"{metric}:{tensor_set}"


def _tau_name(tau: float) -> str:
    return f"{tau:g}"


def monitor_roles(
    roles: dict[str, Role],
    batch: Batch,
    initial_params: dict[str, Sequence[torch.Tensor]] | None = None,
    *,
    hessian: bool = False,
    hessian_iterations: int = 20,
) -> list[dict]:
    """Rows ``{network, layer, metric, value}`` for each role, per hidden layer and "all".

    One probe per role: the forward inside ``role.loss_fn(net, batch)`` and one backward
    (to the activation outputs and the parameters together) give, from the same samples:

    - ``grama_inactive_ratio@tau`` (pre-activation GraMa), its variants
      ``grama_output_inactive_ratio@tau`` and ``grama_released_inactive_ratio@tau`` (all
      three from the same backward), ``dormant_ratio@tau`` (tau in MONITOR_TAUS) and
      ``active_fraction``, per hidden layer and "all" (every neuron weighted equally; the
      released variant covers the layers ``neuron_layers`` describes);
    - ``dormant_not_grama_ratio@0``: neurons dormant at tau 0 that GraMa does not flag
      (0 in ReLU nets, by the GraMa paper's proposition), per layer and "all";
    - ``srank``, ``effective_rank`` and ``feature_norm`` of each hidden layer's outputs and
      of the penultimate features (what each body's output layer reads; in an MLP the last
      hidden layer, in a residual net ``"<output layer>:input"``); their "all" is the mean
      over the network's penultimate feature matrices (one per body: TwinQ's q1 and q2);
    - ``grad_norm`` (||dL/dtheta||_2) and ``weight_magnitude`` for "all";
    - ``weight_drift`` for "all" when ``initial_params[role]`` (theta0, one tensor per
      parameter in order) is given and still matches the parameters' shapes (else no row);
    - with ``hessian``: ``hessian_top_eigenvalue`` for "all", by ``hessian_iterations``
      steps of power iteration (a second forward and double backwards; costly).
    """
    names: list[tuple[str, str, str]] = []
    values: list[torch.Tensor] = []
    for role_name, role in roles.items():
        net = role.network
        params = list(net.parameters())
        result = probe(net, loss_fn=role.loss_fn, batch=batch, keep_features=True, parameters=params,
                       grama_variants=tuple(GRAMA_RATIO_METRICS))
        _feature_rows(role_name, result.features, result.penultimate, names, values)
        names.append((role_name, NETWORK_WIDE, "grad_norm"))
        values.append(gradient_norm_of(result.parameter_gradients or []))
        if params:
            names.append((role_name, NETWORK_WIDE, "weight_magnitude"))
            values.append(weight_magnitude(net))
        drift = None if initial_params is None or role_name not in initial_params else weight_drift(
            net, initial_params[role_name])
        if drift is not None:
            names.append((role_name, NETWORK_WIDE, "weight_drift"))
            values.append(drift)
        if hessian:
            names.append((role_name, NETWORK_WIDE, "hessian_top_eigenvalue"))
            values.append(hessian_top_eigenvalue(net, role.loss_fn, batch, iterations=hessian_iterations))
        activity = result.activity
        if not activity:
            continue
        # score name → layer → per-neuron scores; "all" pools every layer that has the score
        scores: dict[str, dict[str, torch.Tensor]] = {"dormant_ratio": {}}
        for layer, layer_activity in activity.items():
            scores["dormant_ratio"][layer] = layer_activity.dormant
            for variant, score in layer_activity.grama_variants.items():
                scores.setdefault(GRAMA_RATIO_METRICS[variant], {})[layer] = score
        _ratio_rows(role_name, scores, names, values)
        _containment_rows(role_name, scores, names, values)
        for tensor_set in EXTRA_TENSOR_SETS:
            set_scores: dict[str, dict[str, torch.Tensor]] = {}
            for tensor, by_score in tensor_set_scores(net, role.loss_fn, batch, tensor_set).items():
                for score_name, score in by_score.items():
                    metric = tensor_set_metric(TENSOR_SET_RATIO_METRICS[score_name], tensor_set)
                    set_scores.setdefault(metric, {})[tensor] = score
            _ratio_rows(role_name, set_scores, names, values)
        active = {layer: layer_activity.active for layer, layer_activity in activity.items()}
        active[NETWORK_WIDE] = torch.cat(list(active.values()))
        for layer, fraction in active.items():
            names.append((role_name, layer, "active_fraction"))
            values.append(fraction.mean())
    if not values:
        return []
    floats = torch.stack([v.to(values[0].device, torch.float32) for v in values]).tolist()  # one host sync
    return [
        {"network": network, "layer": layer, "metric": metric, "value": value}
        for (network, layer, metric), value in zip(names, floats)
    ]


def _ratio_rows(role_name: str, scores: dict[str, dict[str, torch.Tensor]], names: list[tuple[str, str, str]],
                values: list[torch.Tensor]) -> None:
    """``metric@tau`` for each score (metric → layer → per-neuron scores), per layer and for
    "all" (every layer's neurons pooled, each neuron weighted equally), tau in MONITOR_TAUS."""
    for metric, by_layer in scores.items():
        by_layer[NETWORK_WIDE] = torch.cat(list(by_layer.values()))  # kept: the containment rows read "all" too
        for layer, score in by_layer.items():
            for tau in MONITOR_TAUS:
                names.append((role_name, layer, f"{metric}@{_tau_name(tau)}"))
                values.append((score <= tau).float().mean())


def _containment_rows(role_name: str, scores: dict[str, dict[str, torch.Tensor]],
                      names: list[tuple[str, str, str]], values: list[torch.Tensor]) -> None:
    """``dormant_not_grama_ratio@0``: the fraction of a layer's neurons that ReDo flags at
    tau 0 (no activation on any sample) but pre-activation GraMa does not. The GraMa paper's
    proposition makes it exactly 0 in ReLU nets (a dead unit's dL/dz is 0 on every sample);
    the claims report checks it on real training runs. Layers whose activation changes the
    width (CReLU, DFF: two outputs per pre-activation) have no unit-to-unit pairing: no row."""
    grama = scores.get(GRAMA_RATIO_METRICS["pre_activation"], {})
    for layer, dormant in scores["dormant_ratio"].items():
        if layer in grama and grama[layer].shape == dormant.shape:
            names.append((role_name, layer, "dormant_not_grama_ratio@0"))
            values.append(((dormant <= 0) & (grama[layer] > 0)).float().mean())


def _feature_rows(role_name: str, features: dict[str, torch.Tensor], penultimate: dict[str, torch.Tensor],
                  names: list[tuple[str, str, str]], values: list[torch.Tensor]) -> None:
    """srank, effective rank and feature norm per feature matrix, and their penultimate mean.

    A penultimate matrix named after a hidden layer is usually that layer's matrix (an MLP's
    last hidden layer) and reuses its SVD; it differs only for a shared activation module
    called more often than the output layer, and then only the "all" value uses it."""

    def measure(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sigma = singular_values(matrix)
        return srank_from_singular_values(sigma), effective_rank_from_singular_values(sigma), feature_norm(matrix)

    per_layer = {layer: measure(matrix) for layer, matrix in features.items()}
    penultimate_values = []
    for layer, matrix in penultimate.items():
        if layer in features and features[layer].shape == matrix.shape:
            penultimate_values.append(per_layer[layer])
        else:
            penultimate_values.append(measure(matrix))
            per_layer.setdefault(layer, penultimate_values[-1])
    if penultimate_values:
        per_layer[NETWORK_WIDE] = tuple(torch.stack(parts).mean() for parts in zip(*penultimate_values))
    for layer, (rank, erank, norm) in per_layer.items():
        for metric, value in (("srank", rank), ("effective_rank", erank), ("feature_norm", norm)):
            names.append((role_name, layer, metric))
            values.append(value)
