"""Expand a pipeline config into the runs it asks for: suite × algo × arch × method × task × seed.

Invalid combinations (DQN on a continuous task, an algorithm a suite is not for, ...) are
dropped with the reason ``build_spec`` gives, never silently. The Snakefile and
``plasticity-bench aggregate`` both read the result, so they agree on what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plasticity_bench.environments.continual import Sequence, is_continual, parse_name
from plasticity_bench.environments.suites import load_suite
from plasticity_bench.results import write_json
from plasticity_bench.spec import InvalidCombinationError, RunSpec, SpecError, build_spec


@dataclass(frozen=True)
class PlannedRun:
    spec: RunSpec
    suite: str
    overrides: dict[str, Any]
    # An experiment's label for settings that differ from another entry's runs of the same
    # method (e.g. "rr1" for replay ratio 1): the claims report compares variants, and
    # aggregation treats each variant as a method of its own.
    variant: str = ""
    # The leaderboard entry: the config's method entry as written (with its options, e.g.
    # "regrama[tau=0.1]"), then "[variant]" if any; the plain method name otherwise.
    label: str = ""
    # A fresh-agent reference of a continual run's segment (``reference_runs``): trained like
    # any run, scored only as the denominator of plasticity ratios (analysis/continual.py).
    reference: bool = False
    # A continual run's reference run ids, one per segment it trains (segment order).
    references: tuple[str, ...] = ()

    def cli_args(self, seeds: list[int] | None = None) -> list[str]:
        """``plasticity-bench train`` arguments that rebuild exactly this spec; with ``seeds``,
        the specs of those seeds of its cell (``--seeds``) instead."""
        s = self.spec
        seed_args = ["--seed", str(s.seed)] if seeds is None else ["--seeds", ",".join(map(str, seeds))]
        args = ["--algo", s.algo, "--arch", s.arch, "--method", s.method, "--task", s.task,
                *seed_args, "--steps", str(s.steps)]
        for key, value in self.overrides.items():
            args += ["--set", f"{key}={json.dumps(value)}"]
        return args

    def row(self) -> dict[str, Any]:
        s = self.spec
        row = {"run_id": s.run_id, "algo": s.algo, "arch": s.arch, "method": s.method, "task": s.task,
               "seed": s.seed, "suite": self.suite, "steps": s.steps}
        if self.variant:
            row["variant"] = self.variant
        if self.label and self.label != s.method:
            row["label"] = self.label
        if self.reference:
            row["reference"] = True
        if self.references:
            row["references"] = list(self.references)
        return row


def cell_key(spec: RunSpec) -> str:
    """What a run trains, but for its seed: runs with the same key differ only in their seed
    (``seed_batch.train_seeds`` trains such runs together)."""
    return json.dumps({key: value for key, value in spec.to_dict().items() if key != "seed"}, sort_keys=True)


@dataclass(frozen=True)
class TrainJob:
    """Runs of one cell (equal but for their seed) that one workflow job trains together."""

    name: str
    runs: tuple[PlannedRun, ...]

    @property
    def seeds(self) -> list[int]:
        return [run.spec.seed for run in self.runs]

    @property
    def run_ids(self) -> list[str]:
        return [run.spec.run_id for run in self.runs]

    def cli_args(self) -> list[str]:
        """``plasticity-bench train`` arguments that rebuild exactly these runs' specs: a job
        of one run passes ``--seed`` (a one-seed run, as without grouping), a larger one ``--seeds``."""
        return self.runs[0].cli_args() if len(self.runs) == 1 else self.runs[0].cli_args(seeds=self.seeds)


def train_jobs(runs: list[PlannedRun], seeds_per_job: int | None = None) -> list[TrainJob]:
    """The planned runs grouped into training jobs: the runs of each cell (``cell_key``), in
    planned order, in chunks of at most ``seeds_per_job`` (None: all of a cell's seeds in one
    job). A job of one run is named by its run id; a larger one by its first run's id and its
    number of runs, e.g. ``dqn-mlp-none-gym_CartPole_v1-s0-0123456789--2seeds``."""
    if seeds_per_job is not None and (isinstance(seeds_per_job, bool) or not isinstance(seeds_per_job, int)
                                      or seeds_per_job < 1):
        raise SpecError(f"seeds_per_job must be a positive integer, got {seeds_per_job!r}")
    cells: dict[str, list[PlannedRun]] = {}
    for run in runs:
        cells.setdefault(cell_key(run.spec), []).append(run)
    jobs = []
    for cell in cells.values():
        size = seeds_per_job or len(cell)
        for start in range(0, len(cell), size):
            chunk = tuple(cell[start:start + size])
            name = chunk[0].spec.run_id if len(chunk) == 1 else f"{chunk[0].spec.run_id}--{len(chunk)}seeds"
            jobs.append(TrainJob(name, chunk))
    return jobs


# A method entry: components joined by '+', each a method name with optional options in
# brackets, e.g. "regrama[tau=0.1,period=5000]" or "layer_norm+redo[tau=0.02]".
COMPONENT = re.compile(r"^(?P<name>[^\[\]=,+]+)(?:\[(?P<options>[^\[\]]*)\])?$")


@dataclass(frozen=True)
class MethodEntry:
    entry: str  # as written in the config: the leaderboard entry
    names: tuple[str, ...]  # the methods it composes
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per method, from the brackets

    @property
    def method(self) -> str:
        return "+".join(self.names)


def _split_components(entry: str) -> list[str]:
    """Split at the '+' signs outside brackets."""
    parts, depth, current = [], 0, ""
    for char in entry:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "+" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def parse_method_entry(entry: str) -> MethodEntry:
    """``"regrama[tau=0.1,period=5000]"`` → names ("regrama",), options {"regrama": {"tau":
    0.1, "period": 5000}}. Option values are read as YAML scalars (numbers, booleans, null,
    strings); the option names themselves are checked when the run's spec is built."""
    names, options = [], {}
    for component in _split_components(entry.strip()):
        match = COMPONENT.match(component.strip())
        if not match:
            raise SpecError(f"method entry {entry!r}: cannot read {component!r}; write a method name, optionally "
                            "with options in brackets, e.g. regrama[tau=0.1,period=5000] (components joined by '+')")
        name = match["name"].strip()
        names.append(name)
        if match["options"] is None:
            continue
        pairs = [pair for pair in match["options"].split(",") if pair.strip()]
        if not pairs or any("=" not in pair for pair in pairs):
            raise SpecError(f"method entry {entry!r}: options of {name!r} must be key=value pairs separated by ','")
        keys = [pair.split("=", 1)[0].strip() for pair in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise SpecError(f"method entry {entry!r} gives option {repeated[0]!r} twice; give each option once")
        options[name] = {key.strip(): yaml.safe_load(value.strip()) for key, value in
                         (pair.split("=", 1) for pair in pairs)}
    return MethodEntry(entry.strip(), tuple(names), options)


def _format_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def sweep_entries(sweep: dict[str, dict[str, list[Any]]]) -> list[str]:
    """``sweep: {regrama: {tau: [0.01, 0.1], period: [1000, 5000]}}`` → one method entry per
    point of the grid: "regrama[tau=0.01,period=1000]", ... (the options' order as given)."""
    entries = []
    for method, grid in sweep.items():
        if not isinstance(grid, dict) or not grid or not all(isinstance(values, list) and values
                                                             for values in grid.values()):
            raise SpecError(f"sweep.{method} must map each option to a non-empty list of values, got {grid!r}")
        for point in itertools.product(*grid.values()):
            options = ",".join(f"{key}={_format_value(value)}" for key, value in zip(grid, point))
            entries.append(f"{method}[{options}]")
    return entries


def block_methods(block: dict[str, Any]) -> list[str]:
    """A product's method entries: its ``methods`` list, then its ``sweep`` grid's points."""
    return list(block["methods"]) + sweep_entries(block.get("sweep", {}))


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def overrides_for(config: dict[str, Any], algo: str, suite: str, methods: tuple[str, ...]) -> dict[str, Any]:
    """Hyperparameter overrides: config-wide, then per algorithm, then per suite × algorithm;
    method options for the methods in this run."""
    overrides = dict(config.get("overrides", {}).get("all", {}))
    overrides.update(config.get("overrides", {}).get(algo, {}))
    overrides.update(config.get("suite_overrides", {}).get(suite, {}).get(algo, {}))
    for method in methods:
        for option, value in config.get("method_options", {}).get(method, {}).items():
            overrides[f"{method}.{option}"] = value
    return overrides


def experiment_config(config: dict[str, Any], experiment: dict[str, Any]) -> dict[str, Any]:
    """The main config with an ``experiments`` entry's keys replacing its own, except
    ``overrides`` (merged per algorithm) and ``method_options`` (merged per method), whose
    entries go on top of the main ones: an experiment sets a paper's tau for its cells
    without restating every other option."""
    block = {**config, **experiment}
    if "sweep" not in experiment:  # a sweep belongs to the product that states it
        block.pop("sweep", None)
    for key in ("overrides", "method_options"):
        main, extra = config.get(key, {}), experiment.get(key, {})
        block[key] = {name: {**main.get(name, {}), **extra.get(name, {})} for name in {*main, *extra}}
    return block


def expand(config: dict[str, Any]) -> tuple[list[PlannedRun], list[dict[str, Any]]]:
    """Runs of the config's main product and of each entry of ``experiments`` (a product of
    its own, see ``experiment_config``), without duplicates."""
    check_names(config)
    runs: dict[str, PlannedRun] = {}
    cells: dict[tuple, str] = {}  # leaderboard cell → the run id that fills it
    dropped: list[dict[str, Any]] = []
    blocks = [config] + [experiment_config(config, experiment) for experiment in config.get("experiments", [])]
    for block in blocks:
        block_runs, block_dropped = _expand_product(block)
        for run in block_runs:
            row = run.row()
            cell = tuple(row.get(key, "") for key in ("suite", "algo", "arch", "label", "method", "variant", "task",
                                                      "seed", "reference", "steps"))  # references differ in steps
            # Aggregation keys runs by this cell; two different specs in one cell (e.g. an
            # experiment's tau next to the main one) would be pooled as one method.
            if cells.setdefault(cell, run.spec.run_id) != run.spec.run_id:
                raise SpecError(
                    f"two planned runs share suite/algo/arch/label/method/variant/task/seed "
                    f"{'/'.join(map(str, cell))} with different settings ({cells[cell]} and "
                    f"{run.spec.run_id}); give the experiments disjoint cells or a `variant` label each"
                )
            first = runs.setdefault(run.spec.run_id, run)
            if first.label != run.label and not run.reference:
                # One run under two labels: the matrix holds a run once, so the second
                # label would vanish from the leaderboard without a word.
                raise SpecError(
                    f"method entries {first.label or first.spec.method!r} and {run.label or run.spec.method!r} "
                    f"resolve to one run ({run.spec.run_id}: the same method, options and settings); "
                    "list it once (a sweep point at the default value stands for the plain method)")
        dropped.extend(d for d in block_dropped if d not in dropped)
    if not runs:
        reasons = "; ".join(sorted({d["reason"] for d in dropped})[:3]) or "no combination"
        raise SpecError(f"the config plans 0 runs: every combination was dropped ({reasons})")
    return list(runs.values()), dropped


def check_names(config: dict[str, Any]) -> None:
    """Every config key that names a suite, an algorithm or a method names one that a
    product of the config runs (a misspelt or unlisted name would be silently ignored).
    Top-level keys may name what any product runs; an experiment's, what it runs."""
    experiments = config.get("experiments", [])
    blocks = [config] + [experiment_config(config, experiment) for experiment in experiments]
    listed = {kind: sorted({name for block in blocks for name in _names(block, kind)})
              for kind in ("suites", "algos", "methods")}
    _check_keys(config, "", listed)
    for index, experiment in enumerate(experiments):
        block = experiment_config(config, experiment)
        _check_keys(experiment, f"experiments[{index}].",
                    {kind: sorted(_names(block, kind)) for kind in ("suites", "algos", "methods")})


def _names(block: dict[str, Any], kind: str) -> set[str]:
    """Suites, algorithms or single methods (compositions split at '+') of one product."""
    if kind == "methods":
        return {name for entry in block_methods(block) for name in parse_method_entry(entry).names}
    return set(block[kind])


def _check_keys(section: dict[str, Any], prefix: str, listed: dict[str, list[str]]) -> None:
    def check(where: str, keys, kind: str, allowed: tuple[str, ...] = ()) -> None:
        for key in keys:
            if key not in listed[kind] and key not in allowed:
                valid = ", ".join([*allowed, *listed[kind]])
                raise SpecError(f"{prefix}{where} names {kind[:-1]} {key!r}, which this config does not run; "
                                f"valid: {valid}")

    for where in ("tasks", "steps", "suite_overrides", "sequences"):
        check(where, section.get(where, {}), "suites")
    for suite, per_algo in section.get("suite_overrides", {}).items():
        check(f"suite_overrides.{suite}", per_algo, "algos")
    check("overrides", section.get("overrides", {}), "algos", allowed=("all",))
    check("method_options", section.get("method_options", {}), "methods")


def _expand_product(config: dict[str, Any]) -> tuple[list[PlannedRun], list[dict[str, Any]]]:
    runs: list[PlannedRun] = []
    dropped: list[dict[str, Any]] = []
    for suite_name in config["suites"]:
        suite = load_suite(suite_name)
        tasks = config.get("tasks", {}).get(suite_name) or suite.run_tasks()
        sequences = config.get("sequences", {}).get(suite_name, {})
        known = [*suite.run_tasks(), *(f"continual:{name}" for name in sequences)]
        unknown = sorted(set(tasks) - set(known) - set(suite.tasks))
        if unknown:
            raise SpecError(f"tasks {unknown} are not in suite {suite_name!r}; its tasks: {', '.join(known)}")
        steps = config.get("steps", {}).get(suite_name, suite.steps)
        for algo in config["algos"]:
            if algo not in suite.algos:
                dropped.append({"suite": suite_name, "algo": algo, "arch": "*", "method": "*", "task": "*",
                                "reason": f"suite {suite_name} is for {', '.join(suite.algos)}"})
                continue
            for arch in config["archs"]:
                for entry in map(parse_method_entry, block_methods(config)):
                    variant = config.get("variant", "")
                    label = entry.entry + (f"[{variant}]" if variant else "")
                    for task in tasks:
                        overrides = overrides_for(config, algo, suite_name, entry.names)
                        if is_continual(task) and parse_name(task)[0] in sequences:  # the config's own sequence
                            overrides["sequence"] = sequences[parse_name(task)[0]]
                        overrides.update({f"{name}.{option}": value for name, options in entry.options.items()
                                          for option, value in options.items()})
                        try:
                            specs = [build_spec(algo, arch, entry.method, task, seed, steps, overrides)
                                     for seed in config["seeds"]]
                        except InvalidCombinationError as error:
                            dropped.append({"suite": suite_name, "algo": algo, "arch": arch, "method": entry.entry,
                                            "task": task, "reason": str(error)})
                            continue
                        runs.extend(PlannedRun(spec, suite_name, overrides, variant, label) for spec in specs)
    runs, references = with_references(runs)
    return runs + references, dropped


def with_references(runs: list[PlannedRun]) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """The fresh-agent references of the continual runs among ``runs``: for every segment
    a run trains, a run of the same algorithm, architecture, seed and hyperparameters with
    method ``none`` (no method options) on that segment's task alone (``Sequence.reference_task``)
    for ``segment_steps`` steps. Runs share a reference wherever these agree (the methods
    of a cell, repeated segment tasks), so each is planned, trained and cached once.
    Returns ``runs``, each continual one with its references' run ids, and the references."""
    planned: dict[str, PlannedRun] = {}
    out = []
    for run in runs:
        spec = run.spec
        if run.reference or not is_continual(spec.task) or parse_name(spec.task)[1] is not None:
            out.append(run)
            continue
        sequence = Sequence.from_dict(spec.hyperparams["sequence"])
        name = parse_name(spec.task)[0]
        base = {key: value for key, value in run.overrides.items() if "." not in key and key != "sequence"}
        ids = []
        for k in range(spec.steps // sequence.segment_steps):
            task = sequence.reference_task(name, k)
            overrides = {**base, "sequence": sequence.to_dict()} if is_continual(task) else base
            reference = build_spec(spec.algo, spec.arch, "none", task, spec.seed, sequence.segment_steps, overrides)
            planned.setdefault(reference.run_id, PlannedRun(reference, run.suite, overrides, run.variant, reference=True))
            ids.append(reference.run_id)
        out.append(dataclasses.replace(run, references=tuple(ids)))
    return out, list(planned.values())


def write_matrix(path: Path, config: dict[str, Any], runs: list[PlannedRun], dropped: list[dict[str, Any]]) -> None:
    write_json(path, {"runs": [run.row() for run in runs], "dropped": dropped, "config": config,
                      "config_hash": config_hash(config)})
