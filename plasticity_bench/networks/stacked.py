"""One network per seed, stacked: the same module tree whose Linear and LayerNorm layers hold
every seed's parameters along a leading seed axis and apply them with batched matmuls.

``stack_networks`` builds the stacked network from the seeds' own networks and makes each
seed's parameters views of the stacked ones (``param.data = stacked[s]``). So the seed's
ordinary network, which metrics hook and methods edit in place, always shows what the stack
trains, and a seed's numbers never mix with another's: every stacked operation acts per
seed (batched matmul, normalisation over the last axis, element-wise activations).

A network stacks when every module holding parameters is an nn.Linear or nn.LayerNorm and
no module holds buffers; the modules in between (activations, Sequential, residual blocks)
are reused as they are, so their forward must act on the last axis only, as ours do.
Anything else raises NotStackableError, and training/stack.py trains those seeds one by one.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class NotStackableError(ValueError):
    """A network, optimizer or method that the seed stack cannot batch; the message says why."""


def parameter(stacked: torch.Tensor) -> nn.Parameter:
    """The stacked tensor as a parameter that takes gradients when the seeds' do (a frozen
    layer stays frozen: nn.Parameter alone would make it trainable)."""
    return nn.Parameter(stacked, requires_grad=stacked.requires_grad)


class StackedLinear(nn.Module):
    """S Linear layers: weight [S, out, in], bias [S, out]; input [S, ..., in]."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = parameter(weight)
        self.bias = None if bias is None else parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.shape[1] == 1:
            # A one-output layer (a Q head) as a product and a sum over the last axis: a
            # batched matmul with one column takes another kernel when there is one seed,
            # whose rounding would make a seed's numbers depend on how many seeds it shares with.
            out = (x * self.weight.reshape(x.shape[0], *(1,) * (x.dim() - 2), -1)).sum(-1, keepdim=True)
            return out if self.bias is None else out + self.bias.reshape(x.shape[0], *(1,) * (x.dim() - 1))
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        if self.bias is None:
            out = torch.bmm(flat, self.weight.transpose(1, 2))
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], out.shape[-1])


class StackedLayerNorm(nn.Module):
    """S LayerNorms over the last axis: weight and bias [S, features]; input [S, ..., features]."""

    def __init__(self, weight: torch.Tensor | None, bias: torch.Tensor | None, shape: tuple[int, ...], eps: float):
        super().__init__()
        self.normalized_shape, self.eps = shape, eps
        self.weight = None if weight is None else parameter(weight)
        self.bias = None if bias is None else parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.normalized_shape, None, None, self.eps)
        middle = (1,) * (x.dim() - 1 - len(self.normalized_shape))  # broadcast over the batch axes
        if self.weight is not None:
            y = y * self.weight.reshape(self.weight.shape[0], *middle, *self.normalized_shape)
        if self.bias is not None:
            y = y + self.bias.reshape(self.bias.shape[0], *middle, *self.normalized_shape)
        return y


def stack_tensors(tensors: list[torch.Tensor], requires_grad: bool) -> torch.Tensor:
    """A new leaf [S, ...] holding ``tensors``, which become views of it (same objects)."""
    stacked = torch.stack([t.detach() for t in tensors]).requires_grad_(requires_grad)
    for index, tensor in enumerate(tensors):
        tensor.data = stacked.data[index]
    return stacked


def _stacked_layer(layers: list[nn.Module]) -> nn.Module:
    first = layers[0]
    if type(first) is nn.Linear:
        weight = stack_tensors([layer.weight for layer in layers], first.weight.requires_grad)
        bias = None if first.bias is None else stack_tensors([layer.bias for layer in layers], first.bias.requires_grad)
        return StackedLinear(weight, bias)
    if type(first) is nn.LayerNorm:
        weight = None if first.weight is None else stack_tensors([layer.weight for layer in layers], first.weight.requires_grad)
        bias = None if first.bias is None else stack_tensors([layer.bias for layer in layers], first.bias.requires_grad)
        return StackedLayerNorm(weight, bias, tuple(first.normalized_shape), first.eps)
    raise AssertionError(type(first))


def check_stackable(network: nn.Module) -> None:
    """Raise NotStackableError naming the first module the stack cannot batch."""
    for name, module in network.named_modules():
        if any(buffer is not None for buffer in module._buffers.values()):
            raise NotStackableError(f"{type(module).__name__} {name or '(root)'} holds buffers")
        if type(module) in (nn.Linear, nn.LayerNorm):
            continue
        if any(param is not None for param in module._parameters.values()):
            raise NotStackableError(f"{type(module).__name__} {name or '(root)'} holds parameters of its own")
        if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
            raise NotStackableError(f"{type(module).__name__} {name or '(root)'} has hooks (a method's)")


def stack_networks(networks: list[nn.Module]) -> nn.Module:
    """The stacked network of ``networks`` (same structure, one per seed); each network's
    parameters become views of it. Raises NotStackableError before changing anything."""
    for network in networks:
        check_stackable(network)
    structures = {tuple((name, type(m)) for name, m in network.named_modules()) for network in networks}
    shapes = {tuple((name, p.shape) for name, p in network.named_parameters()) for network in networks}
    if len(structures) != 1 or len(shapes) != 1:
        raise NotStackableError("the seeds' networks differ in structure")
    # One stacked parameter takes gradients for every seed or for none (a method may freeze a layer).
    if len({tuple(p.requires_grad for p in network.parameters()) for network in networks}) != 1:
        raise NotStackableError("the seeds' networks differ in which parameters are frozen")
    stacked = copy.deepcopy(networks[0])
    for name, module in list(stacked.named_modules()):
        if type(module) in (nn.Linear, nn.LayerNorm):
            parent_name, _, child = name.rpartition(".")
            parent = stacked.get_submodule(parent_name) if parent_name else stacked
            layer = _stacked_layer([network.get_submodule(name) for network in networks])
            if not parent_name and not child:
                raise NotStackableError("a bare Linear or LayerNorm is not a network")
            setattr(parent, child, layer)
    return stacked
