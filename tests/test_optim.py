"""The suite's Adam (plasticity_bench.optim.adam): fused where torch has a kernel, the same
update as torch's per-tensor loop up to float rounding, and, being element-wise, exactly
each seed's update when the seeds' parameters are stacked."""

from __future__ import annotations

import pytest
import torch

from plasticity_bench.optim import adam
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer


@pytest.mark.parametrize("algo, method", [("dqn", "none"), ("sac", "none"), ("td3", "none"), ("sac", "weight_decay")])
def test_agents_train_with_the_fused_kernel_on_cpu(tmp_path, algo, method):
    task = "gym:CartPole-v1" if algo == "dqn" else "gym:Pendulum-v1"
    spec = build_spec(algo, "mlp", method, task, seed=0, steps=200, overrides=["hidden_sizes=[16, 16]"])
    trainer = Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False)
    optimizers = [value for value in trainer.agent.modules_to_save().values() if isinstance(value, torch.optim.Optimizer)]
    trainer.log.close()
    assert optimizers and all(optimizer.defaults["fused"] for optimizer in optimizers)
    expected = torch.optim.AdamW if method == "weight_decay" else torch.optim.Adam
    assert all(type(optimizer) is expected for optimizer in optimizers if optimizer is not getattr(trainer.agent, "alpha_optimizer", None))


def gradients(shape, steps):
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(shape, generator=generator)
    # magnitudes from 1e-3 to 10, as losses give them
    return start, [torch.randn(shape, generator=generator) * 10.0 ** (step % 5 - 3) for step in range(steps)]


def trained(start, grads, make_optimizer, rows=slice(None)):
    param = start[rows].clone().requires_grad_()
    optimizer = make_optimizer([param])
    for grad in grads:
        param.grad = grad[rows].clone()
        optimizer.step()
    return param.detach()


@pytest.mark.parametrize("kind, settings", [(torch.optim.Adam, {}), (torch.optim.AdamW, {"weight_decay": 0.01})])
def test_fused_update_is_torchs_adam_and_stacks_exactly(kind, settings):
    start, grads = gradients((3, 8, 5), steps=200)
    fused = trained(start, grads, lambda params: adam(params, lr=1e-3, kind=kind, **settings))
    loop = trained(start, grads, lambda params: kind(params, lr=1e-3, foreach=False, **settings))
    assert not torch.equal(fused, start)
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-6)
    for seed in range(3):  # one seed alone: bit for bit its row of the stack
        alone = trained(start, grads, lambda params: adam(params, lr=1e-3, kind=kind, **settings), rows=slice(seed, seed + 1))
        assert torch.equal(alone[0], fused[seed])
