"""What an architecture is built from; methods may rewrite it (e.g. add LayerNorm) before
the agent builds its networks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkConfig:
    arch: str = "mlp"
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "ReLU"
    layer_norm: bool = False
    # Residual architecture only (networks/residual.py): the residual stream's width is
    # hidden_sizes[0] (all entries must be equal); `blocks` residual blocks in critics and
    # Q-networks, `actor_blocks` in a residual actor (BRO uses 2 and 1); `pre_norm` picks
    # SimBa's pre-LayerNorm block x + MLP(LN(x)) over BRO's post-LayerNorm block.
    blocks: int = 1
    actor_blocks: int = 1
    pre_norm: bool = False
    # How a residual net's Linear weights start: "orthogonal" (BRO's: orthogonal weights, zero
    # biases) or "default" (PyTorch's Kaiming-uniform). Re-initialisers (resets, recycling) use
    # each layer's own reset_parameters either way, as the released GraMa/ReDo code does.
    init: str = "default"
    # Architecture "diffusion" only (networks/diffusion.py): the actor is a K-step DDPM
    # reverse chain (K = diffusion_steps) of a denoiser MLP with denoiser_hidden_sizes,
    # on diffusers' DDPMScheduler with the named beta schedule; critics stay MLPs.
    diffusion_steps: int = 5
    denoiser_hidden_sizes: tuple[int, ...] = (256, 256)
    denoiser_activation: str = "Mish"  # DACER's denoiser; the other networks use `activation`
    beta_schedule: str = "squaredcos_cap_v2"

    def for_actor(self) -> NetworkConfig:
        """The configuration a policy network is built from (its own residual depth)."""
        return dataclasses.replace(self, blocks=self.actor_blocks)
