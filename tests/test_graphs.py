"""compile: graphs (training/graphs.py) on the CPU: everything but the capture itself, which
needs a CUDA device. The static-buffer sampler draws the rows ReplayBuffer.sample draws, the
eager stacked SAC and DQN updates never wait for the device, the capturable flag changes
no number of the fused optimizer, the update's declared branches are the ones it takes, and
graphs on a CPU is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from plasticity_bench.devices import DeviceError
from plasticity_bench.spec import SpecError, build_spec
from plasticity_bench.training.graphs import NotCapturable, StackSampler, check_device, graph_stack, mark_capturable
from plasticity_bench.training.run import Trainer
from plasticity_bench.training.stack import SeedStack, ready

CASES = {
    "sac": ("sac", "gym:Pendulum-v1", ["policy_frequency=2", "target_network_frequency=3"]),
    "dqn": ("dqn", "gym:CartPole-v1", ["target_network_frequency=3", "replay_ratio=1"]),
}
SMALL = ["hidden_sizes=[16,16]", "batch_size=8", "learning_starts=50"]


def trainers(tmp_path: Path, algo: str, seeds=(0, 1), steps: int = 60, *extra: str,
             device: torch.device = torch.device("cpu")) -> list[Trainer]:
    """Seeds' trainers whose replay buffers hold ``steps`` transitions."""
    name, task, settings = CASES[algo]
    opened = []
    for seed in seeds:
        spec = build_spec(name, "mlp", "none", task, seed, 200, [*SMALL, *settings, *extra])
        trainer = Trainer(spec, tmp_path / spec.run_id, 1, device, False)
        ready(trainer)
        trainer.start_episode()
        for _ in range(steps):
            if trainer.collect_step():
                trainer.start_episode()
        opened.append(trainer)
    return opened


def twin(generator: torch.Generator) -> torch.Generator:
    other = torch.Generator()
    other.set_state(generator.get_state())
    return other


def test_the_static_sampler_draws_the_rows_replay_sample_draws(tmp_path):
    seeds = trainers(tmp_path, "sac", seeds=(0, 1, 2))
    stack = SeedStack(seeds)
    ours = [torch.Generator().manual_seed(10 + index) for index in range(len(seeds))]
    theirs = [twin(generator) for generator in ours]
    sampler = StackSampler(stack.replay_fields, ours, batch_size=8)
    addresses = [static.data_ptr() for static in sampler.static]
    for _ in range(3):  # the same static tensors each time, refilled
        batch = sampler.draw(seeds[0].replay.size)
        assert [static.data_ptr() for static in sampler.static] == addresses
        for index, (trainer, generator) in enumerate(zip(seeds, theirs)):
            expected = trainer.replay.sample(8, generator=generator)
            for field, (got, want) in enumerate(zip(batch, expected)):
                assert got[index].dtype == want.dtype and torch.equal(got[index], want), (index, field)


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_a_stack_fed_by_the_static_sampler_trains_as_the_eager_stack(tmp_path, algo):
    """The graphed path without the capture (a CPU cannot capture): SeedStack.update through
    its ``graphed`` branch on static batches equals the eager stack, parameters and the
    statistics' device sums, bit for bit."""
    def trained(folder: Path, static: bool) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        stack = SeedStack(trainers(folder, algo))
        if static:
            replay = stack.trainers[0].replay
            sampler = StackSampler(stack.replay_fields, [generators.for_device for generators in stack.generators], 8)
            stack.graphed = lambda: stack.agent.update(sampler.draw(replay.size))
        for _ in range(6):
            stack.update()
        params = [param.detach().clone() for name in type(stack.agent).stacked_networks
                  for param in getattr(stack.agent, name).parameters()]
        return params, stack.statistics.sums

    (eager, eager_sums), (static, static_sums) = trained(tmp_path / "eager", False), trained(tmp_path / "static", True)
    assert all(torch.equal(a, b) for a, b in zip(eager, static))
    assert eager_sums.keys() == static_sums.keys() and all(torch.equal(eager_sums[k], static_sums[k]) for k in eager_sums)


SYNCS = {"_local_scalar_dense", "item", "is_nonzero", "nonzero", "equal", "allclose", "masked_select",
         "_unique", "_unique2", "unique_dim", "unique_consecutive", "repeat_interleave"}


class HostSyncs(TorchDispatchMode):
    """Records operators that make the host wait for a device's result (on a CPU tensor they
    run without waiting, but they are the same calls): a scalar read (.item(), bool(), float()),
    and outputs whose shape depends on values (nonzero, masked_select, unique, ...)."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name.split("::")[-1] in SYNCS:
            self.seen.append(func._schema.name)
        return func(*args, **(kwargs or {}))


class HostReads:
    """Records .tolist(), .numpy() and .cpu() inside, which copy to the host without an
    operator the dispatch mode sees on a CPU tensor."""

    NAMES = ("tolist", "numpy", "cpu")

    def __enter__(self):
        self.seen: list[str] = []
        self.originals = {name: getattr(torch.Tensor, name) for name in self.NAMES}
        for name, original in self.originals.items():
            def recorded(tensor, *args, _name=name, _original=original, **kwargs):
                self.seen.append(_name)
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, recorded)
        return self

    def __exit__(self, *exc):
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, original)


def test_the_recorders_see_what_they_look_for():
    with HostSyncs() as syncs, HostReads() as reads:
        value = torch.ones(3)
        float(value.sum()), bool(value[0] > 0), value.nonzero(), value.tolist()
    assert "aten::_local_scalar_dense" in syncs.seen and "aten::nonzero" in syncs.seen
    assert reads.seen == ["tolist"] and torch.Tensor.tolist is reads.originals["tolist"]


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_the_stacked_update_never_waits_for_the_device(tmp_path, algo):
    seeds = trainers(tmp_path, algo)
    stack = SeedStack(seeds)
    sampler = StackSampler(stack.replay_fields, [generators.for_device for generators in stack.generators], 8)
    with HostSyncs() as syncs, HostReads() as reads:
        for _ in range(6):  # both branches of every decision (policy_frequency 2, targets every 3)
            stack.update()  # the eager path (compile: off)
            stack.agent.update(sampler.draw(seeds[0].replay.size))  # what a graph captures
    assert syncs.seen == [] and reads.seen == []
    assert seeds[0].updates == 6 and stack.agent.updates == 12


def test_capturable_changes_no_number_of_the_fused_optimizer_and_a_host_step_is_refused():
    torch.manual_seed(0)
    start, grads = torch.randn(4, 3), [torch.randn(4, 3) for _ in range(5)]
    params = [start.clone().requires_grad_(True) for _ in range(2)]
    plain, marked = (torch.optim.Adam([param], lr=1e-2, fused=True) for param in params)
    mark_capturable(marked)
    assert all(group["capturable"] for group in marked.param_groups)
    for grad in grads:
        for param, optimizer in zip(params, (plain, marked)):
            param.grad = grad.clone()
            optimizer.step()
    assert torch.equal(params[0], params[1]) and not torch.equal(params[0], start)
    fused = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=1e-2, fused=True)
    with pytest.raises(NotCapturable, match="Adam is not fused"):  # a host step count
        mark_capturable(fused, torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=1e-2))
    assert not fused.param_groups[0]["capturable"]  # none marked


def test_a_stack_steps_alike_with_its_optimizers_marked_capturable(tmp_path):
    def trained(folder: Path, mark: bool) -> list[torch.Tensor]:
        stack = SeedStack(trainers(folder, "sac"))
        if mark:
            # on CPU the stack's Adam is fused too
            mark_capturable(*(getattr(stack.agent, name).inner for name in type(stack.agent).stacked_optimizers))
        for _ in range(4):
            stack.update()
        return [param.detach().clone() for param in stack.agent.actor.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(trained(tmp_path / "plain", False), trained(tmp_path / "marked", True)))


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_the_declared_branches_are_the_ones_the_update_takes(tmp_path, algo):
    agent = trainers(tmp_path, algo, seeds=(0,))[0].agent
    target = agent.critic_target if algo == "sac" else agent.target_network
    replay = trainers(tmp_path / "batches", algo, seeds=(0,))[0].replay
    seen = []
    for _ in range(6):
        before = [param.detach().clone() for param in target.parameters()]
        declared = agent.update_branches(agent.updates + 1)
        stats = agent.update(replay.sample(8))
        target_moved = any(not torch.equal(a, b) for a, b in zip(before, target.parameters()))
        seen.append(declared)
        assert declared == (("actor_loss" in stats, target_moved) if algo == "sac" else (target_moved,))
    assert len(set(seen)) == (4 if algo == "sac" else 2)  # every pattern met: the check could fail


def test_graphs_enter_the_run_id_and_bad_values_name_the_choices():
    def spec(*extra):
        return build_spec("sac", "mlp", "none", "gym:Pendulum-v1", 0, 1000, list(extra))

    graphs = spec("compile=graphs")
    assert graphs.to_dict()["hyperparams"]["compile"] == "graphs"
    assert len({graphs.run_id, spec("compile=on").run_id, spec().run_id}) == 3
    with pytest.raises(SpecError, match=r"compile='fast' is not a choice; valid: off, on, graphs$"):
        spec("compile=fast")


def test_graphs_on_a_cpu_are_refused_before_training(cli, tmp_path):
    message = "compile: graphs needs a CUDA device; this run's device is cpu; choose off or on"
    with pytest.raises(DeviceError) as refused:
        check_device({"compile": "graphs"}, torch.device("cpu"))
    assert str(refused.value) == message
    check_device({"compile": "on"}, torch.device("cpu"))  # the other settings run anywhere
    # a library caller meets it when the seeds' stack is built, before its first update
    with pytest.raises(DeviceError, match="compile: graphs needs a CUDA device"):
        SeedStack(trainers(tmp_path / "library", "sac", (0,), 60, "compile=graphs"))
    out = tmp_path / "run"
    result = cli("train", "--algo", "sac", "--arch", "mlp", "--method", "none", "--task", "gym:Pendulum-v1",
                 "--steps", "100", "--set", "compile=graphs", "--device", "cpu", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {message}"] or result.stderr.strip().endswith(message)
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_on_a_gpu_the_graphed_stack_trains_as_the_eager_stack_without_host_syncs(tmp_path, algo):
    """Not run where this was written (no GPU): 40 updates of a stack of 2 against the eager
    stack; every decision pattern is captured by update 24 (SAC's rarest, policy and target
    due, comes every 6th update and is captured on its 4th), and the last 10 updates, all
    replays, run under torch's sync debug mode set to error."""
    device = torch.device("cuda")

    def trained(folder: Path, graphed: bool) -> list[torch.Tensor]:
        stack = SeedStack(trainers(folder, algo, device=device))
        if graphed:
            stack.graphed = graph_stack(stack)
        for update in range(40):
            if graphed and update >= 30:
                torch.cuda.set_sync_debug_mode("error")
            try:
                stack.update()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        return [param.detach().double().cpu() for name in type(stack.agent).stacked_networks
                for param in getattr(stack.agent, name).parameters()]

    eager, graphed = trained(tmp_path / "eager", False), trained(tmp_path / "graphed", True)
    difference = max(((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item() for a, b in zip(eager, graphed))
    assert difference < 1e-5, difference  # expected 0 (the same kernels); bench/gpu.py prints the measured value
