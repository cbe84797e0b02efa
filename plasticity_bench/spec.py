"""RunSpec: the frozen, validated description of one training run.

Every choice a run depends on lives here, resolved to concrete values, so that the
manifest records it in full and the run id is a stable hash of it. Whether a combination
of algorithm, architecture, method and task is valid is decided here, once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from plasticity_bench import registry
from plasticity_bench.environments import continual, is_discrete, is_supervised, validate_task
from plasticity_bench.environments.continual import is_continual, named_sequences, parse_name
from plasticity_bench.environments.supervised import DIGITS_COUNT
from plasticity_bench.methods import method_class
from plasticity_bench.networks.diffusion import BETA_SCHEDULES
from plasticity_bench.networks.config import NetworkConfig
from plasticity_bench.networks.layers import ACTIVATIONS
from plasticity_bench.provenance import user_module_hashes


class SpecError(ValueError):
    """A user error in a run specification (reported as one line, no traceback)."""


class InvalidCombinationError(SpecError):
    """Valid names that do not go together (e.g. DQN on a continuous task); a pipeline
    drops such cells of its matrix with this reason instead of failing."""


# Cadences shared by every algorithm; each key names its unit: steps are environment steps
# (gradient steps for sl), updates are gradient updates.
# Keys renamed so that every cadence names its unit; the old names get a pointer, not "unknown".
RENAMED_KEYS = {"eval_every": "eval_every_steps", "checkpoint_every": "checkpoint_every_steps",
                "monitor_every": "monitor_every_updates", "probe_every": "probe_every_updates"}
TRAINER_DEFAULTS: dict[str, Any] = {
    "eval_every_steps": 5000,  # env steps between evaluations (and always at the last step)
    "eval_episodes": 10,  # evaluation-policy episodes per evaluation (see each agent's act)
    "checkpoint_every_steps": 10000,  # env steps; taken at the next episode boundary (see training/run.py)
    "monitor_every_updates": 1000,  # gradient updates between plasticity-metric measurements
    "monitor_batch_size": 256,  # replay samples in the held monitoring batch
    # Top Hessian eigenvalue at each monitor call (power iteration; costly, see metrics/curvature.py).
    "monitor_hessian": False,
    "hessian_iterations": 20,  # Hessian-vector products per monitor call, at most
    # Plasticity probe (Lyle et al. 2023; metrics/plasticity_probe.py, docs/metrics.md): at update
    # 0 and every probe_every_updates updates (0 = off), copies of each role's network fit
    # probe_targets random target functions on probe_batch_size replay inputs for probe_steps
    # full-batch steps of the network's own optimizer type (at its own learning rate, or
    # probe_lr when > 0). Lyle et al.'s protocol: 2000 steps, 10 targets, every 5000 updates.
    "probe_every_updates": 5000,
    "probe_steps": 2000,
    "probe_targets": 10,
    "probe_lr": 0.0,
    "probe_batch_size": 128,
    "hidden_sizes": (256, 256),
    "activation": "ReLU",
    # "on": the update (losses, backward, optimizer step, target update) runs through
    # torch.compile (inductor; training/compiled.py). Its numbers differ from eager's in the
    # last bits, so "on" is part of the run id; "off", the default, is left out of it (run ids
    # from before the option existed stay valid). "graphs": a seed stack's update captured
    # once into CUDA graphs and replayed (training/graphs.py; CUDA only), in the run id like "on".
    "compile": "off",
}
COMPILE_CHOICES = ("off", "on", "graphs")

# Hyperparameters of one architecture only: runs of other architectures neither carry nor
# accept them. Each maps onto a NetworkConfig field (ARCH_CONFIG_FIELDS).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {},
    # Residual blocks of critics / Q-networks and of the actor, and the SimBa pre-LayerNorm
    # variant (see networks/residual.py). Its width is hidden_sizes[0] and must be one
    # number; BRO's 256 also for DQN, whose CleanRL MLP widths (120, 84) differ.
    # BRO's shapes by default (Nauman et al. 2024, as the GraMa paper ran it): 2 critic
    # blocks, 1 actor block, width 256, orthogonal initialisation.
    "residual": {"residual_blocks": 2, "residual_actor_blocks": 1, "residual_pre_norm": False,
                 "residual_init": "orthogonal", "hidden_sizes": (256, 256)},
    # The actor's reverse-diffusion steps K, its denoiser MLP's widths and the diffusers
    # beta schedule (see networks/diffusion.py).
    # DACER's denoiser activation (Mish) by default.
    "diffusion": {"diffusion_steps": 5, "denoiser_hidden_sizes": (256, 256), "denoiser_activation": "Mish",
                  "beta_schedule": "squaredcos_cap_v2"},
}
RESIDUAL_INITS = ("orthogonal", "default")
ARCH_CONFIG_FIELDS = {"residual_blocks": "blocks", "residual_actor_blocks": "actor_blocks", "residual_pre_norm": "pre_norm", "residual_init": "init",
                      "diffusion_steps": "diffusion_steps", "denoiser_hidden_sizes": "denoiser_hidden_sizes",
                      "denoiser_activation": "denoiser_activation", "beta_schedule": "beta_schedule"}

# Hyperparameters as named in the CleanRL references, with their defaults.
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "sac": {
        "gamma": 0.99,
        "tau": 0.005,
        "batch_size": 256,
        "buffer_size": 1_000_000,
        "learning_starts": 5000,
        "policy_lr": 3e-4,
        "q_lr": 1e-3,
        "policy_frequency": 2,
        "target_network_frequency": 1,
        "alpha": 0.2,  # entropy coefficient when autotune is off; autotune starts at 1 (CleanRL)
        "autotune": True,
        "replay_ratio": 1.0,  # gradient updates per env step
    },
    "td3": {
        "gamma": 0.99,
        "tau": 0.005,
        "batch_size": 256,
        "buffer_size": 1_000_000,
        "learning_starts": 25_000,
        "learning_rate": 3e-4,  # actor and critics
        "policy_noise": 0.2,  # std of the target policy smoothing noise
        "exploration_noise": 0.1,  # std of the Gaussian noise added to actions while training
        "noise_clip": 0.5,
        "policy_frequency": 2,  # actor and target updates every this many critic updates
        "replay_ratio": 1.0,  # gradient updates per env step
    },
    "dqn": {
        "learning_rate": 2.5e-4,
        "buffer_size": 10_000,
        "gamma": 0.99,
        "tau": 1.0,
        "target_network_frequency": 500,
        "batch_size": 128,
        "start_e": 1.0,
        "end_e": 0.05,
        "exploration_fraction": 0.5,
        "eval_epsilon": 0.05,  # ε of evaluation episodes (CleanRL's evaluate: end_e)
        "learning_starts": 10_000,
        "replay_ratio": 0.1,  # CleanRL's train_frequency = 10
        "hidden_sizes": (120, 84),
    },
    # Continual supervised learning (training/supervised.py), Lyle et al. 2023's random-label
    # memorisation scaled down to CPU seconds (theirs: a 2x1024 MLP on MNIST). Its steps are
    # gradient steps, a whole number of tasks: steps = tasks x task_steps. At these defaults
    # a fresh MLP memorises a task (accuracy ~0.99) and, without intervention, later tasks
    # fall towards chance (tests/test_supervised.py, README).
    "sl": {
        "learning_rate": 3e-3,  # Adam, kept (with its moments) from task to task
        "batch_size": 64,  # samples per gradient step, drawn uniformly with replacement
        "task_steps": 500,  # gradient steps per task; the labels are re-drawn at each task's start
        "samples": 512,  # digits memorised by every task: the data set's first ones
        "hidden_sizes": (256, 256),
        "checkpoint_every_steps": 5000,  # gradient steps
    },
}
# Trainer keys that only the RL trainer reads: a supervised run (sl) evaluates at the end
# of every task instead, and neither carries nor accepts them.
RL_TRAINER_KEYS = ("eval_every_steps", "eval_episodes")


@dataclass(frozen=True)
class RunSpec:
    algo: str
    arch: str
    methods: tuple[str, ...]
    task: str
    seed: int
    steps: int
    hyperparams: dict[str, Any] = field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return "+".join(self.methods)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["methods"] = list(self.methods)
        data["method"] = self.method
        data["hyperparams"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.hyperparams.items()
                               if not (k == "compile" and v == "off")}
        return data

    def agent_hyperparams(self) -> dict[str, Any]:
        return agent_hyperparams(self.algo, self.hyperparams)

    def network_config(self) -> NetworkConfig:
        """The architecture this spec trains (before methods rewrite it)."""
        hp = self.hyperparams
        arch_fields = {field: hp[key] for key, field in ARCH_CONFIG_FIELDS.items() if key in hp}
        return NetworkConfig(arch=self.arch, hidden_sizes=tuple(hp["hidden_sizes"]), activation=hp["activation"],
                             **arch_fields)

    @property
    def run_id(self) -> str:
        """Readable prefix + hash of the full resolved spec: a changed hyperparameter is a new run."""
        # A user method's source enters the id too: edited method code is another run.
        user_code = user_module_hashes(self.methods)
        canonical = json.dumps({**self.to_dict(), **({"user_code": user_code} if user_code else {})}, sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
        task = re.sub(r"[^A-Za-z0-9]+", "_", self.task)
        method = re.sub(r"[^A-Za-z0-9_+]+", "_", self.method)  # user methods: "pkg.module:Class"
        return f"{self.algo}-{self.arch}-{method}-{task}-s{self.seed}-{digest}"


def agent_hyperparams(algo: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """What the agent reads: the hyperparameters, with the schedules a paper gives in env
    steps resolved into the agent's updates. Derived, so not part of the run id."""
    resolved = dict(hyperparams)
    if algo == "dqn":
        # CleanRL counts the target period in env steps; an update comes every 1/replay_ratio
        # steps: the same schedule at CleanRL's settings, and one defined at any other ratio.
        resolved["target_period_updates"] = max(1, round(hyperparams["target_network_frequency"] * hyperparams["replay_ratio"]))
    return resolved


def parse_methods(method: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in method.split("+"))
    for name in names:
        bracket = re.fullmatch(r"([^\[\]]+)\[([^\[\]]*)\]", name)
        if bracket and "=" in bracket[2]:  # a config's method entry: options go in --set here
            sets = " ".join(f"--set {bracket[1]}.{pair.strip()}" for pair in bracket[2].split(",") if pair.strip())
            raise SpecError(f"method {name!r}: options in brackets are for a config's method entries; on the "
                            f"command line write --method {bracket[1]} {sets}")
        try:
            method_class(name)
        except ValueError as error:
            raise SpecError(str(error)) from None
    if len(set(names)) != len(names):
        raise SpecError(f"method {method!r} names a method twice")
    return names


# Architecture hyperparameters that only a policy network reads (DQN has none).
ACTOR_ONLY_KEYS = {"residual_actor_blocks"}
ACTORLESS_ALGOS = ("dqn", "sl")


def default_hyperparams(algo: str, arch: str = "mlp") -> dict[str, Any]:
    algo_defaults = {k: v for k, v in ALGO_DEFAULTS[algo].items() if k not in ARCH_DEFAULTS[arch]}
    arch_defaults = {k: v for k, v in ARCH_DEFAULTS[arch].items() if algo not in ACTORLESS_ALGOS or k not in ACTOR_ONLY_KEYS}
    trainer_defaults = {k: v for k, v in TRAINER_DEFAULTS.items() if algo != "sl" or k not in RL_TRAINER_KEYS}
    return {**trainer_defaults, **arch_defaults, **algo_defaults}


def _coerce(key: str, raw: str, default: Any) -> Any:
    """Parse an override value with YAML and check it has the default's type."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise SpecError(f"cannot parse value {raw!r} for {key}: {error}".splitlines()[0]) from None
    if key == "compile" and isinstance(value, bool):  # YAML reads on/off as booleans
        value = "on" if value else "off"
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value) and math.isfinite(default):
            raise SpecError(f"{key}={raw!r} is not a finite number; give one like {default!r}")
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, int) and v > 0 for v in value)
        value = tuple(value) if ok else value
    elif default is None or isinstance(default, (str, list)):
        ok = True
    else:
        ok = isinstance(value, type(default))
    if not ok and isinstance(default, tuple):  # "(64,64)" reads as a string: show the list form
        example = ",".join(re.findall(r"\d+", str(raw))) or ",".join(map(str, default))
        raise SpecError(f"{key}={raw!r} is not a list of positive integers; write it as {key}=[{example}]")
    if not ok:
        raise SpecError(f"{key}={raw!r} has the wrong type; expected {type(default).__name__} like {default!r}")
    return value


def build_spec(
    algo: str,
    arch: str,
    method: str,
    task: str,
    seed: int,
    steps: int,
    overrides: list[str] | dict[str, Any] = (),
) -> RunSpec:
    """Validate every choice and resolve defaults; raises SpecError naming the bad value."""
    if algo not in registry.ALGOS:
        raise SpecError(f"unknown algorithm {algo!r}; valid: {', '.join(registry.ALGOS)}")
    if arch not in registry.ARCHS:
        raise SpecError(f"unknown architecture {arch!r}; valid: {', '.join(registry.ARCHS)}")
    methods = parse_methods(method)
    try:
        validate_task(task)
    except ValueError as error:
        raise SpecError(str(error)) from None
    if algo == "sl" or is_supervised(task):
        _check_supervised_combination(algo, arch, task)
    elif not is_continual(task):  # a continual task's segments are known once its overrides are read
        _check_rl_combination(algo, arch, task)
    if steps <= 0:
        raise SpecError(f"steps must be positive, got {steps}")
    if seed not in SEED_RANGE:
        raise SpecError(f"seed={seed} is out of range; valid: integers in {SEED_RANGE}")

    method_classes = {name: method_class(name) for name in methods}
    validate_method_combination(method_classes, arch)

    hyperparams = default_hyperparams(algo, arch)
    if is_continual(task):  # the sequence's definition is part of the spec (and its run id)
        hyperparams["sequence"] = named_sequences().get(parse_name(task)[0], {})
    method_options = {name: dict(cls.options()) for name, cls in method_classes.items()}
    items = overrides.items() if isinstance(overrides, dict) else (_split_override(o) for o in overrides)
    for key, raw in items:
        raw = raw if isinstance(raw, str) else json.dumps(raw)
        if "." in key:  # method option; a user method's name may itself contain dots
            name, _, option = key.rpartition(".")
            if name not in method_options:
                raise SpecError(f"override {key!r} names method {name!r}, which this run does not use ({'+'.join(methods)})")
            if option not in method_options[name]:
                valid = ", ".join(f"{name}.{o}" for o in method_options[name]) or "none"
                raise SpecError(f"unknown option {key!r}; valid options of {name}: {valid}")
            method_options[name][option] = _coerce(key, raw, method_options[name][option])
        elif key in hyperparams:
            hyperparams[key] = _coerce(key, raw, hyperparams[key])
        elif key in RENAMED_KEYS:
            raise SpecError(f"{key!r} is now {RENAMED_KEYS[key]!r} (cadence keys name their unit)")
        else:
            raise SpecError(f"unknown hyperparameter {key!r} for {algo} with arch {arch}; valid: {', '.join(sorted(hyperparams))}")
    _check_values(hyperparams)
    if is_continual(task):
        _check_continual(algo, arch, task, steps, hyperparams)
    if algo == "sl" and steps % hyperparams["task_steps"]:
        task_steps = hyperparams["task_steps"]
        raise SpecError(f"steps={steps} is not a whole number of tasks of task_steps={task_steps} gradient steps; "
                        f"valid: a multiple of {task_steps}, e.g. {max(1, round(steps / task_steps)) * task_steps}")
    if arch == "residual" and getattr(ACTIVATIONS[hyperparams["activation"]], "copies", 1) > 1:
        raise InvalidCombinationError(f"activation {hyperparams['activation']!r} doubles each layer's width, which the "
                                      "residual stream of architecture 'residual' keeps fixed; use arch 'mlp' or 'diffusion'")
    if arch == "residual" and len(set(hyperparams["hidden_sizes"])) != 1:
        raise SpecError(f"arch 'residual' has one width; hidden_sizes {list(hyperparams['hidden_sizes'])} lists several")
    for name, cls in method_classes.items():
        try:
            cls(**method_options[name])  # options are validated by the method itself
        except (TypeError, ValueError) as error:
            raise SpecError(f"method {name}: {error}") from None
    return RunSpec(algo, arch, methods, task, seed, steps, hyperparams, method_options)


def _check_continual(algo: str, arch: str, task: str, steps: int, hyperparams: dict[str, Any]) -> None:
    """Resolve a continual task's sequence in place (an override's keys over the named
    sequence's, every default filled in) and check it; SequenceError -> SpecError."""
    named = named_sequences().get(parse_name(task)[0], {})
    try:
        _, _, sequence = continual.resolve(task, {**named, **hyperparams["sequence"]} if named else hyperparams["sequence"])
        continual.check_budget(task, sequence, steps, hyperparams)
    except continual.SequenceError as error:
        raise SpecError(str(error)) from None
    hyperparams["sequence"] = sequence.to_dict()
    _check_rl_combination(algo, arch, sequence.tasks[0])


def _check_rl_combination(algo: str, arch: str, task: str) -> None:
    if algo == "dqn" and arch == "diffusion":
        raise InvalidCombinationError(
            "algorithm 'dqn' has no actor; architecture 'diffusion' is a diffusion policy for "
            "actor-critic algorithms (sac, td3)"
        )
    discrete = is_discrete(task)
    if algo == "dqn" and not discrete:
        raise InvalidCombinationError(f"algorithm 'dqn' needs a discrete-action task; {task!r} has continuous actions")
    if algo != "dqn" and discrete:
        raise InvalidCombinationError(f"algorithm {algo!r} needs a continuous-action task; {task!r} has discrete actions")


def _check_supervised_combination(algo: str, arch: str, task: str) -> None:
    """Algorithm sl trains a classifier on supervised tasks (family sl) and nothing else does."""
    if algo != "sl":
        raise InvalidCombinationError(f"task {task!r} is a supervised task; only algorithm 'sl' trains on it, not {algo!r}")
    if not is_supervised(task):
        raise InvalidCombinationError(f"algorithm 'sl' trains on supervised tasks (family 'sl', e.g. "
                                      f"sl:digits-random-labels); {task!r} is a reinforcement-learning task")
    if arch == "diffusion":
        raise InvalidCombinationError("algorithm 'sl' trains one classifier; architecture 'diffusion' is a diffusion "
                                      "policy for actor-critic algorithms (sac, td3); valid for sl: mlp, residual")


def validate_method_combination(method_classes: dict[str, type], arch: str) -> None:
    """Methods compose (``layer_norm+regrama``) unless they compete for one thing: at most
    one may own the reset schedule, at most one may build the optimizers; and a method may
    not apply to an architecture (its ``unsupported_archs`` says why)."""
    owners = [name for name, cls in method_classes.items() if cls.owns_reset_schedule]
    if len(owners) > 1:
        raise InvalidCombinationError(f"methods {' and '.join(owners)} both own the reset schedule; combine at most one of them")
    optimizers = [name for name, cls in method_classes.items() if getattr(cls, "provides_optimizer", False)]
    if len(optimizers) > 1:
        raise InvalidCombinationError(f"methods {' and '.join(optimizers)} both provide the optimizer; combine at most one of them")
    for name, cls in method_classes.items():
        reason = getattr(cls, "unsupported_archs", {}).get(arch)
        if reason:
            valid = ", ".join(a for a in registry.ARCHS if a not in cls.unsupported_archs)
            raise InvalidCombinationError(f"method {name!r} does not apply to architecture {arch!r}: {reason}; "
                                          f"valid architectures: {valid}")


def _split_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SpecError(f"override {text!r} is not of the form key=value")
    return key.strip(), value.strip()


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric hyperparameter: an interval, open or closed at each
    end. NaN lies in none, and a bound at infinity is always open."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open or self.low == -math.inf else value >= self.low
        below = value < self.high if self.high_open or self.high == math.inf else value <= self.high
        return bool(above and below)

    def __str__(self) -> str:
        left = "(" if self.low_open or self.low == -math.inf else "["
        right = ")" if self.high_open or self.high == math.inf else "]"
        low, high = (str(b) if isinstance(b, int) else f"{b:g}" for b in (self.low, self.high))
        return f"{left}{low}, {high}{right}" + (f" ({self.note})" if self.note else "")


COUNT = Range(1)  # integers >= 1
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)  # finite and > 0: learning rates, ratios
PROBABILITY = Range(0, 1)

# Every numeric hyperparameter of every algorithm and architecture, with its valid values
# (tests/test_failures.py checks none is missing: a new key needs one line here).
VALID_RANGES: dict[str, Range] = {
    "eval_every_steps": COUNT, "eval_episodes": COUNT, "checkpoint_every_steps": COUNT, "monitor_every_updates": COUNT,
    "monitor_batch_size": COUNT, "hessian_iterations": COUNT,
    "probe_every_updates": Range(0, note="0 = no plasticity probe"), "probe_steps": COUNT, "probe_targets": COUNT,
    "probe_lr": Range(0, note="0 = the learning rate the network trains with"), "probe_batch_size": COUNT,
    "residual_blocks": NON_NEGATIVE, "residual_actor_blocks": NON_NEGATIVE, "diffusion_steps": COUNT,
    "gamma": PROBABILITY, "tau": Range(0, 1, low_open=True), "batch_size": COUNT, "buffer_size": COUNT,
    "learning_starts": NON_NEGATIVE, "replay_ratio": POSITIVE,
    "policy_lr": POSITIVE, "q_lr": POSITIVE, "learning_rate": POSITIVE, "alpha": POSITIVE,
    "policy_frequency": COUNT, "target_network_frequency": COUNT,
    "policy_noise": NON_NEGATIVE, "exploration_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE,
    "start_e": PROBABILITY, "end_e": PROBABILITY, "exploration_fraction": Range(0, 1, low_open=True),
    "eval_epsilon": PROBABILITY,
    "task_steps": COUNT, "samples": Range(1, DIGITS_COUNT, note="digits in scikit-learn's data set"),
}
# numpy's SeedSequence takes any non-negative integer; torch.manual_seed at most 2**64 - 1.
SEED_RANGE = Range(0, 2**64 - 1)


def _check_values(hyperparams: dict[str, Any]) -> None:
    for key, valid in VALID_RANGES.items():
        if key in hyperparams and hyperparams[key] not in valid:
            raise SpecError(f"{key}={hyperparams[key]!r} is out of range; valid: {valid}")
    if hyperparams["activation"] not in ACTIVATIONS:
        raise SpecError(f"unknown activation {hyperparams['activation']!r}; valid: {', '.join(ACTIVATIONS)}")
    if not hyperparams["hidden_sizes"]:
        raise SpecError("hidden_sizes must list at least one layer width")
    if hyperparams.get("compile", "off") not in COMPILE_CHOICES:
        raise SpecError(f"compile={hyperparams['compile']!r} is not a choice; valid: {', '.join(COMPILE_CHOICES)}")
    if hyperparams.get("denoiser_activation", "Mish") not in ACTIVATIONS:
        raise SpecError(f"unknown denoiser_activation {hyperparams['denoiser_activation']!r}; "
                        f"valid: {', '.join(ACTIVATIONS)}")
    if hyperparams.get("residual_init", "default") not in RESIDUAL_INITS:
        raise SpecError(f"unknown residual_init {hyperparams['residual_init']!r}; valid: {', '.join(RESIDUAL_INITS)}")
    if hyperparams.get("denoiser_hidden_sizes") == ():
        raise SpecError("denoiser_hidden_sizes must list at least one layer width")
    if hyperparams.get("beta_schedule", BETA_SCHEDULES[0]) not in BETA_SCHEDULES:
        raise SpecError(f"unknown beta_schedule {hyperparams['beta_schedule']!r}; valid: {', '.join(BETA_SCHEDULES)}")
