"""ReDo (Sokar et al., ICML 2023): recycle tau-dormant neurons by their activation score."""

from __future__ import annotations

from typing import Any

import torch

from plasticity_bench.agents.base import Batch, Role
from plasticity_bench.methods.recycling import NeuronRecycler
from plasticity_bench.metrics.activity import dormant_scores


class ReDo(NeuronRecycler):
    """Every ``period`` gradient updates, recycle the hidden neurons whose ReDo score
    ``E|h_i| / mean_k E|h_k|`` on a separate replay batch of ``batch_size`` is <= ``tau``.

    Roles: every network by default. The official code (dopamine ``labs/redo``) recycles
    the agent's whole online network, which for its DQN agents is the one Q-network; for
    SAC, neither PAPERS.md nor the sources at hand say which networks the paper recycled,
    so the suite recycles both actor and critic (``roles=["critic"]`` restricts it).
    """

    name = "redo"
    description = "recycle tau-dormant neurons by activation score (Sokar et al. 2023)"

    def __init__(self, tau: float = 0.1, period: int = 1000, batch_size: int = 256, roles: Any = None):
        # tau = 0.1 is the paper's default (reported better than 0 or 0.025); the official
        # code scores on a separate replay batch of 256.
        super().__init__(tau=tau, period=period, batch_size=batch_size, roles=roles)

    @classmethod
    def options(cls) -> dict[str, Any]:
        return {"tau": 0.1, "period": 1000, "batch_size": 256, "roles": None}

    def scores(self, role: Role, batch: Batch) -> dict[str, torch.Tensor]:
        return dormant_scores(role.network, role.forward_inputs(batch))
