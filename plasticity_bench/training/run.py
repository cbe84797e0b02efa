"""The Trainer: env steps → replay → agent.update() → method hooks → monitor → eval → checkpoint.

Reproducibility and resumption rest on two choices:
- every episode starts with ``env.reset(seed=...)`` from a seed derived from (run seed,
  episode index), and every other random draw comes from RNGs the checkpoint holds
  (python, numpy generator, torch), so no environment-internal RNG state needs saving;
- checkpoints are taken at the first episode boundary after each ``checkpoint_every_steps``
  steps, where the whole state of the run is in those RNGs, the networks, optimizers,
  replay buffer and counters. A run resumed from a checkpoint therefore continues exactly
  as the uninterrupted run would (on CPU, with the same thread count).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from plasticity_bench import registry, results
from plasticity_bench.agents.base import Agent, TrainingHooks
from plasticity_bench.budget import planned_updates, updates_after
from plasticity_bench.environments import make_task_envs
from plasticity_bench.environments.continual import ContinualEnv
from plasticity_bench.methods import build_methods
from plasticity_bench.metrics.monitor import monitor_roles
from plasticity_bench.metrics.norms import snapshot_parameters
from plasticity_bench.metrics.plasticity_probe import probe_roles
from plasticity_bench.networks import NetworkConfig
from plasticity_bench.provenance import package_versions, run_code
from plasticity_bench.replay import ReplayBuffer
from plasticity_bench.spec import RunSpec
from plasticity_bench.training.compiled import chosen_update
from plasticity_bench.training.health import StatisticSums
from plasticity_bench.training.records import RunRecords
from plasticity_bench.training_log import TrainingLog


class RunFailedError(RuntimeError):
    """The run itself failed (it diverged, or torch, a method or a metric raised while it
    trained); the manifest records status failed with this reason."""


class NonFiniteError(RunFailedError):
    """A loss, a parameter or an evaluation return is NaN or infinite."""


class RunConflictError(RuntimeError):
    pass


def derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


RUN_PACKAGES = ("plasticity-bench", "torch", "numpy", "gymnasium", "mujoco", "dm_control", "minatar", "pandas")
EVAL_STREAM, TRAIN_STREAM = 1, 2  # keep training and evaluation episodes on distinct seeds
EVAL_POLICY_STREAM = 3  # an evaluation episode's policy draws (DQN's ε), apart from its env seed
PROBE_STREAM = 4  # the plasticity probe's draws, seeded per probe call: no state to checkpoint
MONITOR_STREAM = 5  # the monitor's batch, seeded per monitor call: measuring never moves training's RNG


def own_storage(value):
    """``value`` with every tensor that views a larger storage copied: torch.save writes a
    view's whole storage, and a seed's tensors are views of its stack's (training/stack.py)."""
    if isinstance(value, torch.Tensor):
        return value.clone() if value.untyped_storage().nbytes() > value.nbytes else value
    if isinstance(value, dict):
        return {key: own_storage(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [own_storage(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # namedtuples too
    return value


def one_line(error: BaseException) -> str:
    """``Type: first line of the message`` (torch's messages run over several lines)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


@dataclass
class EvalEpisode:
    """An evaluation episode in play: its environment, last observation, the generator of
    the policy's draws, and the return so far."""

    env: gym.Env
    obs: np.ndarray
    rng: np.random.Generator
    total: float = 0.0
    done: bool = False

    def step(self, action) -> None:
        self.obs, reward, terminated, truncated, _ = self.env.step(action)
        self.total += float(reward)
        self.done = terminated or truncated


class Trainer:
    continual = False  # a continual task's run (environments/continual.py); the sl trainer never is
    packages = RUN_PACKAGES  # whose versions the manifest records

    def __init__(self, spec: RunSpec, run_dir: Path, threads: int, device: torch.device, progress: bool,
                 log: TrainingLog | None = None):
        self.spec, self.run_dir, self.device, self.progress = spec, Path(run_dir), device, progress
        self.hp = spec.hyperparams
        self.threads = threads
        torch.set_num_threads(threads)
        random.seed(spec.seed)
        torch.manual_seed(spec.seed)
        self.rng = np.random.default_rng(spec.seed)
        self.build()
        self.start_counters(log)

    def build(self) -> None:
        """The run's environments, methods, agent and replay buffer, in the order their draws
        from the freshly seeded generators are made."""
        spec = self.spec
        # A continual task's evaluation env follows its training env's segment (environments/continual.py).
        self.env, self.eval_env = make_task_envs(spec.task, spec.hyperparams)
        self.continual = isinstance(self.env, ContinualEnv)
        obs_dim = int(np.prod(self.env.observation_space.shape))
        self.discrete = hasattr(self.env.action_space, "n")
        action_dim = int(self.env.action_space.n) if self.discrete else int(np.prod(self.env.action_space.shape))
        action_shape = () if self.discrete else (action_dim,)
        agent_class = registry.lookup("algorithm", registry.ALGOS, spec.algo)
        self.build_agent(lambda network, hooks: agent_class(obs_dim, action_dim, spec.agent_hyperparams(), network,
                                                            spec.steps, self.device, hooks=hooks))
        self.replay = ReplayBuffer(min(self.hp["buffer_size"], spec.steps), (obs_dim,), action_shape, self.discrete,
                                   self.device)

    def build_agent(self, make_agent: Callable[[NetworkConfig, TrainingHooks], Agent]) -> None:
        """The run's methods (each may change the network config), then the agent built with
        them, set up by them, and its initial parameters kept."""
        self.methods = build_methods(self.spec.methods, self.spec.method_options, planned_updates(self.spec))
        network = self.spec.network_config()
        for method in self.methods:
            network = method.network_config(network)
        self.network_config = network
        self.agent = make_agent(network, TrainingHooks(self.methods))
        # The update a seed training alone runs (a stack compiles its own: training/stack.py).
        self.agent_update = chosen_update(self.agent.update, self.hp, self.run_dir.parent)
        for method in self.methods:  # before any restore: a method may restructure networks
            method.setup(self.agent.roles)
        # theta0 for the weight-drift metric: the parameters at the start of training (kept in
        # the checkpoint, so a resumed run measures drift from the same point).
        self.initial_params = {name: snapshot_parameters(role.network) for name, role in self.agent.roles.items()}

    def start_counters(self, log: TrainingLog | None) -> None:
        """Counters, rows and provenance of a run not yet trained (a checkpoint restores them)."""
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        self.wall_time = 0.0
        self.resumes = 0
        # The seed stacks this run trained in, from which step (training/stack.py): a seed's
        # numbers depend in the last bits on its stack's size (docs/robustness.md).
        self.trained_with: list[dict] = []
        self.episode_return, self.episode_length = 0.0, 0
        self.statistics = StatisticSums()  # since the last health check (training/health.py)
        self.checked_update = 0
        self.next_checkpoint = self.hp["checkpoint_every_steps"]
        self.started = datetime.now(timezone.utc).isoformat()
        code = run_code(self.spec.methods)  # package fingerprint, git state, user modules' source hashes
        config = self.network_config
        about = {"network": {"hidden_sizes": list(config.hidden_sizes), "activation": config.activation,
                             "layer_norm": config.layer_norm},
                 "git": {"sha": code["git_sha"], "dirty": code["git_dirty"]}, "code": code,
                 "versions": package_versions(self.packages), "device": str(self.device), "threads": self.threads}
        self.records = RunRecords(self.spec, self.run_dir, log or TrainingLog(self.run_dir), about, self.continual,
                                  self.progress)

    @property
    def log(self) -> TrainingLog:
        return self.records.log

    # ---- the loop -------------------------------------------------------------------
    def resume(self) -> None:
        """Restore the checkpoint if there is one, mark the run running, open the live views."""
        checkpoint = self.run_dir / results.CHECKPOINT
        if checkpoint.exists():
            state = results.load_checkpoint(checkpoint)
            try:
                self.restore(state)
            except (KeyError, TypeError, ValueError, RuntimeError) as error:  # another layout or another run's shapes
                raise results.CorruptRecordError(f"{checkpoint} does not fit this run: {one_line(error)}") from None
        self.write_manifest("running")
        self.records.open(self.env_steps)

    def start_clock(self) -> None:
        self.clock = time.perf_counter()

    def tick_clock(self) -> None:
        """Add the time since the last tick to the run's wall time."""
        now = time.perf_counter()
        self.wall_time += now - self.clock
        self.clock = now

    def policy_acts(self) -> bool:
        """Whether this step's action comes from the agent's policy (past the random warm-up)."""
        return not self.in_random_warmup()

    def in_random_warmup(self) -> bool:
        return self.agent.random_warmup and self.env_steps < self.hp["learning_starts"]

    def updates_due(self) -> int:
        """The updates the replay ratio asks for after this step's collection."""
        return updates_after(self.hp, self.env_steps) - self.updates

    def evaluation_due(self) -> bool:
        return self.env_steps % self.hp["eval_every_steps"] == 0 or self.env_steps == self.spec.steps

    def end_step(self, episode_over: bool) -> None:
        """After a step's updates and evaluation: at an episode's end, checkpoint when due
        and start the next episode."""
        if episode_over:
            if self.env_steps >= self.next_checkpoint and self.env_steps < self.spec.steps:
                self.tick_clock()
                self.save_checkpoint()
            self.start_episode()

    def finish(self) -> None:
        """The final checkpoint (it checks the final state first)."""
        self.tick_clock()
        self.save_checkpoint()

    def fail(self, error: Exception) -> RunFailedError:
        """Whatever raised (torch on a diverged net, a method, a metric), the run failed:
        record why, keep its records, and return the error for the caller to raise, so
        that the caller can go on with other runs."""
        self.tick_clock()
        reason = self.failure_reason(error)
        self.records.write_tables()
        self.write_manifest("failed", error=reason)
        return RunFailedError(reason)

    def failure_reason(self, error: Exception) -> str:
        """The error, after the non-finite value that most likely caused it, if any."""
        if isinstance(error, NonFiniteError):
            return str(error)
        try:
            self.check_finite()
        except NonFiniteError as nonfinite:
            return f"{nonfinite}; then {one_line(error)}"
        except Exception:  # the device itself failed: the error says more than the check
            pass
        return one_line(error)

    def start_episode(self) -> np.ndarray:
        self.obs, _ = self.env.reset(seed=derived_seed(self.spec.seed, TRAIN_STREAM, self.episodes))
        return self.obs

    def collect_step(self, action=None) -> bool:
        """One env step into the replay buffer with ``action``, the seed's stack's choice
        (training/stack.py); without one, a random action in the warm-up, else the seed's own
        policy's (for benches and tests that drive a trainer by hand). True when the
        episode ended."""
        if action is None:
            action = (self.random_action() if self.in_random_warmup()
                      else self.agent.act(self.obs[None], self.env_steps, [self.rng], explore=True)[0])
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.replay.add(self.obs, action, reward, next_obs, terminated)
        self.obs = next_obs
        self.env_steps += 1
        self.episode_return += float(reward)
        self.episode_length += 1
        if terminated or truncated:
            self.episodes += 1
            self.log.record(self.env_steps, {"charts/episodic_return": self.episode_return,
                                             "charts/episodic_length": self.episode_length})
            self.episode_return, self.episode_length = 0.0, 0
        return terminated or truncated

    def random_action(self):
        if self.discrete:
            return int(self.rng.integers(self.env.action_space.n))
        return self.rng.uniform(-1.0, 1.0, size=self.env.action_space.shape).astype(np.float32)

    def train_on_replay(self) -> None:
        """The updates due, one after another on this seed's own networks, for benches and
        tests that drive a trainer by hand (training runs go through training/stack.py)."""
        for _ in range(self.updates_due()):
            self.measure_at_initialisation()
            self.update_own_networks()
            self.after_update()

    def update_own_networks(self) -> None:
        """One gradient update of this seed's own networks on a batch of its replay (a seed
        stack updates its seeds in one call instead: training/stack.py)."""
        self.accumulate(self.agent_update(self.replay.sample(self.hp["batch_size"])))
        self.updates += 1

    def measure_at_initialisation(self) -> None:
        """Before the first update: the monitor's and the probe's row at update 0, so that
        every change over training is measured from the initial networks (Lyle et al.'s
        plasticity loss is P(theta_t) - P(theta_0); ReDo logs its ratio from step 0). The
        probe's row only where a later probe compares with it: a run shorter than
        probe_every_updates is not probed at all (a probe costs seconds, a short run less)."""
        if self.updates == 0:
            self.monitor()
            every = self.hp["probe_every_updates"]
            if every and planned_updates(self.spec) >= every:
                self.probe_plasticity()

    def after_update(self) -> None:
        """What follows each update: the monitor and the probe when due, then the methods.
        Measure before the methods act, so metrics show the trained network, not the state
        just after a reset that happens on the same update."""
        self.measure_when_due()
        self.let_methods_act()

    def measure_when_due(self) -> None:
        if self.updates % self.hp["monitor_every_updates"] == 0:
            self.check_finite()  # the monitor syncs anyway; a diverged run stops here
            self.monitor()
        if self.hp["probe_every_updates"] and self.updates % self.hp["probe_every_updates"] == 0:
            self.probe_plasticity()

    def let_methods_act(self) -> None:
        for method in self.methods:
            self.records.add_method_stats(self.env_steps, method.after_update(self.agent.roles, self.updates,
                                                                              self.sample_batch))

    def sample_batch(self, batch_size: int | None = None):
        return self.replay.sample(batch_size or self.hp["monitor_batch_size"])

    def accumulate(self, stats: dict[str, torch.Tensor]) -> None:
        """Add an update's statistics (0-dim tensors, see Agent.update) to their device sums."""
        self.statistics.add(stats)

    def check_finite(self) -> None:
        """Raise NonFiniteError if an update statistic since the last check, or a parameter
        now, is NaN or infinite; else log the statistics' means (training_log.py). One host
        sync; called at every monitor call, evaluation and checkpoint, and at the end."""
        loss_sums, loss_counts = self.statistics.sums, self.statistics.counts
        names = [f"{name} (summed over updates {self.checked_update + 1}-{self.updates})" for name in loss_sums]
        values = list(loss_sums.values())
        for role_name, role in self.agent.roles.items():
            for param_name, param in role.network.named_parameters():
                names.append(f"parameter {role_name}.{param_name}")
                values.append(torch.isfinite(param).all().double())  # 1 or 0: finite or not
        synced = torch.stack(values).tolist() if values else []
        sums, param_flags = synced[:len(loss_sums)], synced[len(loss_sums):]
        finite = [math.isfinite(total) for total in sums] + [flag == 1.0 for flag in param_flags]
        bad = [name for name, ok in zip(names, finite) if not ok]
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise NonFiniteError(f"non-finite {bad[0]}{more} at env step {self.env_steps} (update {self.updates})")
        self.records.log_progress(self.env_steps, self.updates,
                                  {f"losses/{name}": total / loss_counts[name] for name, total in zip(loss_sums, sums)})
        self.statistics.clear()
        self.checked_update = self.updates

    def check_eval_return(self) -> None:
        value = self.records.last_return()
        if not math.isfinite(value):
            raise NonFiniteError(f"evaluation return is {value} at env step {self.env_steps}")

    def monitor(self) -> None:
        """The monitor's row; its batch is drawn from a generator of this call, so how often a
        run is measured never changes what it trains (returns do not depend on the cadence)."""
        generator = torch.Generator(self.replay.device).manual_seed(
            derived_seed(self.spec.seed, MONITOR_STREAM, self.updates))
        batch = self.replay.sample(self.hp["monitor_batch_size"], generator=generator)
        self.records.add_metrics(self.env_steps, monitor_roles(
            self.agent.roles, batch, self.initial_params, hessian=self.hp["monitor_hessian"],
            hessian_iterations=self.hp["hessian_iterations"]))

    def probe_plasticity(self) -> None:
        """Lyle et al.'s probe on copies of the networks; its own RNG, so training is unchanged."""
        seed = derived_seed(self.spec.seed, PROBE_STREAM, self.updates // self.hp["probe_every_updates"])
        rows = probe_roles(self.agent.roles, self.replay, steps=self.hp["probe_steps"], lr=self.hp["probe_lr"] or None,
                           batch_size=self.hp["probe_batch_size"], targets=self.hp["probe_targets"], seed=seed)
        self.records.add_metrics(self.env_steps, rows)

    def eval_episode(self, episode: int) -> EvalEpisode:
        """Episode ``episode`` of the next evaluation, its environment reset."""
        evaluation = len(self.records.eval_rows)
        obs, _ = self.eval_env.reset(seed=derived_seed(self.spec.seed, EVAL_STREAM, evaluation, episode))
        # The policy's own draws come from a generator of this episode, so evaluating
        # never moves the training RNGs and every evaluation is reproducible.
        policy_rng = np.random.default_rng(derived_seed(self.spec.seed, EVAL_POLICY_STREAM, evaluation, episode))
        return EvalEpisode(self.eval_env, obs, policy_rng)

    def evaluate(self, returns: list[float]) -> None:
        """Record an evaluation whose episodes the seed's stack played (training/stack.py).
        A non-finite return fails the run, recorded."""
        segment = ({"segment": self.eval_env.segment, "segment_task": self.eval_env.segment_task}
                   if self.continual else None)  # the segment the evaluation played
        self.records.add_evaluation(self.env_steps, returns, segment)
        self.records.record_evaluation(self.env_steps, self.updates)
        self.check_eval_return()

    # ---- checkpoint and manifest (written by records.py) ---------------------------
    def counters(self) -> dict:
        return {"env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
                "next_checkpoint": self.next_checkpoint, "wall_time": self.wall_time,
                "resumes": self.resumes, "started": self.started, "trained_with": self.trained_with}

    def save_checkpoint(self) -> None:
        self.check_finite()  # a checkpoint never holds a diverged state
        self.next_checkpoint = (self.env_steps // self.hp["checkpoint_every_steps"] + 1) * self.hp["checkpoint_every_steps"]
        state = {
            "run_id": self.spec.run_id,
            "agent": own_storage(self.agent.state_dict()),
            "methods": own_storage([m.state_dict() for m in self.methods]),
            "replay": self.replay.state_dict(),
            "rng": {"python": random.getstate(), "numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                    # replay sampling on a GPU draws from that device's generator
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
            "counters": self.counters(),
            "initial_params": own_storage(self.initial_params),
        }
        if self.continual:  # its step count and segment; the rest derives from the spec
            state["continual_env"] = self.env.state_dict()
        self.records.write_checkpoint(state)
        self.write_manifest("running")

    def restore(self, state: dict) -> None:
        if state["run_id"] != self.spec.run_id:
            raise RunConflictError(f"checkpoint in {self.run_dir} belongs to run {state['run_id']!r}")
        # Methods first: one that changed the networks' structure (plasticity injection)
        # re-applies it, so that the agent's saved parameters and optimizer groups fit.
        for method, method_state in zip(self.methods, state["methods"]):
            method.load_state_dict(method_state)
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        if self.continual:
            self.env.load_state_dict(state["continual_env"])
        self.initial_params = {name: [t.to(self.device) for t in tensors]
                               for name, tensors in state["initial_params"].items()}
        random.setstate(state["rng"]["python"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        counters = state["counters"]
        self.env_steps, self.episodes, self.updates = counters["env_steps"], counters["episodes"], counters["updates"]
        self.next_checkpoint, self.wall_time = counters["next_checkpoint"], counters["wall_time"]
        self.started = counters["started"]
        self.resumes = counters["resumes"] + 1
        self.trained_with = [entry for entry in counters.get("trained_with", []) if entry["from_step"] <= self.env_steps]
        self.records.restore(state)

    def write_manifest(self, status: str, error: str | None = None) -> dict:
        return self.records.write_manifest(status, self.counters(), error)
