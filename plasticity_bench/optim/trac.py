"""TRAC (Muppidi, Zhang & Cutkosky, NeurIPS 2024, "Fast TRAC: a parameter-free optimizer for
lifelong reinforcement learning") around Adam.

TRAC keeps the base optimizer's iterate as an offset Delta from the reference point
theta_ref (the parameters at the first step) and plays a scaled version of it,

    theta = theta_ref + S * Delta,   S = max(sum_i s_i, 0),

with the scale S tuned online by a parameter-free learner over several discount factors
beta_i (PACE's tuner). Each step, with g the gradient at theta and Delta the base offset
before this step:

    h        = <Delta, g>                       (over every parameter of the optimizer)
    v_i      = beta_i^2 v_i + h^2
    sigma_i  = beta_i sigma_i - h
    s_i      = s_prev / erfi(1/sqrt 2) * erfi(sigma_i / (sqrt 2 sqrt v_i + eps))
    Delta   <- Delta + u                         (u: the base Adam step taken from theta)
    theta   <- theta_ref + Delta * max(sum_i s_i, 0)

While the loss keeps falling along Delta (h < 0), sigma grows and erfi lets S grow quickly;
when it stops (h > 0), S shrinks and pulls the network back towards theta_ref: a
data-driven shrink towards the initialisation, which is how TRAC keeps plasticity across
task changes. Defaults (betas, s_prev = eps = 1e-8, sigma starts at 1e-8) are the
authors' released ones. theta_ref lives in each parameter's
state beside Adam's moments and the tuner's v, sigma and s in the first param group, so
``state_dict`` checkpoints all of it. A parameter without a gradient in a
step (e.g. frozen for it) keeps its Delta but is rescaled with the new S like the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from scipy.special import erfi

DEFAULT_BETAS = (0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)
ERFI_OF_HALF_SQRT2 = float(erfi(1 / math.sqrt(2)))


class TRACAdam(torch.optim.Adam):
    """Adam as TRAC's base optimizer; Adam's own moments stay where methods look them up."""

    def __init__(self, params: Iterable, lr: float = 1e-3, trac_betas: Sequence[float] = DEFAULT_BETAS,
                 s_prev: float = 1e-8, eps: float = 1e-8, **adam_options):
        super().__init__(params, lr=lr, **adam_options)
        self.trac_betas = tuple(float(b) for b in trac_betas)
        if not self.trac_betas or not all(0 < b < 1 for b in self.trac_betas):
            raise ValueError(f"trac_betas must lie in (0, 1), got {list(trac_betas)}")
        self.s_prev, self.trac_eps = float(s_prev), float(eps)

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _tuner(self) -> dict:
        """v, sigma and s of the scale tuner, one entry per beta, kept in the first param
        group: Python floats (double precision, host side; ``load_state_dict`` restores a
        group's entries as saved, where it would cast state tensors to each parameter's
        dtype and device)."""
        group = self.param_groups[0]
        if "trac_v" not in group:
            n = len(self.trac_betas)
            group.update(trac_v=[0.0] * n, trac_sigma=[1e-8] * n, trac_s=[0.0] * n)
        return group

    def scale(self) -> float:
        """The current S = max(sum_i s_i, 0) (0 before the first step)."""
        return max(math.fsum(self._tuner()["trac_s"]), 0.0)

    def _reference(self, p: torch.Tensor) -> torch.Tensor:
        """theta_ref of ``p``; a parameter never stepped yet (no Adam state: never had a
        gradient) has Delta = 0, so it sits at its reference: a copy of its value."""
        ref = self.state[p].get("trac_ref")
        return ref if ref is not None else p.detach().clone()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = self._params()
        tuner = self._tuner()
        scale_before = self.scale()
        references = [self._reference(p) for p in params]  # stored ones are read, never written
        # Delta before this step, recovered from theta = theta_ref + S * Delta; parameters
        # without a gradient keep their Delta but are rescaled with the rest below.
        offsets = [(p - ref) / (scale_before + self.trac_eps) for p, ref in zip(params, references)]
        h = math.fsum(float((offset * p.grad).sum()) for offset, p in zip(offsets, params) if p.grad is not None)
        before = [p.detach().clone() for p in params]
        super().step()  # Adam creates its state on a parameter's first gradient; theta_ref joins it
        for i, beta in enumerate(self.trac_betas):
            tuner["trac_v"][i] = beta * beta * tuner["trac_v"][i] + h * h
            tuner["trac_sigma"][i] = beta * tuner["trac_sigma"][i] - h
            ratio = tuner["trac_sigma"][i] / (math.sqrt(2) * math.sqrt(tuner["trac_v"][i]) + self.trac_eps)
            tuner["trac_s"][i] = self.s_prev / ERFI_OF_HALF_SQRT2 * float(erfi(ratio))
        scale = self.scale()
        for p, ref, offset, old in zip(params, references, offsets, before):
            if self.state[p]:
                self.state[p].setdefault("trac_ref", ref)
            p.copy_(ref + (offset + (p - old)) * scale)
        return loss
