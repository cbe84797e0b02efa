"""A seed stack's update captured into CUDA graphs and replayed (hyperparameter ``compile: graphs``).

Why: on a GPU the stacked update of the suite's small networks is a few hundred short kernels
whose launches, not their arithmetic, bound its speed. A CUDA graph replays all of them with
one launch. What is captured is the agent's whole update (losses, backward, the optimizer
step, the target update), as torch's "whole-network capture" does it (torch.cuda notes, CUDA
Graphs): static inputs, warm-up on a side stream, capture once (on that stream), then replay.

How an update runs (``GraphedUpdate.__call__``):
- Sampling stays outside the graph, eager, on the device: each seed's replay indices are drawn
  from its own device generator into a static index buffer and its rows gathered into static
  batch tensors allocated once (``StackSampler``; the rows ``ReplayBuffer.sample`` draws with the
  same generator, bit for bit, tests/test_graphs.py). The buffer's fill level is a host integer,
  so the draw needs nothing from the device.
- The update's Python code takes a few decisions (a delayed actor step, a target update;
  ``Agent.update_branches``); one graph is captured per decision pattern the run meets, after
  ``WARMUP`` eager updates of that pattern on a side stream (which create the optimizer state the
  graph then reads and writes in place). Those warm-up updates and the captured call count as
  the ordinary updates they are: the capture records the kernels, one replay then runs them.
- Each seed's device generator is registered with every graph, so a replay draws the update
  noise a seed's eager update would draw and advances the seed's generator as far.
- The optimizer is the stack's own (Adam/AdamW over each seed's state, fused on CUDA) with
  ``capturable`` set: the fused kernel reads its step count from the device and ignores the flag,
  which only lets torch's capture check pass, so it changes no number (tested on CPU).
- The update's statistics are the graph's static output tensors: every replay overwrites them,
  and ``StatisticSums.add`` copies them into its device sums at once. No host sync per update
  (tests/test_graphs.py records none in the sampler and the eager SAC and DQN stack updates,
  and, on a GPU, runs replays under torch's sync debug mode set to error).

When a capture becomes invalid: a graph replays fixed addresses, the stack's parameters,
optimizer state and replay fields. Whenever one of them could have moved (a method replaced a
tensor or dropped optimizer state, changed a learning rate or requires_grad, a seed failed:
``SeedStack.intact`` false), the seed group builds a new SeedStack, and with it a new
GraphedUpdate that captures again. In-place edits between updates (ReDo's and Shrink and
Perturb's resets, a method zeroing moments) need nothing: the graph reads the same memory.

Memory: each graph keeps a private pool holding one update's intermediates (activations,
gradients, the static batch is outside it): about one eager update's working set per decision
pattern (2 for DQN and TD3, up to 4 for SAC), freed with the stack.

Exactness: everything but the capture is the eager update on the same numbers (on CPU a stack
fed by the static sampler trains bit for bit as the eager stack, tests/test_graphs.py), and a
replay runs the captured kernels, so a graphed run is expected to equal the eager run of the
same spec on the same device. That is not measured yet (no GPU where this was written): the
CUDA-only test in tests/test_graphs.py and bench/gpu.py check it on a device. Like
``compile: on``, ``graphs`` is part of the run id.

What is not captured runs eager: seeds in an unshared stack (a method acting inside the
update, TRAC, the diffusion actor; the seed group says why they do not stack) and stacks whose
optimizer is not fused or whose agent does not declare its update's branches (printed when
such a stack is built). A capture that fails (an operation CUDA graphs refuse) fails the
stack's seeds with the error; ``compile: off`` or ``on`` trains them.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable

import torch

from plasticity_bench.devices import DeviceError
from plasticity_bench.roles import Batch

WARMUP = 3  # eager updates per decision pattern before its capture (torch's documented example uses 3)


def check_device(hyperparams: dict, device: torch.device) -> None:
    """Refuse ``compile: graphs`` on a device that is not CUDA (before anything is written)."""
    if hyperparams.get("compile", "off") == "graphs" and torch.device(device).type != "cuda":
        raise DeviceError(f"compile: graphs needs a CUDA device; this run's device is {torch.device(device)}; "
                          "choose off or on")


class NotCapturable(Exception):
    """Why a stack's update cannot be captured (it then runs eager)."""


def mark_capturable(*optimizers: torch.optim.Optimizer) -> None:
    """Set ``capturable`` on every parameter group of fused Adam/AdamW optimizers (a stack's
    inner ones). The fused kernel keeps its step on the device and ignores the flag, so this
    changes no number; a non-fused optimizer keeps its step count on the host and reads it
    there: refused, and then none is marked."""
    for optimizer in optimizers:
        if not all(group.get("fused") for group in optimizer.param_groups):
            raise NotCapturable(f"its {type(optimizer).__name__} is not fused")
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["capturable"] = True


class StackSampler:
    """Replay batches of a seed stack written into static tensors allocated once: each seed's
    indices from its own generator (the draw ``ReplayBuffer.sample`` makes), its rows gathered
    from the stacked replay fields ([seeds, capacity, ...]) with ``index_select(out=...)``."""

    def __init__(self, fields: list[torch.Tensor], generators: list[torch.Generator], batch_size: int):
        # views (never copies) of the seeds' buffers, [S * capacity, ...]
        self.fields = [field.view(-1, *field.shape[2:]) for field in fields]
        self.generators = generators
        seeds, capacity = fields[0].shape[:2]
        device = fields[0].device
        self.index = torch.zeros((seeds, batch_size), dtype=torch.long, device=device)
        self.rows = torch.zeros(seeds * batch_size, dtype=torch.long, device=device)
        self.offsets = (torch.arange(seeds, device=device) * capacity).unsqueeze(1)  # seed s's rows start at s·capacity
        self.static = [torch.zeros((seeds * batch_size, *field.shape[2:]), dtype=field.dtype, device=device)
                       for field in fields]
        self.batch = Batch(*(static.view(seeds, batch_size, *static.shape[1:]) for static in self.static))

    def draw(self, size: int) -> Batch:
        """Fill the static batch with fresh rows of the buffers' first ``size``; return it."""
        for row, generator in zip(self.index, self.generators):
            torch.randint(0, size, row.shape, generator=generator, out=row)
        torch.add(self.index, self.offsets, out=self.rows.view_as(self.index))
        for field, static in zip(self.fields, self.static):
            torch.index_select(field, 0, self.rows, out=static)
        return self.batch


class GraphedUpdate:
    """``agent``'s update on batches of ``sampler``, captured per decision pattern and replayed."""

    def __init__(self, agent, optimizers: list[torch.optim.Optimizer], sampler: StackSampler,
                 generators: list[torch.Generator], device: torch.device):
        check_device({"compile": "graphs"}, device)
        try:
            agent.update_branches(agent.updates + 1)
        except NotImplementedError:
            raise NotCapturable(f"{type(agent).__name__} does not declare its update's branches") from None
        mark_capturable(*optimizers)
        self.agent, self.sampler, self.generators, self.device = agent, sampler, generators, device
        self.graphs: dict[tuple[bool, ...], tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor]]] = {}
        self.warmed: Counter = Counter()
        self.side = torch.cuda.Stream(device)

    def __call__(self, size: int) -> dict[str, torch.Tensor]:
        """One update of every seed on a fresh batch from the buffers' first ``size`` rows; its
        statistics (for a replay, the graph's outputs: copy them before the next call)."""
        with torch.cuda.device(self.device):  # a capture and a replay use the current device's streams
            return self.update(size)

    def update(self, size: int) -> dict[str, torch.Tensor]:
        batch = self.sampler.draw(size)
        key = self.agent.update_branches(self.agent.updates + 1)
        held = self.graphs.get(key)
        if held is not None:
            graph, stats = held
            graph.replay()
            self.agent.updates += 1  # the Python side of the update, which a replay skips
            return stats
        current = torch.cuda.current_stream(self.device)
        if self.warmed[key] < WARMUP:
            self.warmed[key] += 1
            self.side.wait_stream(current)
            with torch.cuda.stream(self.side), warnings.catch_warnings():
                # torch warns that a capturable optimizer steps uncaptured: here it is meant to
                warnings.filterwarnings("ignore", message="This instance was constructed with capturable=True")
                stats = self.agent.update(batch)
            current.wait_stream(self.side)
            return stats
        graph = torch.cuda.CUDAGraph()
        for generator in self.generators:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph, stream=self.side):  # the warm-up's stream, on this device
            stats = self.agent.update(batch)  # records the kernels (and counts the update on the host)
        graph.replay()  # runs them
        self.graphs[key] = (graph, stats)
        return stats


def graphed_update(stack) -> Callable[[], dict[str, torch.Tensor]] | None:
    """For a SeedStack whose run says ``compile: graphs``: its update as
    ``() -> statistics``, sampling included (``graph_stack``); None for any other setting,
    or (said on the console) when the stack's update cannot be captured."""
    first = stack.trainers[0]
    if first.hp.get("compile", "off") != "graphs":
        return None
    check_device(first.hp, first.replay.device)
    try:
        return graph_stack(stack)
    except NotCapturable as reason:
        print(f"plasticity-bench: compile: graphs: this stack's update runs eager: {reason}", flush=True)
        return None


def graph_stack(stack) -> Callable[[], dict[str, torch.Tensor]]:
    """A SeedStack's update through a GraphedUpdate on static batches of its replay fields,
    whatever its run's setting (bench/gpu.py times it); raises NotCapturable."""
    first = stack.trainers[0]
    agent, replay = stack.agent, first.replay
    sampler = StackSampler(stack.replay_fields, [generators.for_device for generators in stack.generators],
                           first.hp["batch_size"])
    optimizers = [getattr(agent, name).inner for name in type(agent).stacked_optimizers]
    graphed = GraphedUpdate(agent, optimizers, sampler, [generators.device for generators in stack.generators],
                            replay.device)
    return lambda: graphed(replay.size)
