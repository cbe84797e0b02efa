"""Display names: what figures and the HTML page call methods, metrics, suites and scopes.

Tables (every CSV) keep the raw identifiers; only figures and pages use these names. The
built-in names below can be replaced or extended by a config's ``display_names`` key::

    display_names:
      methods: {regrama: "ReGraMa (ours)", "regrama[tau=0.1]": "ReGraMa, small tau"}
      metrics: {srank: "Feature rank"}
      suites: {dmc_easy: "DMC (easy)"}
      algos: {sac: "Soft actor-critic"}
      archs: {mlp: "Plain MLP"}

A scope is titled from its parts ("DMC easy / SAC / MLP"). A method label with options or a
variant (``matrix.parse_method_entry``: ``regrama[tau=0.1,period=5000]``, ``none[rr1]``) is
named from its parts unless the config names the label itself: "ReGraMa (τ = 0.1, period
= 5000)", "None (baseline) [rr1]". A metric ``name@tau`` is "<name's display name> (τ = tau)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from plasticity_bench.analysis.vocabulary import AnalysisError, is_overall

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
}
ALGOS = {"sac": "SAC", "td3": "TD3", "dqn": "DQN", "sl": "Supervised"}
ARCHS = {"mlp": "MLP", "residual": "Residual", "diffusion": "Diffusion"}
#: Option and threshold names shown as symbols.
SYMBOLS = {"tau": "τ", "lambda": "λ", "alpha": "α", "beta": "β"}
SECTIONS = ("methods", "metrics", "suites", "algos", "archs")
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
        parts = []
        for name, options in parsed.components:
            text = self.methods.get(name, name)
            if options:
                text += " (" + ", ".join(f"{_option_name(k)} = {v}" for k, v in options) + ")"
            parts.append(text)
        return " + ".join(parts) + (f" [{parsed.variant}]" if parsed.variant else "")

    def metric(self, name: str) -> str:
        if name in self.metrics:
            return self.metrics[name]
        base, _, threshold = name.partition("@")
        text = self.metrics.get(base, _humanise(base))
        return f"{text} (τ = {threshold})" if threshold else text

    def task(self, task: str) -> str:
        """``gym:CartPole-v1`` -> ``CartPole-v1``: the panel already names the suite."""
        return task.split(":", 1)[-1]

    def suite(self, name: str) -> str:
        return self.suites.get(name, name)

    def scope(self, scope: Iterable[str]) -> str:
        suite, algo, arch = tuple(scope)
        if is_overall((suite, algo, arch)):
            return OVERALL_TITLE
        return f"{self.suite(suite)} / {self.algos.get(algo, algo)} / {self.archs.get(arch, arch)}"

    def option(self, option: str) -> str:
        return _option_name(option)
