"""The bottom layer of the training engine: what a replay sample is (``Batch``), what a
loss function is (``LossFn``) and what one trained network of an agent is (``Role``). Agents
build them; the replay buffer, the metrics, the methods and the trainer read them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


class Batch(NamedTuple):
    """A replay sample; first dimension is the batch. ``terminations`` is 1.0 only when the
    episode truly ended (not on time-limit truncation), so TD targets bootstrap otherwise."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


LossFn = Callable[[nn.Module, Batch], torch.Tensor]



@dataclass
class Role:
    """One trained network of an agent, seen through the narrow interface that metrics and
    methods use: the module, its optimizer, the loss it is trained on, and how a replay
    batch becomes the module's forward inputs. ``targets`` are the agent's target copies of
    this network (same structure), which methods that reset or restructure the network
    keep consistent."""

    network: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    forward_inputs: Callable[[Batch], tuple[torch.Tensor, ...]]
    targets: tuple[nn.Module, ...] = ()
