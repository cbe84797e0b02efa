"""Display names: what figures, tables and pages call methods, metrics, tasks, networks and scopes.

CSV files keep the raw identifiers; figures, the HTML page and the LaTeX tables use these
names. The built-in names below can be replaced or extended by a config's ``display_names``
key (or ``plasticity-bench plot --display-names FILE`` with the same mapping)::

    display_names:
      methods: {regrama: "ReGraMa (ours)", "regrama[tau=0.1]": "ReGraMa, small tau"}
      metrics: {srank: "Feature rank"}
      suites: {dmc_easy: "DMC (easy)"}
      algos: {sac: "Soft actor-critic"}
      archs: {mlp: "Plain MLP"}
      tasks: {"dmc:cheetah-run": "Cheetah, run"}
      networks: {critic: "Twin critic"}
      variants: {rr025: "low replay ratio"}

A scope is titled from its parts ("DMC easy / SAC / MLP"). A method label with options or a
variant (``matrix.parse_method_entry``: ``regrama[tau=0.1,period=5000]``, ``none[rr025]``) is
named from its parts unless the config names the label itself: "ReGraMa (τ = 0.1, period
= 5000)", "None (replay ratio 0.25)"; a variant ``rr<digits>`` is a replay ratio, a leading
zero marking the decimal point (``rr025`` = 0.25, ``rr1`` = 1). A metric ``name@tau`` is
"<name's display name> (τ = tau)". A network is named by its role ("Critic (Q1, Q2)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from plasticity_bench.analysis.vocabulary import BASELINE, AnalysisError, is_overall

METHODS = {
    "none": "None (baseline)", "layer_norm": "LayerNorm", "redo": "ReDo", "regrama": "ReGraMa",
    "shrink_perturb": "Shrink & Perturb", "reset": "Reset", "plasticity_injection": "Plasticity injection",
    "crelu": "CReLU", "dff": "Deep Fourier features", "l2": "L2", "l2_init": "L2 Init",
    "weight_decay": "Weight decay", "parseval": "Parseval", "nap": "NaP", "cbp": "Continual backprop",
    "c_chain": "C-CHAIN", "trac": "TRAC",
}
METRICS = {
    "grama_inactive_ratio": "GraMa-inactive ratio", "grama_output_inactive_ratio": "GraMa-inactive ratio (outputs)",
    "grama_released_inactive_ratio": "GraMa-inactive ratio (released)", "dormant_ratio": "Dormant ratio",
    "dormant_not_grama_ratio": "Dormant, not GraMa-inactive ratio", "active_fraction": "Active fraction",
    "srank": "Feature rank (srank)", "effective_rank": "Effective rank", "feature_norm": "Feature norm",
    "grad_norm": "Gradient norm", "weight_magnitude": "Weight magnitude", "weight_drift": "Weight drift",
    "hessian_top_eigenvalue": "Top Hessian eigenvalue",
}
SUITES = {
    "classic_control": "Classic control", "classic_control_continuous": "Classic control (continuous)",
    "dmc": "DMC", "dmc_easy": "DMC easy", "minatar": "MinAtar", "mujoco": "MuJoCo", "supervised": "Supervised",
    "continual_classic": "Continual classic control", "continual_classic_discrete": "Continual classic control "
    "(discrete)", "continual_dmc": "Continual DMC", "continual_minatar": "Continual MinAtar",
}
ALGOS = {"sac": "SAC", "td3": "TD3", "dqn": "DQN", "sl": "Supervised"}
ARCHS = {"mlp": "MLP", "residual": "Residual", "diffusion": "Diffusion"}
#: Networks by the role an agent gives them (``methods.Role``); SAC's and TD3's critic is twin Q-networks.
NETWORKS = {"critic": "Critic (Q1, Q2)", "actor": "Actor", "q": "Q-network", "classifier": "Classifier",
            "all": "All networks"}
TASKS = {"sl:digits-random-labels": "Digits, random labels"}
#: Task families whose names are lower-case identifiers, shown as words ("cheetah-run" -> "Cheetah run").
WORDY_FAMILIES = ("dmc", "minatar")
#: Option and threshold names shown as symbols.
SYMBOLS = {"tau": "τ", "lambda": "λ", "alpha": "α", "beta": "β"}
SECTIONS = ("methods", "metrics", "suites", "algos", "archs", "tasks", "networks", "variants")
OVERALL_TITLE = "Overall (every suite / algo / arch)"


# ----------------------------------------------------------------------------- labels

@dataclass(frozen=True)
class Label:
    """A leaderboard label read back into its parts (the grammar of ``matrix.parse_method_entry``
    plus the variant suffix): ``layer_norm+regrama[tau=0.1][rr1]`` -> components
    ``(("layer_norm", ()), ("regrama", (("tau", "0.1"),)))`` and variant ``"rr1"``. Option
    values stay as written."""

    components: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    variant: str = ""

    def text(self) -> str:
        """The label as the matrix writes it."""
        parts = [name + (f"[{','.join(f'{k}={v}' for k, v in options)}]" if options else "")
                 for name, options in self.components]
        return "+".join(parts) + (f"[{self.variant}]" if self.variant else "")


_COMPONENT = re.compile(r"^(?P<name>[^\[\]=,+]+)(?P<brackets>(?:\[[^\[\]]*\])*)$")


def _split_plus(label: str) -> list[str]:
    """Split at the '+' signs outside brackets."""
    parts, depth, current = [], 0, ""
    for char in label:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "+" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def parse_label(label: str) -> Label:
    """Options (brackets with ``key=value`` pairs) and variant (a last bracket without '=') of a label.

    A label outside that grammar (a user's ``package.module:Class``) is one component without options.
    """
    components, variant = [], ""
    pieces = _split_plus(label)
    for position, piece in enumerate(pieces):
        match = _COMPONENT.match(piece.strip())
        if not match:
            return Label(((label, ()),))
        options: list[tuple[str, str]] = []
        groups = re.findall(r"\[([^\[\]]*)\]", match["brackets"])
        for number, group in enumerate(groups):
            if "=" in group:
                options += [tuple(part.strip() for part in pair.split("=", 1)) for pair in group.split(",")
                            if pair.strip()]
            elif position == len(pieces) - 1 and number == len(groups) - 1:
                variant = group.strip()
            else:
                return Label(((label, ()),))
        components.append((match["name"].strip(), tuple(options)))
    return Label(tuple(components), variant)


# ----------------------------------------------------------------------------- names

def _humanise(identifier: str) -> str:
    text = identifier.replace("_", " ")
    return text[:1].upper() + text[1:]


def _option_name(option: str) -> str:
    return SYMBOLS.get(option, option.replace("_", " "))


@dataclass(frozen=True)
class DisplayNames:
    """Built-in display names overlaid with a config's ``display_names`` (see the module docstring)."""

    methods: Mapping[str, str] = field(default_factory=lambda: dict(METHODS))
    metrics: Mapping[str, str] = field(default_factory=lambda: dict(METRICS))
    suites: Mapping[str, str] = field(default_factory=lambda: dict(SUITES))
    algos: Mapping[str, str] = field(default_factory=lambda: dict(ALGOS))
    archs: Mapping[str, str] = field(default_factory=lambda: dict(ARCHS))
    tasks: Mapping[str, str] = field(default_factory=lambda: dict(TASKS))
    networks: Mapping[str, str] = field(default_factory=lambda: dict(NETWORKS))
    variants: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping | None) -> "DisplayNames":
        """The built-in names with the config's ``display_names`` over them.

        Raises AnalysisError naming an unknown section (valid: ``SECTIONS``) or a name that is not a string.
        """
        given = (config or {}).get("display_names") or {}
        if not isinstance(given, Mapping):
            raise AnalysisError(f"display_names must map sections ({', '.join(SECTIONS)}) to names, got {given!r}")
        unknown = [section for section in given if section not in SECTIONS]
        if unknown:
            raise AnalysisError(f"display_names: unknown section {unknown[0]!r}; valid: {', '.join(SECTIONS)}")
        merged = {}
        for section in SECTIONS:
            names = given.get(section) or {}
            if not isinstance(names, Mapping):
                raise AnalysisError(f"display_names.{section} must map identifiers to names, got {names!r}")
            for key, value in names.items():
                if not isinstance(value, str) or not value.strip():
                    raise AnalysisError(f"display_names.{section}.{key}: {value!r} is not a name; give a "
                                        "non-empty string")
            merged[section] = {**getattr(cls(), section), **{str(k): v for k, v in names.items()}}
        return cls(**merged)

    def method(self, label: str) -> str:
        if label in self.methods:
            return self.methods[label]
        parsed = parse_label(label)
        qualified = bool(parsed.variant) or any(options for _, options in parsed.components)
        parts = []
        for position, (name, options) in enumerate(parsed.components):
            text = self.methods.get(name, name)
            if name == BASELINE and qualified and text == METHODS[BASELINE]:
                text = "None"  # "None (baseline) (replay ratio 1)" says "baseline" once too often
            qualifiers = [f"{_option_name(k)} = {v}" for k, v in options]
            if parsed.variant and position == len(parsed.components) - 1:
                qualifiers.append(self.variant(parsed.variant))
            parts.append(text + (" (" + ", ".join(qualifiers) + ")" if qualifiers else ""))
        return " + ".join(parts)

    def variant(self, variant: str) -> str:
        """``rr025`` -> "replay ratio 0.25" (see the module docstring); a config's name first."""
        if variant in self.variants:
            return self.variants[variant]
        ratio = re.fullmatch(r"rr(\d+)", variant)
        if ratio:
            digits = ratio.group(1)
            value = "0." + digits[1:] if digits.startswith("0") and len(digits) > 1 else digits
            return f"replay ratio {value}"
        return variant

    def network(self, name: str) -> str:
        return self.networks.get(name, _humanise(name))

    def metric(self, name: str) -> str:
        if name in self.metrics:
            return self.metrics[name]
        base, _, threshold = name.partition("@")
        text = self.metrics.get(base, _humanise(base))
        return f"{text} (τ = {threshold})" if threshold else text

    def task(self, task: str) -> str:
        """``gym:CartPole-v1`` -> ``CartPole-v1`` (the panel already names the suite);
        ``dmc:cheetah-run`` -> ``Cheetah run``."""
        if task in self.tasks:
            return self.tasks[task]
        family, _, name = task.rpartition(":")
        return _humanise(name.replace("-", " ")) if family in WORDY_FAMILIES else name

    def suite(self, name: str) -> str:
        return self.suites.get(name, name)

    def scope(self, scope: Iterable[str]) -> str:
        suite, algo, arch = tuple(scope)
        if is_overall((suite, algo, arch)):
            return OVERALL_TITLE
        return f"{self.suite(suite)} / {self.algos.get(algo, algo)} / {self.archs.get(arch, arch)}"

    def option(self, option: str) -> str:
        return _option_name(option)
