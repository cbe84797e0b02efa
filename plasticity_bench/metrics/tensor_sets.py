"""Which tensors a network's activity ratios are taken on: a declared axis of the metrics.

In a plain MLP "the neurons" are the hidden activations' outputs, and every paper means the
same thing. In a residual network they are not: the tau-dormant ratio of a BRO critic is
about 3% on the ReLU inside each block, 0% on the block outputs (x + LayerNorm(...)) and 5%
on the set the GraMa paper's released code scores, and GraMa minus dormant changes sign
between them. So every activity metric names its tensor set, and every claim states one:

- ``inner`` (the default; the metric names without a suffix): each hidden activation
  module's output h for the dormant score and its input z (the pre-activation) for GraMa:
  ``metrics/activity.py``.
- ``block_out``: the residual stream after each residual block (``x + LN(...)`` in BRO,
  ``x + Dense(...)`` in SimBa). Dormant score from ``E|y_i|``, GraMa from ``E|dL/dy_i|`` per
  sample. Networks without residual blocks have no such tensors and log no rows.
- ``released_all``: what the released GraMa/ReDo code scores: the output of every
  ``nn.Linear`` and ``nn.LayerNorm`` of the network, output layers included. Its dormant score
  is ``E|relu(y_i)|`` (the released code applies ReLU to each of them), its GraMa score the
  released one: the mean over unit i's incoming weight row of ``|dL/dW|`` for a Linear,
  ``|dL/dgamma_i|`` for a LayerNorm (batch-mean gradients, not per sample).

Scores are normalised by their layer's mean (``activity.normalise``), as ReDo and GraMa
normalise. Metric keys carry the set: ``dormant_ratio:block_out@0.1``,
``grama_inactive_ratio:block_out@0.01``, ``dormant_ratio:released_all@0.1``,
``grama_released_inactive_ratio:released_all@0.01`` (``monitor.py``).

Like ``activity.probe`` this leaves the network as it found it: hooks exist only during
the call, eval mode is restored, gradients come from ``torch.autograd.grad`` (no ``.grad``
changes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from plasticity_bench.metrics.activity import (_eval_mode, _mean_gradient_magnitude, _per_neuron_sum, normalise,
                                               released_score)
from plasticity_bench.networks.residual import ResidualNet

TENSOR_SETS = ("inner", "block_out", "released_all")
EXTRA_TENSOR_SETS = TENSOR_SETS[1:]  # the sets tensor_set_scores measures (inner is activity.probe's)


def check_tensor_set(name: str) -> str:
    if name not in TENSOR_SETS:
        raise ValueError(f"unknown tensor set {name!r}; valid: {', '.join(TENSOR_SETS)}")
    return name


def residual_blocks(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every residual block of ``net`` (its ResidualNets' ``blocks`` entries), in order."""
    found = []
    for name, module in net.named_modules():
        if isinstance(module, ResidualNet):
            found += [(f"{name}.blocks.{index}" if name else f"blocks.{index}", block)
                      for index, block in enumerate(module.blocks)]
    return found


def released_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every nn.Linear and nn.LayerNorm of ``net`` (with an affine gain), in definition order."""
    return [(name, module) for name, module in net.named_modules()
            if isinstance(module, nn.Linear) or (isinstance(module, nn.LayerNorm) and module.weight is not None)]


def tensor_set_scores(net: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batch: Any,
                      tensor_set: str) -> dict[str, dict[str, torch.Tensor]]:
    """Per-neuron scores on ``tensor_set`` (``block_out`` or ``released_all``): tensor name →
    {"dormant": ..., "grama": ...} (``block_out``; GraMa from per-sample |dL/dy|) or
    {"dormant": ..., "grama_released": ...} (``released_all``), each a normalised 1-D tensor,
    from one forward ``loss_fn(net, batch)`` and one backward. Empty when the set has no
    tensors in ``net``."""
    if check_tensor_set(tensor_set) == "inner":
        raise ValueError("the inner set is measured by metrics.activity.probe")
    modules = residual_blocks(net) if tensor_set == "block_out" else released_modules(net)
    if not modules:
        return {}
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name, _ in modules}

    def make_hook(name: str):
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            outputs[name].append(output)
        return hook

    handles = [module.register_forward_hook(make_hook(name)) for name, module in modules]
    parameters = [module.weight for _, module in modules] if tensor_set == "released_all" else []
    try:
        with _eval_mode(net), torch.enable_grad():
            loss = loss_fn(net, batch).reshape(())
            differentiable = [out for values in outputs.values() for out in values if out.requires_grad]
            wanted = differentiable if tensor_set == "block_out" else [p for p in parameters if p.requires_grad]
            found = torch.autograd.grad(loss, wanted, allow_unused=True) if wanted and loss.requires_grad else []
    finally:
        for handle in handles:
            handle.remove()
    gradient_of = {id(tensor): grad for tensor, grad in zip(wanted, found)} if found else {}

    activation = (lambda y: y.clamp(min=0)) if tensor_set == "released_all" else (lambda y: y)
    scores: dict[str, dict[str, torch.Tensor]] = {}
    for index, (name, _) in enumerate(modules):
        calls = outputs[name]
        if not calls:
            continue  # a module this loss never runs (e.g. an unused head)
        sums = [_per_neuron_sum(activation(out.detach()).abs()) for out in calls]
        count = sum(n for _, n in sums)
        entry = {"dormant": normalise(sum(s for s, _ in sums) / count)}
        if tensor_set == "block_out":
            # A zero first: a block none of whose calls reaches the loss scores zeros.
            gradients = [torch.zeros_like(calls[0].detach())] + [gradient_of.get(id(out)) for out in calls]
            entry["grama"] = normalise(_mean_gradient_magnitude(gradients, count))
        else:
            param = parameters[index]
            entry["grama_released"] = released_score(param, gradient_of.get(id(param)))
        scores[name] = entry
    return scores
