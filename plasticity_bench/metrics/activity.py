"""Neuron-level activity of any ``nn.Module`` whose activations are modules.

One hook-based probe serves every activity metric: during a single forward (and, for
GraMa, a single backward) it records, per hidden activation module and per neuron,

- ``E_x |h_i(x)|``          (ReDo's dormant score, Sokar et al. 2023; h = the activation's output),
- ``E_x |dL/dz_i(x)|``      (GraMa, Liu et al. 2025; z = the activation's INPUT, the pre-activation),
- ``E_x 1[h_i(x) > 0]``     (fraction of active units).

Scores are normalised by their layer mean: ``s_i = m_i / (mean_k m_k + 1e-9)``.

Which gradient GraMa takes (docs/science.md gives the decision and why): by default the
pre-activation's, ``dL/dz = sigma'(z) * dL/dh``, after the LayerNorm where a layer has one.
It is zero for a dead ReLU unit, ~0 for a saturated tanh/sigmoid unit and for a unit a
LayerNorm shift has killed, so every neuron ReDo flags at tau = 0 in a ReLU net GraMa flags
too (the paper's proposition). Two variants, for ablations and reproduction:
``output`` takes ``dL/dh`` (the paper's notation read literally; a dead ReLU unit's
``dL/dh = W_out^T delta`` is not zero, so it flags no dead unit), and ``released`` is the
released code's score: the mean over a unit's incoming weight row of ``|dL/dW|`` (the
batch-mean gradient), or ``|dL/dgamma|`` for a layer with a LayerNorm (the setting of the
paper's Table 8; only layers that ``networks.layers.neuron_layers`` describes get it).

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

from plasticity_bench.networks.layers import NeuronLayer, is_activation, neuron_layers

EPSILON = 1e-9
GRAMA_VARIANTS = ("pre_activation", "output", "released")
# Where each hook-based variant takes its gradient: the activation module's input or output.
_GRADIENT_POINTS = {"pre_activation": "input", "output": "output"}


def check_grama_variant(variant: str) -> str:
    if variant not in GRAMA_VARIANTS:
        raise ValueError(f"unknown GraMa variant {variant!r}; valid: {', '.join(GRAMA_VARIANTS)}")
    return variant


@dataclass
class LayerActivity:
    """Per-neuron statistics of one activation module, each a 1-D tensor of length H.

    ``dormant`` and the GraMa scores are normalised; ``active`` is the fraction of samples
    (and positions, for conv) with a positive output. ``grama_variants`` holds a score per
    GraMa variant the probe computed (empty without a loss); ``grama`` is the default
    variant's (pre-activation), or the first computed one. A layer with ``copies`` outputs
    per unit (CReLU) has 2H dormant/active entries but H pre-activation and released GraMa
    entries, one per unit.
    """

    dormant: torch.Tensor
    active: torch.Tensor
    grama_variants: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def grama(self) -> torch.Tensor | None:
        return self.grama_variants.get(GRAMA_VARIANTS[0], next(iter(self.grama_variants.values()), None))


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
    # Tensors to differentiate the loss by, per gradient point ("input" / "output"), every call.
    gradient_points: dict[str, list[torch.Tensor]] = field(default_factory=dict)
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


def _differentiable(value: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``value`` itself when the loss can be differentiated by it; else (nothing upstream
    needs a gradient, e.g. frozen parameters) a leaf copy that requires grad, which the
    forward then uses instead, so the gradient is still defined. No existing graph is cut."""
    if value.requires_grad:
        return value, False
    return value.detach().requires_grad_(True), True


@contextmanager
def _activation_hooks(net: nn.Module, gradient_points: tuple[str, ...] = (),
                      keep_features: bool = False) -> Iterator[dict[str, _Record]]:
    """Records per activation module, inserted in order of first call (forward order).

    ``gradient_points``: keep the activation's "input" (pre-activation) and/or "output" of
    every differentiable call, to take the loss's gradient by them afterwards."""
    records: dict[str, _Record] = {}
    handles = []

    def make_pre_hook(name: str) -> Callable[..., Any]:
        def pre_hook(module: nn.Module, args: Any) -> Any:
            if not args or not isinstance(args[0], torch.Tensor):
                return None
            # A call without gradient (e.g. a bootstrap target) is kept too, detached: it
            # contributes zeros, and gives the layer a score of zeros if no call has one.
            pre_activation, replaced = _differentiable(args[0]) if torch.is_grad_enabled() else (args[0].detach(), False)
            records.setdefault(name, _Record()).gradient_points.setdefault("input", []).append(pre_activation)
            return (pre_activation, *args[1:]) if replaced else None

        return pre_hook

    def make_hook(name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"activation module {name!r} returned {type(output).__name__}, not a Tensor")
            record = records.setdefault(name, _Record())
            result = None
            if "output" in gradient_points:
                output, replaced = _differentiable(output) if torch.is_grad_enabled() else (output.detach(), False)
                result = output if replaced else None
                record.gradient_points.setdefault("output", []).append(output)
            record.add(output.detach())
            if keep_features:
                record.features.append(_as_sample_rows(output))
                record.last_output = output
            return result

        return hook

    try:
        for name, module in net.named_modules():
            if is_activation(module):
                if "input" in gradient_points:
                    handles.append(module.register_forward_pre_hook(make_pre_hook(name)))
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
    grama_variants: tuple[str, ...] = ("pre_activation",),
) -> ProbeResult:
    """One probe pass over ``net``; the building block of every activity and feature metric.

    With ``loss_fn``: one forward through ``loss_fn(net, batch)`` and one backward, to what
    each of ``grama_variants`` needs (pre-activations, activation outputs, neuron layers'
    weights) and to ``parameters`` together (``torch.autograd.grad``: no .grad changes).
    Without: one forward ``net(*inputs)`` (or ``net(inputs)`` if not a tuple) under
    ``torch.no_grad`` (then ``parameters`` must be None). ``keep_features`` fills
    ``features`` and ``penultimate``. The side effects are those of the module doc: none.
    """
    with_loss = loss_fn is not None
    if with_loss == (inputs is not None):
        raise ValueError("probe takes either loss_fn and batch, or inputs")
    if parameters is not None and not with_loss:
        raise ValueError("parameter gradients need loss_fn")
    for variant in grama_variants:
        check_grama_variant(variant)
    variants = grama_variants if with_loss else ()
    points = tuple(dict.fromkeys(_GRADIENT_POINTS[v] for v in variants if v in _GRADIENT_POINTS))
    released_layers = neuron_layers(net) if "released" in variants else []
    released_params = [_released_parameter(layer) for layer in released_layers]
    penultimate_parts: dict[str, list[torch.Tensor]] = {}
    parameter_gradients = None
    with _eval_mode(net), _activation_hooks(net, points, keep_features) as records:
        with _penultimate_hooks(net, records) if keep_features else nullcontext({}) as penultimate_parts:
            if with_loss:
                with torch.enable_grad():
                    loss = loss_fn(net, batch)
                    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                        raise ValueError("loss_fn must return a scalar tensor")
                    grads, gradients = _gradients(loss.reshape(()), records, list(parameters or []) + released_params)
                parameter_gradients = None if parameters is None else gradients[: len(parameters)]
                released = _released_scores(released_layers, released_params, gradients[len(parameters or []):])
            else:
                with torch.no_grad():
                    net(*inputs) if isinstance(inputs, tuple) else net(inputs)

    activity: dict[str, LayerActivity] = {}
    features: dict[str, torch.Tensor] = {}
    for name, record in records.items():
        assert record.abs_sum is not None and record.positive_sum is not None
        scores: dict[str, torch.Tensor] = {}
        for variant in variants:
            if variant in _GRADIENT_POINTS:
                scores[variant] = normalise(_mean_gradient_magnitude(grads[name][_GRADIENT_POINTS[variant]],
                                                                     record.count))
            elif name in released:
                scores[variant] = released[name]
        activity[name] = LayerActivity(
            dormant=normalise(record.abs_sum / record.count),
            active=record.positive_sum / record.count,
            grama_variants=scores,
        )
        if record.features:
            features[name] = _concatenate(name, record.features)
        record.features.clear()
        record.last_output = None
    penultimate = {name: _concatenate(name, parts) for name, parts in penultimate_parts.items()}
    return ProbeResult(activity, features, penultimate, parameter_gradients)


def _mean_gradient_magnitude(gradients: list[torch.Tensor | None], count: int) -> torch.Tensor:
    """``E_x |g_i(x)|`` per neuron over every call's samples; a call whose tensor does not
    reach the loss (None) contributes zeros, as do calls made without gradient (``_gradients``
    puts a zero tensor first, so the sum has the layer's width even when nothing reached it)."""
    return sum(_per_neuron_sum(g.detach().abs())[0] for g in gradients if g is not None) / count


def _released_parameter(layer: NeuronLayer) -> torch.Tensor:
    """The tensor whose gradient the released code scores a unit by: the LayerNorm gain
    where the layer has one, else the incoming weight."""
    if layer.norm is not None and layer.norm.weight is not None:
        return layer.norm.weight
    return layer.incoming.weight


def _released_scores(layers: list[NeuronLayer], params: list[torch.Tensor],
                     gradients: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
    """Per unit: |dL/dgamma_i|, or the mean over incoming row i of |dL/dW|; layer-normalised."""
    return {layer.name: released_score(param, gradient) for layer, param, gradient in zip(layers, params, gradients)}


def released_score(param: torch.Tensor, gradient: torch.Tensor | None) -> torch.Tensor:
    """The released code's per-unit score from ``dL/dparam`` (None: no gradient reached it):
    |dL/dgamma_i| for a 1-D gain, the mean over incoming row i of |dL/dW| for a weight;
    layer-normalised."""
    gradient = torch.zeros_like(param) if gradient is None else gradient.detach()
    return normalise(gradient.abs() if gradient.dim() == 1 else gradient.abs().mean(dim=1))


def probe_activity(
    net: nn.Module,
    *,
    inputs: Any = None,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    batch: Any = None,
    grama_variants: tuple[str, ...] = ("pre_activation",),
) -> dict[str, LayerActivity]:
    """One probe pass over ``net``; the building block of every activity metric.

    With ``loss_fn``: one forward through ``loss_fn(net, batch)`` and one backward, giving
    the GraMa scores of ``grama_variants``, ``dormant`` and ``active`` from the same samples.
    Without: one forward ``net(*inputs)`` (or ``net(inputs)`` if not a tuple) under
    ``torch.no_grad``, giving ``dormant`` and ``active`` only.

    Returns activation-module qualified name → LayerActivity, in forward-execution order
    (activation modules that the forward never calls are absent).
    """
    if (loss_fn is not None) == (inputs is not None):
        raise ValueError("probe_activity takes either loss_fn and batch, or inputs")
    return probe(net, inputs=inputs, loss_fn=loss_fn, batch=batch, grama_variants=grama_variants).activity


def _gradients(
    loss: torch.Tensor, records: dict[str, _Record], parameters: list[torch.Tensor]
) -> tuple[dict[str, dict[str, list[torch.Tensor | None]]], list[torch.Tensor | None]]:
    """dL/d(point) for every captured differentiable pre-activation / output, per record and
    gradient point (None where it does not reach L), and dL/dtheta for ``parameters`` (None
    for one that does not require grad or reach L), from one backward."""
    keys, tensors = [], []
    grads: dict[str, dict[str, list[torch.Tensor | None]]] = {}
    for name, record in records.items():
        # A zero tensor first: a layer none of whose calls reaches the loss scores zeros.
        grads[name] = {point: [torch.zeros_like(values[0].detach())] for point, values in
                       record.gradient_points.items()}
        for point, values in record.gradient_points.items():
            for value in values:
                if value.requires_grad:
                    keys.append((name, point))
                    tensors.append(value)
    trainable = [i for i, p in enumerate(parameters) if p.requires_grad]
    parameter_gradients: list[torch.Tensor | None] = [None] * len(parameters)
    wanted = tensors + [parameters[i] for i in trainable]
    if wanted and loss.requires_grad:
        found = torch.autograd.grad(loss, wanted, allow_unused=True)
        for (name, point), grad in zip(keys, found[: len(tensors)]):
            grads[name][point].append(grad)
        for i, grad in zip(trainable, found[len(tensors):]):
            parameter_gradients[i] = grad
    for record in records.values():
        record.gradient_points.clear()  # release the graph's tensors
    return grads, parameter_gradients


def grama_scores(net: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batch: Any,
                 variant: str = "pre_activation") -> dict[str, torch.Tensor]:
    """GraMa score per neuron: ``G_i = E_x|dL/dz_i(x)| / (mean_k E_x|dL/dz_k(x)| + 1e-9)``.

    ``loss_fn(net, batch)`` returns the scalar training loss; z are the inputs of the hidden
    activation modules (the pre-activations; ``variant="output"``: their outputs h;
    ``"released"``: the released code's weight-gradient score, see the module doc).
    Returns name → 1-D tensor, in forward order.
    """
    activity = probe_activity(net, loss_fn=loss_fn, batch=batch, grama_variants=(check_grama_variant(variant),))
    return {name: layer.grama_variants[variant] for name, layer in activity.items() if variant in layer.grama_variants}


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
