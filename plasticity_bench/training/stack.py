"""Several seeds of one cell trained by one process, the seeds a batch dimension.

Each seed is an ordinary Trainer (training/run.py): its own environments, replay buffer, agent,
methods, numpy generator, records and run folder, under the run id a one-seed run has. What
the seeds share is the gradient update: ``SeedStack`` stacks their networks, SAC's log alpha
and replay buffers along a leading seed axis (networks/stacked.py), and every seed's
tensors become views of the stack's. The stack's optimizer steps every seed's own
parameters and optimizer state in one call (``SeedwiseOptimizer``). One update then trains
every seed with one set of kernels, and everything else a seed does (act, step its
environment, monitor, probe, let its methods act, evaluate, checkpoint) runs on its own
modules as in a one-seed run, seeing the stack's numbers through the views.

Randomness. A seed's torch draws come from a generator of its own that continues its
one-seed run's global stream: the replay indices and update noise are drawn from it
directly, in the one-seed order, and everything else a seed does runs with the global
generator swapped to the seed's state (``seed_rng``). So seed s draws the numbers its
one-seed run draws.

Exactness. The stack computes what the one-seed runs compute, per seed: batched matmuls,
per-seed reductions, a one-output layer as a product and a sum (networks/stacked.py), and an
optimizer step that hands each seed's parameters to the kernel as tensors of their own
(before, the fused Adam kernel split the flattened [seeds, ...] tensor into vector and scalar
parts by its total size, so a seed's rounding depended on how many seeds it shared a stack
with). On CPU a seed trained in a stack of 4 equals its one-seed run bit for bit
(tests/test_red_team_seed_stack.py, up to 2000 updates; docs/robustness.md gives the
measured runs; on a GPU this is not measured). Manifests record the stacks a run trained in (``trained_with``).

What a method does to a seed's modules takes effect as in its one-seed run: in-place edits
reach the stack through the views; a replaced tensor or dropped optimizer state, a changed
requires_grad or optimizer setting make the stack rebuild (``SeedStack.intact``), and seeds
that then differ train apart, each as a stack of one (its one-seed run).

What does not stack trains in an ``UnsharedStack``: a stack of one seed that acts and updates
through the seed's own modules, in the same loop with the same records (a
``NotStackableError`` says why): supervised runs (the classifier), networks with modules
other than Linear/LayerNorm holding parameters (the diffusion actor), optimizers other than
Adam/AdamW (TRAC), and methods that act inside the update (loss terms, training-forward
hooks, a mid-run change of network structure): ``Method.batches_across_seeds``.

Failures and resumption. A seed whose loss or parameters turn non-finite fails alone at its
next health check; the stack is rebuilt without it. Every seed checkpoints as a one-seed run
does (own file, own episode boundary); after a kill, seeds behind the furthest one catch up
alone, and the stack forms again once they are level.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from tqdm import tqdm

from plasticity_bench import results
from plasticity_bench.agents.base import Agent, TrainingHooks
from plasticity_bench.roles import Batch
from plasticity_bench.interrupts import stop_at_step_boundaries, stop_if_requested
from plasticity_bench.methods.base import Method
from plasticity_bench.networks.stacked import NotStackableError, check_stackable, stack_networks, stack_tensors
from plasticity_bench.training.compiled import chosen_update
from plasticity_bench.training.graphs import graphed_update
from plasticity_bench.training.health import StatisticSums
from plasticity_bench.training.run import EvalEpisode, Trainer, one_line

STACKABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


def ready(trainer: Trainer) -> None:
    """Resume the trainer and give it its generators, from the global state its
    construction and checkpoint left (before the next seed's trainer is built)."""
    trainer.resume()
    trainer.generators = SeedGenerators(trainer.device)


class SeedGenerators:
    """A seed's torch generators (host, and the device's on CUDA), created from torch's
    global state at construction: the state the seed's one-seed run would go on with."""

    def __init__(self, device: torch.device):
        self.host = torch.Generator()
        self.host.set_state(torch.get_rng_state())
        self.device = None
        if device.type == "cuda":
            self.device = torch.Generator(device=device)
            self.device.set_state(torch.cuda.get_rng_state(device))
        self.device_type = device

    @property
    def for_device(self) -> torch.Generator:
        """The generator of tensors on the training device."""
        return self.device if self.device is not None else self.host


@contextmanager
def seed_rng(generators: SeedGenerators) -> Iterator[None]:
    """torch's global generator(s) at the seed's state inside; the seed's state after."""
    torch.set_rng_state(generators.host.get_state())
    if generators.device is not None:
        torch.cuda.set_rng_state(generators.device.get_state(), generators.device_type)
    try:
        yield
    finally:
        generators.host.set_state(torch.get_rng_state())
        if generators.device is not None:
            generators.device.set_state(torch.cuda.get_rng_state(generators.device_type))


def group_settings(group: dict) -> dict:
    return {key: value for key, value in group.items() if key != "params"}


def settings_of(optimizer: torch.optim.Optimizer) -> list[tuple[tuple[int, ...], dict]]:
    """Each parameter group's parameters (by identity) and a copy of its settings."""
    return [(tuple(map(id, group["params"])), group_settings(group)) for group in optimizer.param_groups]


def same_settings(a: dict, b: dict) -> bool:
    """Group settings equal, a tensor setting (a tensor learning rate) only when the same object."""
    return a.keys() == b.keys() and all(
        a[key] is b[key] or (not isinstance(a[key], torch.Tensor) and not isinstance(b[key], torch.Tensor)
                             and a[key] == b[key]) for key in a)


def same_groups(now: list[tuple[tuple[int, ...], dict]], held: list[tuple[tuple[int, ...], dict]]) -> bool:
    return len(now) == len(held) and all(ids == held_ids and same_settings(settings, held_settings)
                                         for (ids, settings), (held_ids, held_settings) in zip(now, held))


def acts_inside_update(method: Method) -> bool:
    """Whether a method changes the update itself (loss terms, a look at the loss, hooks on
    the training forward, new network structure): such seeds cannot share a stacked update."""
    kind = type(method)
    return (not kind.batches_across_seeds or kind.loss_terms is not Method.loss_terms
            or kind.observe_loss is not Method.observe_loss)


class SeedwiseOptimizer:
    """The stack's optimizer as the agent uses it (zero_grad, step): ``inner`` is an optimizer
    of the seeds' kind (Adam or AdamW, fused where theirs are) over every seed's own parameters,
    whose state is each seed's own state dict; a step hands each seed parameter its slice of
    the stacked gradient and steps them all in one call. Each seed's parameter is a tensor of
    its own to the kernel, so the kernel splits it into vector and scalar parts as it does in
    the seed's one-seed run (on the flattened [seeds, ...] tensor that split, and so the
    rounding of a seed's elements, depended on the number of seeds), and each seed keeps its
    own step count, which a method may reset. ``pairs``: (stacked parameter, its seeds' parameters)."""

    def __init__(self, inner: torch.optim.Optimizer, pairs: list[tuple[torch.Tensor, list[torch.Tensor]]]):
        self.inner, self.pairs = inner, pairs

    @property
    def param_groups(self) -> list[dict]:
        return self.inner.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        for stacked, _ in self.pairs:
            stacked.grad = None

    def step(self) -> None:
        for stacked, seed_params in self.pairs:
            grad = stacked.grad
            for index, seed_param in enumerate(seed_params):
                seed_param.grad = None if grad is None else grad[index]
        try:
            self.inner.step()
        finally:
            for _, seed_params in self.pairs:
                for seed_param in seed_params:
                    seed_param.grad = None


class SeedStack:
    """The seeds' agents as one agent whose tensors carry a leading seed axis (module doc).
    Built from the trainers' current state; raises NotStackableError (changing nothing)
    when something cannot stack."""

    def __init__(self, trainers: list[Trainer], previous: SeedStack | None = None):
        for trainer in trainers:
            inside = [method.name for method in trainer.methods if acts_inside_update(method)]
            if inside:
                raise NotStackableError(f"method {inside[0]} acts inside the update")
        agents: list[Agent] = [trainer.agent for trainer in trainers]
        if not type(agents[0]).stacked_networks:
            raise NotStackableError(f"{type(agents[0]).__name__}'s networks do not stack")
        for name in type(agents[0]).stacked_networks:
            for network in (getattr(agent, name) for agent in agents):
                check_stackable(network)
        for name in type(agents[0]).stacked_optimizers:
            kinds = {type(getattr(agent, name)) for agent in agents}
            if len(kinds) != 1 or kinds.pop() not in STACKABLE_OPTIMIZERS:
                raise NotStackableError(f"{name} is not Adam or AdamW")
        if len({trainer.replay.size for trainer in trainers}) != 1:
            raise NotStackableError("the seeds' replay buffers differ in size")
        for name in type(agents[0]).stacked_tensors:
            if len({getattr(agent, name).requires_grad for agent in agents}) != 1:
                raise NotStackableError(f"the seeds' {name} differ in requires_grad")

        self.trainers = trainers
        self.generators: list[SeedGenerators] = [trainer.generators for trainer in trainers]
        self.views: list[tuple[torch.Tensor, int]] = []  # (seed tensor, the address it must keep)
        # (a seed's optimizer, parameter, its state dict, and the objects the dict must hold)
        self.states: list[tuple[torch.optim.Optimizer, torch.Tensor, dict, dict]] = []
        # What a method may change on a seed's ordinary modules and the stack would not see:
        # whether each seed tensor takes gradients, and each seed optimizer's group settings.
        self.grad_flags: list[tuple[torch.Tensor, bool]] = []
        self.group_settings: list[tuple[torch.optim.Optimizer, list[tuple[tuple[int, ...], dict]]]] = []
        agent = copy.copy(agents[0])
        for attribute, value in vars(agents[0]).items():  # diagnostics dicts: the stack's own
            if isinstance(value, dict) and attribute != "hp":
                setattr(agent, attribute, {})
        counterpart: dict[int, torch.Tensor] = {}  # id(seed parameter) → stacked parameter
        for name in type(agent).stacked_networks:
            networks = [getattr(seed_agent, name) for seed_agent in agents]
            stacked = stack_networks(networks)
            for network in networks:
                for param, stacked_param in zip(network.parameters(), stacked.parameters()):
                    counterpart[id(param)] = stacked_param
                    self.views.append((param, param.data_ptr()))
                    self.grad_flags.append((param, param.requires_grad))
            setattr(agent, name, stacked)
        for name in type(agent).stacked_tensors:
            tensors = [getattr(seed_agent, name) for seed_agent in agents]
            stacked = stack_tensors(tensors, tensors[0].requires_grad)
            for tensor in tensors:
                counterpart[id(tensor)] = stacked
                self.views.append((tensor, tensor.data_ptr()))
                self.grad_flags.append((tensor, tensor.requires_grad))
            setattr(agent, name, stacked)
        for name in type(agent).stacked_optimizers:
            setattr(agent, name, self.stack_optimizer([getattr(seed_agent, name) for seed_agent in agents], counterpart))
        agent.hooks = TrainingHooks()  # no stacked seed has a method inside the update
        agent.seeds = len(agents)
        agent.draw_normal = self.draw_normal
        agent.roles = agent.make_roles()
        self.agent = agent
        self.agent_update = chosen_update(agent.update, trainers[0].hp, trainers[0].run_dir.parent)

        replays = [trainer.replay for trainer in trainers]
        if previous is not None and previous.trainers == trainers and previous.replay_intact():
            self.replay_fields, self.replay_views = previous.replay_fields, previous.replay_views  # no copy
        else:
            self.replay_fields, self.replay_views = [], []
            for field in ("obs", "actions", "rewards", "next_obs", "terminations"):
                tensors = [getattr(replay, field) for replay in replays]
                self.replay_fields.append(stack_tensors(tensors, False))
                self.replay_views += [(tensor, tensor.data_ptr()) for tensor in tensors]
        self.seed_index = torch.arange(len(trainers), device=replays[0].device).unsqueeze(1)
        self.statistics = StatisticSums()  # every seed's, along the seed axis, since the last hand-out
        self.graphed = graphed_update(self)  # compile: graphs, sampling included; else None

    def stack_optimizer(self, optimizers: list[torch.optim.Optimizer], counterpart: dict[int, torch.Tensor]
                        ) -> SeedwiseOptimizer:
        """The stack's optimizer: one optimizer of the seeds' kind over every seed's own
        parameters and state (step count and moments), stepped with the stacked gradients
        (SeedwiseOptimizer). Raises NotStackableError when the seeds' settings differ."""
        first = optimizers[0]
        if len({len(optimizer.param_groups) for optimizer in optimizers}) != 1:
            raise NotStackableError("the seeds' optimizers differ in parameter groups")
        groups, pairs = [], []
        for position, group in enumerate(first.param_groups):
            settings = group_settings(group)
            for optimizer in optimizers[1:]:
                other = optimizer.param_groups[position]
                if not same_settings(group_settings(other), settings) or len(other["params"]) != len(group["params"]):
                    raise NotStackableError("the seeds' optimizer settings differ")
            params = []
            for index in range(len(group["params"])):
                seed_params = [optimizer.param_groups[position]["params"][index] for optimizer in optimizers]
                pairs.append((counterpart[id(seed_params[0])], seed_params))
                params += seed_params
            groups.append({"params": params, **settings})
        inner = type(first)(groups)
        for optimizer in optimizers:
            self.group_settings.append((optimizer, settings_of(optimizer)))
            for group in optimizer.param_groups:
                for seed_param in group["params"]:
                    state = optimizer.state[seed_param]  # the same dict: the seed's state is the stack's
                    inner.state[seed_param] = state
                    self.states.append((optimizer, seed_param, state, dict(state)))
        return SeedwiseOptimizer(inner, pairs)

    def draw_normal(self, shape: torch.Size) -> torch.Tensor:
        """Standard normal noise of ``shape`` = [seeds, ...], each seed's from its generator."""
        device = self.replay_fields[0].device
        return torch.stack([torch.empty(shape[1:], device=device).normal_(generator=generators.for_device)
                            for generators in self.generators])

    def act(self, obs: np.ndarray, env_step: int, rngs: list[np.random.Generator], explore: bool) -> list:
        """Every seed's action for its row of ``obs``, one forward pass of the stack."""
        return self.agent.act(obs, env_step, rngs, explore)

    @property
    def shared_by(self) -> list[int] | None:
        """The seeds that share this stack's kernels (what a manifest's ``trained_with`` records)."""
        return [trainer.spec.seed for trainer in self.trainers]

    def replay_intact(self) -> bool:
        return all(tensor.data_ptr() == address for tensor, address in self.replay_views)

    def intact(self) -> bool:
        """Whether the stack still trains what each seed's own modules say: every seed's
        tensors still view the stack and its optimizer states are the ones the stack steps (a
        method that replaced a tensor or dropped an optimizer state, e.g. a reset, breaks
        that), no seed tensor's requires_grad or optimizer group setting (a learning rate) has
        changed. Else restack, which carries the change into the new stack or, where the seeds
        now differ, trains them apart. (A step count or moment changed in place needs nothing:
        the stack steps each seed's own.)"""
        return (self.replay_intact() and all(tensor.data_ptr() == address for tensor, address in self.views)
                and all(optimizer.state.get(param) is state and all(state.get(key) is value for key, value in held.items())
                        for optimizer, param, state, held in self.states)
                and all(tensor.requires_grad == flag for tensor, flag in self.grad_flags)
                and all(same_groups(settings_of(optimizer), held) for optimizer, held in self.group_settings))

    def update(self) -> None:
        """One gradient update of every seed; its statistics are summed on the device."""
        trainer = self.trainers[0]
        batch_size, replay = trainer.hp["batch_size"], trainer.replay
        if self.graphed is not None:
            self.statistics.add(self.graphed())
        else:
            index = torch.stack([torch.randint(0, replay.size, (batch_size,), device=replay.device,
                                               generator=generators.for_device) for generators in self.generators])
            batch = Batch(*(field[self.seed_index, index] for field in self.replay_fields))
            self.statistics.add(self.agent_update(batch))
        for trainer in self.trainers:
            trainer.updates += 1
            trainer.agent.updates = self.agent.updates

    def release(self) -> None:
        """Before the stack is dropped: each seed gets its share of the statistics."""
        self.hand_out()

    def hand_out(self) -> None:
        """Give each seed its share of the summed statistics (before it checks them)."""
        for index, trainer in enumerate(self.trainers):
            trainer.statistics.add_share(self.statistics, index)
        self.statistics.clear()


class UnsharedStack:
    """A stack of one seed whose networks cannot share kernels with other seeds' (a diffusion
    actor, TRAC, a method inside the update: ``NotStackableError`` says why): it acts and
    updates through the seed's own modules, with torch's global generator at the seed's
    state, which is its one-seed run. The group treats it as any stack."""

    def __init__(self, trainer: Trainer):
        self.trainers = [trainer]
        self.shared_by = None  # a manifest's trained_with records it as unstacked

    def act(self, obs: np.ndarray, env_step: int, rngs: list[np.random.Generator], explore: bool) -> list:
        trainer = self.trainers[0]
        with seed_rng(trainer.generators):
            return trainer.agent.act(obs, env_step, rngs, explore)

    def update(self) -> None:
        trainer = self.trainers[0]
        with seed_rng(trainer.generators):
            trainer.update_own_networks()

    def intact(self) -> bool:
        return True  # nothing is shared that a method could break

    def hand_out(self) -> None:
        pass  # the seed's statistics are summed on the seed itself

    def release(self) -> None:
        pass


class SeedGroup:
    """The seeds' trainers in step: collect, update (stacked when they stack), then each
    seed's own monitor, methods, evaluation and checkpoints.

    The live seeds share one stack while they can. When they cannot (a method changed one
    seed's learning rate, step counts or frozen layers, so the seeds now differ), each seed
    goes on as a stack of one, which is what its one-seed run is, so its numbers stay those
    of its one-seed run; a seed whose stack of one is refused too (a diffusion actor, TRAC, a
    method inside the update, the classifier) trains in an UnsharedStack, on its own modules.

    The loop, for RL and supervised runs alike (``step``): collect (the stacks act for their
    seeds, each seed steps its environment, or relabels its data) → the updates due, each
    followed by the seed's after-update (monitor, probe, methods; a supervised task's score)
    → the evaluation when due (lockstep play per stack) → the end of the step (checkpoints)."""

    def __init__(self, trainers: list[Trainer], progress: bool):
        self.live = list(trainers)
        self.manifests: dict[int, dict] = {}
        self.errors: dict[int, Exception] = {}  # id(trainer) → what failed the seed
        self.progress = progress
        self.stacks: list[SeedStack | UnsharedStack] = []
        self.unshared: set[int] = set()  # id(trainer) of seeds that train on their own modules from now on
        self.split = False  # the seeds differ: each trains as a stack of one from now on
        self.said: set[str] = set()  # reasons already printed

    def each(self, action, trainers: list[Trainer] | None = None, global_rng: bool = True) -> None:
        """``action(trainer)`` for each live seed, with torch's global generator at the seed's
        state unless ``global_rng`` is False; a seed that raises fails alone."""
        failed = []
        for trainer in list(self.live if trainers is None else trainers):
            try:
                if global_rng:
                    with seed_rng(trainer.generators):
                        action(trainer)
                else:
                    action(trainer)
            except KeyboardInterrupt:
                raise
            except Exception as error:
                if results.is_resource_error(error):  # the machine's, not the seed's: stop, resumable
                    raise results.ResourceExhaustedError(f"{trainer.spec.run_id}: {one_line(error)}") from error
                failed.append((trainer, error))
        if not failed:
            return
        hit = [stack for stack in self.stacks if any(trainer in stack.trainers for trainer, _ in failed)]
        for stack in hit:
            self.stacks.remove(stack)
            stack.release()
        for trainer, error in failed:
            with seed_rng(trainer.generators):
                self.errors[id(trainer)] = trainer.fail(error)
                self.errors[id(trainer)].__cause__ = error
            trainer.log.close()
            self.manifests[id(trainer)] = results.read_manifest(trainer.run_dir)
            self.live.remove(trainer)
        for stack in hit:  # the others go on stacked, acting as before
            self.restack([trainer for trainer in stack.trainers if trainer in self.live])

    def fail_all(self, error: Exception, trainers: list[Trainer] | None = None) -> None:
        def reraise(trainer: Trainer) -> None:
            raise error

        self.each(reraise, trainers)

    def drop_stack(self) -> None:
        for stack in self.stacks:
            stack.release()
        self.stacks = []

    def say(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            print(f"plasticity-bench: {line}", flush=True)

    def needs_stack(self) -> bool:
        held = {id(trainer) for stack in self.stacks for trainer in stack.trainers}
        return any(id(trainer) not in held for trainer in self.live)

    def note(self, trainer: Trainer, seeds: list[int] | None) -> None:
        """Record in the seed's manifest the seeds it shares a stack with from now on (None:
        its own modules, unshared), when that changes."""
        if not trainer.trained_with or trainer.trained_with[-1]["stack"] != seeds:
            trainer.trained_with.append({"from_step": trainer.env_steps, "from_update": trainer.updates, "stack": seeds})

    def restack(self, trainers: list[Trainer] | None = None) -> None:
        """Stack ``trainers`` (default: every live seed) anew, dropping the stacks that held
        them (a stack's replay buffers are kept when its seeds are the same and still hold)."""
        trainers = [trainer for trainer in (self.live if trainers is None else trainers) if trainer in self.live]
        previous = [stack for stack in self.stacks if any(trainer in stack.trainers for trainer in trainers)]
        for stack in previous:
            self.stacks.remove(stack)
            stack.release()
        count = len(self.stacks)
        try:
            self.stack_anew(trainers, previous)
        finally:
            for stack in self.stacks[count:]:
                for trainer in stack.trainers:
                    self.note(trainer, stack.shared_by)

    def stack_anew(self, trainers: list[Trainer], previous: list) -> None:
        """One stack of ``trainers``, or (the seeds differ) a stack of one each; a seed whose
        networks cannot share kernels gets an unshared stack, from then on."""

        def earlier(seeds: list[Trainer]) -> SeedStack | None:
            return next((stack for stack in previous if isinstance(stack, SeedStack) and stack.trainers == seeds), None)

        self.stacks += [UnsharedStack(trainer) for trainer in trainers if id(trainer) in self.unshared]
        trainers = [trainer for trainer in trainers if id(trainer) not in self.unshared]
        if not trainers:
            return
        if not self.split:
            try:
                self.stacks.append(SeedStack(trainers, earlier(trainers)))
                return
            except NotStackableError as reason:
                if len(trainers) == 1:
                    self.unshare(trainers[0], reason)
                    return
                refused = str(reason)
            self.split = True
        else:
            refused = None
        alone = []
        for trainer in trainers:
            try:
                alone.append(SeedStack([trainer], earlier([trainer])))
            except NotStackableError as reason:
                self.unshare(trainer, reason)
        self.stacks += alone
        if refused is not None and alone:
            self.say(f"seeds train apart in this process, each as its one-seed run: {refused}")

    def unshare(self, trainer: Trainer, reason: NotStackableError) -> None:
        """From now on the seed trains on its own modules (UnsharedStack)."""
        self.unshared.add(id(trainer))
        self.stacks.append(UnsharedStack(trainer))
        self.say(f"seeds train one by one in this process: {reason}")

    def run(self) -> list[dict]:
        """Train every seed to the end; their final manifests (a failed seed's included)."""
        trainers = list(self.live)
        steps = trainers[0].spec.steps
        self.each(lambda trainer: (trainer.start_clock(), trainer.start_episode()))
        bar = tqdm(total=steps, initial=min((t.env_steps for t in self.live), default=steps),
                   disable=not self.progress, unit="step", dynamic_ncols=True, mininterval=1.0,
                   desc=trainers[0].spec.run_id if len(trainers) == 1 else f"{len(trainers)} seeds")
        try:
            with stop_at_step_boundaries():
                self.catch_up()
                self.advance_to(steps, bar)
                self.drop_stack()
                self.each(lambda trainer: trainer.finish())
                for trainer in self.live:
                    self.manifests[id(trainer)] = trainer.write_manifest("completed")
        except (KeyboardInterrupt, results.ResourceExhaustedError):  # statuses stay running: the next start resumes
            for trainer in self.live:
                trainer.tick_clock()
            raise
        finally:
            bar.close()
            for trainer in trainers:
                trainer.log.close()
        return [self.manifests[id(trainer)] for trainer in trainers]

    def advance_to(self, steps: int, bar: tqdm | None = None) -> None:
        # Stacked from the first step: a seed acts through the stack whenever one exists,
        # so a resumed, a caught-up and an uninterrupted seed all act with the same kernels.
        self.restack()
        while self.live and self.live[0].env_steps < steps:
            self.step()
            stop_if_requested()
            if bar is not None and self.live and self.live[0].env_steps % 100 == 0:
                bar.update(self.live[0].env_steps - bar.n)
        self.drop_stack()

    def catch_up(self) -> None:
        """Seeds resumed from earlier checkpoints train alone (each a group of one, so
        with the same kernels) up to the furthest one."""
        level = max((trainer.env_steps for trainer in self.live), default=0)
        for trainer in [trainer for trainer in self.live if trainer.env_steps < level]:
            alone = SeedGroup([trainer], progress=False)
            alone.advance_to(level)
            if trainer not in alone.live:
                self.live.remove(trainer)
                self.manifests.update(alone.manifests)
                self.errors.update(alone.errors)

    def step(self) -> None:
        """One step of every seed: collect (an env step into its replay), the updates it makes
        due and what follows each, the evaluation when due, the end of the step (checkpoints)."""
        episode_ends: dict[int, bool] = {}
        chosen: dict[int, object] = {}  # no action: the seed's random warm-up (or its data) decides
        if self.live[0].policy_acts():
            for stack in list(self.stacks):
                try:
                    actions = stack.act(np.stack([trainer.obs for trainer in stack.trainers]),
                                        self.live[0].env_steps, [trainer.rng for trainer in stack.trainers], True)
                except Exception as error:  # not one seed's: every seed of the stack fails with it
                    self.fail_all(error, list(stack.trainers))
                    continue
                chosen.update((id(trainer), action) for trainer, action in zip(stack.trainers, actions))
        # an env step and a replay write draw nothing from torch
        self.each(lambda trainer: episode_ends.__setitem__(id(trainer), trainer.collect_step(chosen.get(id(trainer)))),
                  global_rng=False)
        if not self.live:
            return
        first = self.live[0]  # again: the first seed may have failed in its env step
        for _ in range(first.updates_due()):
            if self.needs_stack():
                self.restack()
            if first.updates == 0:
                self.each(lambda trainer: trainer.measure_at_initialisation())
            for stack in list(self.stacks):
                try:
                    stack.update()
                except Exception as error:  # not one seed's: every seed in the stack fails with it
                    self.fail_all(error, list(stack.trainers))
            if not self.live:
                return
            if first.updates % first.hp["monitor_every_updates"] == 0:
                for stack in self.stacks:
                    stack.hand_out()
            self.each(lambda trainer: trainer.after_update())
            for stack in [stack for stack in self.stacks if not stack.intact()]:
                self.restack(list(stack.trainers))
            if not self.live:
                return
        evaluation_due = first.evaluation_due()
        if any(episode_ends.values()) or evaluation_due:
            for stack in self.stacks:
                stack.hand_out()  # the seeds check their statistics there
        if evaluation_due:
            self.each(lambda trainer: trainer.check_finite())  # never evaluate a diverged network
            played: dict[int, list[float]] = {}
            while waiting := [stack for stack in self.stacks if any(id(t) not in played for t in stack.trainers)]:
                # one stack at a time: a seed failing in one rebuilds its stack, whose
                # survivors then play in the rebuilt one (an evaluation replays exactly)
                played.update(self.play_evaluations(waiting[0]))
            self.each(lambda trainer: trainer.evaluate(played[id(trainer)]))
        self.each(lambda trainer: trainer.end_step(episode_ends[id(trainer)]))

    @torch.no_grad()
    def play_evaluations(self, stack: SeedStack | UnsharedStack | None = None) -> dict[int, list[float]]:
        """The evaluation returns of a stack's seeds (by id of trainer), their episodes played
        in lockstep: episode k of every seed at once, one forward pass of the stack per step.
        A seed whose episode has ended waits; its row is computed and not used, and its
        extra policy draws come from that episode's own generator, which is then dropped.
        So each seed plays what a stack of one plays: the same resets, draws and actions.
        A seed that fails in its environment fails alone; seeds left without all their
        returns (their stack rebuilt otherwise) are left out, to play in their new stack.
        ``stack``: the group's only stack unless given."""
        stack = stack or self.stacks[0]
        trainers = stack.trainers
        episodes, env_step = trainers[0].hp["eval_episodes"], trainers[0].env_steps
        returns: dict[int, list[float]] = {id(trainer): [] for trainer in trainers}

        def current(seeds: list[Trainer]) -> SeedStack | UnsharedStack | None:
            """The stack that holds the surviving seeds after a failure rebuilt theirs."""
            survivors = [trainer for trainer in seeds if trainer in self.live]
            return next((other for other in self.stacks if other.trainers == survivors), None)

        for episode in range(episodes):
            playing: dict[int, EvalEpisode] = {}
            self.each(lambda trainer: playing.__setitem__(id(trainer), trainer.eval_episode(episode)), trainers,
                      global_rng=False)  # an env reset draws nothing from torch
            stack = current(trainers)
            while stack is not None and not all(playing[id(trainer)].done for trainer in stack.trainers):
                trainers = stack.trainers
                episodes_now = [playing[id(trainer)] for trainer in trainers]
                try:
                    actions = stack.act(np.stack([one.obs for one in episodes_now]), env_step,
                                        [one.rng for one in episodes_now], False)
                except Exception as error:  # not one seed's
                    self.fail_all(error, list(trainers))
                    return {}
                chosen = {id(trainer): action for trainer, action in zip(trainers, actions)}
                running = [trainer for trainer in trainers if not playing[id(trainer)].done]
                self.each(lambda trainer: playing[id(trainer)].step(chosen[id(trainer)]), running, global_rng=False)
                stack = current(trainers)
            if stack is None:
                break
            trainers = stack.trainers
            for trainer in trainers:
                returns[id(trainer)].append(playing[id(trainer)].total)
        return {key: values for key, values in returns.items() if len(values) == episodes}
