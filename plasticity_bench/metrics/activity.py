"""Neuron-level activity of any ``nn.Module`` whose activations are modules.

One hook-based probe serves every activity metric: during a single forward (and, for
GraMa, a single backward) it records, per hidden activation module and per neuron,

- ``E_x |h_i(x)|``          (ReDo's dormant score, Sokar et al. 2023),
- ``E_x |dL/dh_i(x)|``      (GraMa, Liu et al. 2025; h is the activation's OUTPUT),
- ``E_x 1[h_i(x) > 0]``     (fraction of active units).

Scores are normalised by their layer mean: ``s_i = m_i / (mean_k m_k + 1e-9)``.

Neuron axis: the last dim of a 2-D output (batch, neurons); for outputs with more than
two dims (conv: batch, channels, ...) dim 1, averaging over all the others.

Shared activation modules: a module called several times in one forward contributes
every call's samples, as if the calls' outputs were concatenated along the batch. For
GraMa a call made without gradient (e.g. a bootstrap target under ``torch.no_grad``)
contributes zero gradients; as the score is normalised by the layer mean this equals
ignoring those samples, unless no call of the layer is differentiable (then all 0).

Side effects: hooks exist only during the call; the network runs in eval mode during the
probe (so BatchNorm running statistics and dropout masks are not disturbed by a
measurement) and every submodule's train/eval flag is restored afterwards; gradients are
taken with ``torch.autograd.grad`` w.r.t. the captured activation outputs, so no
parameter's ``.grad`` (of this network or any other module used inside the loss) changes.

``probe`` is the full form of the same pass: besides the activity statistics it can keep
each hidden layer's outputs (the features that rank.py and norms.py measure), the inputs
of each body's output layer (the penultimate features) and the gradient of the loss w.r.t.
given parameters, all from the one forward and the one backward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from plasticity_bench.networks.layers import is_activation

EPSILON = 1e-9


@dataclass
class LayerActivity:
    """Per-neuron statistics of one activation module, each a 1-D tensor of length H.

    ``grama`` and ``dormant`` are normalised scores; ``active`` is the fraction of samples
    (and positions, for conv) with a positive output. ``grama`` is None when the probe ran
    without a loss.
    """

    dormant: torch.Tensor
    active: torch.Tensor
    grama: torch.Tensor | None = None


def normalise(mean_magnitude: torch.Tensor) -> torch.Tensor:
    """``m_i / (mean_k m_k + 1e-9)``, the normalisation shared by ReDo and GraMa."""
    return mean_magnitude / (mean_magnitude.mean() + EPSILON)


def _per_neuron_sum(values: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum over every dim but the neuron axis, and how many entries each neuron summed."""
    values = values.float()
    if values.dim() == 0:
        raise ValueError("an activation produced a scalar; it has no neuron axis")
    if values.dim() == 1:  # an unbatched call: one sample
        return values, 1
    if values.dim() == 2:
        return values.sum(dim=0), values.shape[0]
    moved = values.transpose(0, 1).reshape(values.shape[1], -1)
    return moved.sum(dim=1), moved.shape[1]


@dataclass
class _Record:
    """What the hooks gathered for one activation module, across all its calls."""

    abs_sum: torch.Tensor | None = None
    positive_sum: torch.Tensor | None = None
    count: int = 0
    outputs: list[torch.Tensor] = field(default_factory=list)  # kept only for gradients
    features: list[torch.Tensor] = field(default_factory=list)  # (samples, features), kept on request
    last_output: torch.Tensor | None = None  # what the latest call passed on, to name penultimate inputs

    def add(self, output: torch.Tensor) -> None:
        abs_sum, count = _per_neuron_sum(output.abs())
        positive_sum, _ = _per_neuron_sum(output > 0)
        if self.abs_sum is not None and abs_sum.shape != self.abs_sum.shape:
            raise ValueError(
                f"a shared activation module produced {abs_sum.shape[0]} neurons in one call and "
                f"{self.abs_sum.shape[0]} in another; its calls cannot be pooled"
            )
        self.abs_sum = abs_sum if self.abs_sum is None else self.abs_sum + abs_sum
        self.positive_sum = positive_sum if self.positive_sum is None else self.positive_sum + positive_sum
        self.count += count


@contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _as_sample_rows(values: torch.Tensor) -> torch.Tensor:
    """(samples, features): one row per sample, every other dim flattened (conv: C*H*W)."""
    values = values.detach()
    if values.dim() <= 1:
        return values.reshape(1, -1).clone()
    return values.reshape(values.shape[0], -1).clone()  # clone: later in-place ops cannot alter it


@contextmanager
def _activation_hooks(net: nn.Module, keep_outputs: bool, keep_features: bool = False) -> Iterator[dict[str, _Record]]:
    """Records per activation module, inserted in order of first call (forward order)."""
    records: dict[str, _Record] = {}
    handles = []

    def make_hook(name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"activation module {name!r} returned {type(output).__name__}, not a Tensor")
            record = records.setdefault(name, _Record())
            replaced = None
            if keep_outputs and torch.is_grad_enabled():
                if not output.requires_grad:
                    # Nothing upstream needs a gradient (e.g. frozen parameters): make the
                    # output a leaf so dL/dh is still defined; this cuts no existing graph.
                    replaced = output.detach().requires_grad_(True)
                    output = replaced
                record.outputs.append(output)
            record.add(output.detach())
            if keep_features:
                record.features.append(_as_sample_rows(output))
                record.last_output = output
            return replaced

        return hook

    try:
        for name, module in net.named_modules():
            if is_activation(module):
                handles.append(module.register_forward_hook(make_hook(name)))
        yield records
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class ProbeResult:
    """Everything one probe pass measured.

    ``activity``: activation name → LayerActivity, in forward-execution order.
    ``features``: activation name → (samples, neurons) detached outputs of every call,
    concatenated along the samples (kept only with ``keep_features``; conv outputs are
    flattened per sample).
    ``penultimate``: name → (samples, features) inputs of each body's output layer (see
    ``output_layers``), every call concatenated; named by the activation module whose
    output it is, else ``"<output layer>:input"`` (e.g. a residual stream after its final
    LayerNorm). Kept only with ``keep_features``.
    ``parameter_gradients``: dL/dtheta for each tensor of ``parameters``, in order; a
    parameter that does not require grad or does not reach the loss gets None.
    """

    activity: dict[str, LayerActivity]
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    penultimate: dict[str, torch.Tensor] = field(default_factory=dict)
    parameter_gradients: list[torch.Tensor | None] | None = None


def output_layers(net: nn.Module, prefix: str = "") -> dict[str, nn.Linear]:
    """The output layer of each body of ``net``: name → the body's last ``nn.Linear``.

    A body is an outermost submodule (or ``net`` itself) that lists its neuron layers
    (``neuron_layers``: MLP, ResidualNet, ...), so a module holding several networks (SAC's
    TwinQ with q1 and q2) has one output layer per network. A network built of no such
    body is one body. "Last" is in definition order, which is forward order for every
    body of this package (Linear → ... → output Linear).
    """
    if hasattr(net, "neuron_layers") or not any(hasattr(m, "neuron_layers") for m in net.modules()):
        linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
        return {f"{prefix}{linears[-1][0]}": linears[-1][1]} if linears else {}
    found: dict[str, nn.Linear] = {}
    for name, child in net.named_children():
        found.update(output_layers(child, f"{prefix}{name}."))
    return found


@contextmanager
def _penultimate_hooks(net: nn.Module, records: dict[str, _Record]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Capture the input of each output layer, named by the activation that produced it."""
    captured: dict[str, list[torch.Tensor]] = {}
    handles = []

    def make_hook(layer_name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any) -> None:
            features = args[0]
            source = next((name for name, record in records.items() if record.last_output is features),
                          f"{layer_name}:input")
            captured.setdefault(source, []).append(_as_sample_rows(features))

        return hook

    try:
        for name, layer in output_layers(net).items():
            handles.append(layer.register_forward_pre_hook(make_hook(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _concatenate(name: str, parts: list[torch.Tensor]) -> torch.Tensor:
    if len({part.shape[1] for part in parts}) > 1:
        raise ValueError(f"{name!r} produced features of different widths in one forward; they cannot be pooled")
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def probe(
    net: nn.Module,
    *,
    inputs: Any = None,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    batch: Any = None,
    keep_features: bool = False,
    parameters: list[torch.Tensor] | None = None,
) -> ProbeResult:
    """One probe pass over ``net``; the building block of every activity and feature metric.

    With ``loss_fn``: one forward through ``loss_fn(net, batch)`` and one backward, to the
    activation outputs and to ``parameters`` together (``torch.autograd.grad``: no .grad
    changes). Without: one forward ``net(*inputs)`` (or ``net(inputs)`` if not a tuple)
    under ``torch.no_grad`` (then ``parameters`` must be None). ``keep_features`` fills
    ``features`` and ``penultimate``. The side effects are those of the module doc: none.
    """
    with_loss = loss_fn is not None
    if with_loss == (inputs is not None):
        raise ValueError("probe takes either loss_fn and batch, or inputs")
    if parameters is not None and not with_loss:
        raise ValueError("parameter gradients need loss_fn")
    penultimate_parts: dict[str, list[torch.Tensor]] = {}
    parameter_gradients = None
    with _eval_mode(net), _activation_hooks(net, keep_outputs=with_loss, keep_features=keep_features) as records:
        with _penultimate_hooks(net, records) if keep_features else nullcontext({}) as penultimate_parts:
            if with_loss:
                with torch.enable_grad():
                    loss = loss_fn(net, batch)
                    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                        raise ValueError("loss_fn must return a scalar tensor")
                    grads, parameter_gradients = _gradients(loss.reshape(()), records, parameters)
            else:
                with torch.no_grad():
                    net(*inputs) if isinstance(inputs, tuple) else net(inputs)

    activity: dict[str, LayerActivity] = {}
    features: dict[str, torch.Tensor] = {}
    for name, record in records.items():
        assert record.abs_sum is not None and record.positive_sum is not None
        grama = None
        if with_loss:
            grad_sum = torch.zeros_like(record.abs_sum)
            for grad in grads[name]:
                if grad is not None:
                    grad_sum = grad_sum + _per_neuron_sum(grad.detach().abs())[0]
            grama = normalise(grad_sum / record.count)
        activity[name] = LayerActivity(
            dormant=normalise(record.abs_sum / record.count),
            active=record.positive_sum / record.count,
            grama=grama,
        )
        if record.features:
            features[name] = _concatenate(name, record.features)
        record.features.clear()
        record.last_output = None
    penultimate = {name: _concatenate(name, parts) for name, parts in penultimate_parts.items()}
    return ProbeResult(activity, features, penultimate, parameter_gradients)


def probe_activity(
    net: nn.Module,
    *,
    inputs: Any = None,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    batch: Any = None,
) -> dict[str, LayerActivity]:
    """One probe pass over ``net``; the building block of every activity metric.

    With ``loss_fn``: one forward through ``loss_fn(net, batch)`` and one backward to the
    activation outputs, giving ``grama``, ``dormant`` and ``active`` from the same samples.
    Without: one forward ``net(*inputs)`` (or ``net(inputs)`` if not a tuple) under
    ``torch.no_grad``, giving ``dormant`` and ``active`` only.

    Returns activation-module qualified name → LayerActivity, in forward-execution order
    (activation modules that the forward never calls are absent).
    """
    if (loss_fn is not None) == (inputs is not None):
        raise ValueError("probe_activity takes either loss_fn and batch, or inputs")
    return probe(net, inputs=inputs, loss_fn=loss_fn, batch=batch).activity


def _gradients(
    loss: torch.Tensor, records: dict[str, _Record], parameters: list[torch.Tensor] | None
) -> tuple[dict[str, list[torch.Tensor | None]], list[torch.Tensor | None] | None]:
    """dL/dh for every captured differentiable output (None where h does not reach L) and
    dL/dtheta for ``parameters``, from one backward."""
    names, outputs = [], []
    for name, record in records.items():
        for output in record.outputs:
            if output.requires_grad:
                names.append(name)
                outputs.append(output)
    trainable = [i for i, p in enumerate(parameters or []) if p.requires_grad]
    grads: dict[str, list[torch.Tensor | None]] = {name: [] for name in records}
    parameter_gradients = None if parameters is None else [None] * len(parameters)
    wanted = outputs + [parameters[i] for i in trainable]  # type: ignore[index]
    if wanted and loss.requires_grad:
        found = torch.autograd.grad(loss, wanted, allow_unused=True)
        for name, grad in zip(names, found[: len(outputs)]):
            grads[name].append(grad)
        for i, grad in zip(trainable, found[len(outputs):]):
            parameter_gradients[i] = grad  # type: ignore[index]
    for record in records.values():
        record.outputs.clear()  # release the graph's tensors
    return grads, parameter_gradients


def grama_scores(net: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batch: Any) -> dict[str, torch.Tensor]:
    """GraMa score per neuron: ``G_i = E_x|dL/dh_i(x)| / (mean_k E_x|dL/dh_k(x)| + 1e-9)``.

    ``loss_fn(net, batch)`` returns the scalar training loss; h are the outputs of the
    hidden activation modules. Returns name → 1-D tensor (H,), in forward order.
    """
    return {name: layer.grama for name, layer in probe_activity(net, loss_fn=loss_fn, batch=batch).items()}


def dormant_scores(net: nn.Module, inputs: Any) -> dict[str, torch.Tensor]:
    """ReDo score per neuron: ``s_i = E_x|h_i(x)| / (mean_k E_x|h_k(x)| + 1e-9)``.

    The forward is ``net(*inputs)`` if ``inputs`` is a tuple, else ``net(inputs)``.
    Returns name → 1-D tensor (H,), in forward order.
    """
    return {name: layer.dormant for name, layer in probe_activity(net, inputs=inputs).items()}


def inactive_ratio_per_layer(scores: dict[str, torch.Tensor], tau: float) -> dict[str, float]:
    """Per layer: fraction of its neurons with score <= tau."""
    return {name: float((score <= tau).float().mean()) for name, score in scores.items()}


def inactive_ratio(scores: dict[str, torch.Tensor], tau: float) -> float:
    """Fraction of all neurons of the network with score <= tau (neuron-weighted over layers)."""
    if not scores:
        raise ValueError("no scores: the network has no hidden activation module that ran")
    return float((torch.cat([score.flatten() for score in scores.values()]) <= tau).float().mean())


def active_fraction_per_layer(net: nn.Module, inputs: Any) -> dict[str, float]:
    """Per layer: mean over batch and neurons of 1[h > 0]."""
    return {name: float(layer.active.mean()) for name, layer in probe_activity(net, inputs=inputs).items()}


def active_fraction(net: nn.Module, inputs: Any) -> float:
    """Mean over batch and all hidden neurons of the network of 1[h > 0]."""
    activity = probe_activity(net, inputs=inputs)
    if not activity:
        raise ValueError("no activity: the network has no hidden activation module that ran")
    return float(torch.cat([layer.active for layer in activity.values()]).mean())
