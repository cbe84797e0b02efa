"""Neuron recycling shared by ReDo and ReGraMa: re-initialise chosen hidden neurons of a
network and forget their optimizer state, through the narrow Role interface (as dopamine's
``labs/redo/weight_recyclers.py`` keeps the recycler apart from the agent).

For each chosen neuron i of a hidden layer (never the output layer):
incoming weight row i ← a fresh draw of the layer's initialiser; incoming bias i ← 0;
LayerNorm gamma_i, beta_i ← 1, 0; outgoing weight column i ← 0 (the next layer's bias is
kept), so a neuron that was silent leaves the network's function unchanged; and the
optimizer's moment estimates of exactly those entries ← 0.

CReLU layers (``NeuronLayer.copies == 2``): incoming row i feeds two outputs, relu(x_i)
(output i) and relu(-x_i) (output i + width). Recycling unit i re-draws row i and zeros
both outgoing columns i and i + width. Per-output scores (the metrics score each of the
2 * width outputs) are folded to one score per unit by their maximum: a unit is only as
dormant as its livelier half, since re-drawing the row resets both halves.

``NeuronRecycler`` is the schedule ReDo and ReGraMa share: score, select, recycle, log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from plasticity_bench.roles import Batch, Role
from plasticity_bench.methods.base import Method
from plasticity_bench.methods.options import chosen_roles, non_negative, positive_int, role_names
from plasticity_bench.networks.layers import NeuronLayer, neuron_layers

# Selects entries of a parameter-shaped tensor: rows (dim 0) or columns (dim 1).
_ROWS, _COLUMNS = 0, 1


def _forget_optimizer_state(optimizer: torch.optim.Optimizer, param: nn.Parameter, dim: int, index: torch.Tensor) -> None:
    """Zero the per-entry statistics (Adam's exp_avg, exp_avg_sq, max_exp_avg_sq, momentum
    buffers, ...) of the selected entries: every state tensor shaped like the parameter.
    ``step`` (a scalar) is shared by the whole tensor in PyTorch and stays. No state yet
    (before the first step) means nothing to forget."""
    if param not in optimizer.state:  # `in`, not `[]`: the state is a defaultdict
        return
    for value in optimizer.state[param].values():
        if isinstance(value, torch.Tensor) and value.shape == param.shape:
            value.index_fill_(dim, index.to(value.device), 0.0)


def recycle_neurons(role: Role, masks: Mapping[str, torch.Tensor], zero_outgoing: bool = True,
                    reset_optimizer: bool = True) -> dict[str, int]:
    """Reset the neurons selected by ``masks`` (layer name → bool tensor of its width) in
    ``role.network`` and their entries of ``role.optimizer``'s state.

    Layer names are those of ``neuron_layers(role.network)`` (= the metric keys); layers
    absent from ``masks`` are left alone. Returns layer name → neurons reset.
    ``zero_outgoing=False`` keeps the outgoing weights and ``reset_optimizer=False`` the
    optimizer state (the released ReGraMa code does neither).
    """
    layers = {layer.name: layer for layer in neuron_layers(role.network)}
    unknown = [name for name in masks if name not in layers]
    if unknown:
        raise ValueError(f"no hidden neuron layer named {unknown}; valid: {', '.join(layers) or '(none)'}")
    chosen: list[tuple[NeuronLayer, torch.Tensor]] = []
    reset: dict[str, int] = {}
    for name, mask in masks.items():
        layer = layers[name]
        if mask.dtype != torch.bool or mask.shape != (layer.width,):
            raise ValueError(
                f"mask of layer {name!r} must be a bool tensor of shape ({layer.width},), "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        index = mask.nonzero().flatten().to(layer.incoming.weight.device)
        reset[name] = int(index.numel())
        if index.numel() > 0:
            chosen.append((layer, index))
    touched: list[tuple[nn.Parameter, int, torch.Tensor]] = []
    with torch.no_grad():
        # Re-draw every incoming row before zeroing any outgoing column: where a recycled
        # neuron's outgoing weight is also the incoming weight of a recycled neuron of the
        # next layer, zero wins, so every recycled neuron starts without influence.
        for layer, index in chosen:
            touched += _reinitialise_incoming(layer, index)
        if zero_outgoing:
            for layer, index in chosen:
                columns = output_columns(layer, index)
                for outgoing in layer.outgoing:
                    outgoing.weight[:, columns] = 0.0
                    touched.append((outgoing.weight, _COLUMNS, columns))
        if reset_optimizer:
            for param, dim, index in touched:
                _forget_optimizer_state(role.optimizer, param, dim, index)
    return reset


def output_columns(layer: NeuronLayer, index: torch.Tensor) -> torch.Tensor:
    """The activation outputs (= outgoing weight columns) that units ``index`` feed:
    i, i + width, ... (one per copy; CReLU has 2)."""
    return torch.cat([index + copy_index * layer.width for copy_index in range(layer.copies)])


def unit_scores(layer: NeuronLayer, score: torch.Tensor) -> torch.Tensor:
    """One score per unit (incoming row): per-output scores of a layer with ``copies``
    outputs per unit are folded by their maximum; per-unit scores pass through."""
    if layer.copies > 1 and score.shape == (layer.copies * layer.width,):
        return score.view(layer.copies, layer.width).amax(dim=0)
    return score


def _reinitialise_incoming(layer: NeuronLayer, index: torch.Tensor) -> list[tuple[nn.Parameter, int, torch.Tensor]]:
    incoming = layer.incoming
    fresh = torch.empty_like(incoming.weight)
    layer.init_weight(fresh)
    incoming.weight[index] = fresh[index]
    touched = [(incoming.weight, _ROWS, index)]
    if incoming.bias is not None:
        incoming.bias[index] = 0.0
        touched.append((incoming.bias, _ROWS, index))
    if layer.norm is not None:
        if layer.norm.weight is not None:
            layer.norm.weight[index] = 1.0
            touched.append((layer.norm.weight, _ROWS, index))
        if layer.norm.bias is not None:
            layer.norm.bias[index] = 0.0
            touched.append((layer.norm.bias, _ROWS, index))
    return touched


def concatenate_batches(sample_batch: Callable[[], Batch], size: int) -> Batch:
    """Exactly ``size`` samples, drawn with as many ``sample_batch()`` calls as needed."""
    parts: list[Batch] = []
    drawn = 0
    while drawn < size:
        part = sample_batch()
        if part.obs.shape[0] == 0:
            raise ValueError("sample_batch() returned an empty batch")
        parts.append(part)
        drawn += part.obs.shape[0]
    joined = parts[0] if len(parts) == 1 else Batch(*(torch.cat(fields) for fields in zip(*parts)))
    return Batch(*(field[:size] for field in joined))


class NeuronRecycler(Method):
    """Every ``period`` gradient updates, score each chosen role's hidden neurons on a fresh
    replay batch of ``batch_size`` samples and recycle those that ``select`` picks.

    Diagnostics, logged at every event per role and hidden layer: ``reset_neurons`` (how
    many were recycled) and ``reset_again_neurons`` (how many of those recycled at the
    previous event are picked again: a recycled unit that never recovers shows up here),
    besides the role's ``reset_fraction``.
    """

    owns_reset_schedule = True

    def __init__(self, tau: float, period: int, batch_size: int, roles: Any):
        self.tau = non_negative("tau", tau)
        self.period = positive_int("period", period)
        self.batch_size = positive_int("batch_size", batch_size)
        self.roles = role_names(roles)
        # role → layer → bool mask of the units recycled at the previous event
        self.previous: dict[str, dict[str, torch.Tensor]] = {}

    def scores(self, role: Role, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def first_action_updates(self) -> dict[str, int]:
        return {"period": self.period}

    def select(self, score: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the neurons of one layer to recycle."""
        return score <= self.tau

    def recycle(self, role: Role, masks: dict[str, torch.Tensor]) -> dict[str, int]:
        return recycle_neurons(role, masks)

    def after_update(
        self, roles: dict[str, Role], update_step: int, sample_batch: Callable[[], Batch]
    ) -> dict[str, float]:
        if update_step % self.period != 0:
            return {}
        chosen = chosen_roles(self.name, roles, self.roles)
        batch = concatenate_batches(sample_batch, self.batch_size)  # one batch for every role
        stats: dict[str, float] = {}
        for role_name in chosen:
            role = roles[role_name]
            layers = {layer.name: layer for layer in neuron_layers(role.network)}
            widths = {name: layer.width for name, layer in layers.items()}
            masks = {}
            for layer_name, score in self.scores(role, batch).items():
                if layer_name not in widths:
                    continue  # an activation no NeuronLayer describes: cannot be recycled
                score = unit_scores(layers[layer_name], score)
                if score.shape != (widths[layer_name],):
                    raise ValueError(
                        f"layer {layer_name!r} of role {role_name!r} has {widths[layer_name]} neurons "
                        f"but {score.numel()} scores; it cannot be recycled neuron by neuron"
                    )
                masks[layer_name] = self.select(score)
            reset = self.recycle(role, masks)
            total = sum(widths.values())
            stats[f"reset_fraction/{role_name}"] = sum(reset.values()) / total if total else 0.0
            previous = self.previous.get(role_name, {})
            for layer_name, mask in masks.items():
                stats[f"reset_neurons/{role_name}/{layer_name}"] = float(reset[layer_name])
                if layer_name in previous:
                    again = mask & previous[layer_name].to(mask.device)
                    stats[f"reset_again_neurons/{role_name}/{layer_name}"] = float(again.sum())
            self.previous[role_name] = {name: mask.detach().cpu() for name, mask in masks.items()}
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous = state["previous"]
