"""The seed papers' findings, re-measured on a config's runs: one verdict per claim, with its CI.

A config's ``claims:`` list (see workflow/config/validation.yaml) names, per claim, a
statistic over groups of runs. Per run, a metric's monitor rows (one network, one layer)
reduce to one value: ``first``, ``last``, ``mean`` or ``max`` over the run. The statistics:

- ``change``: per-run ``last - first`` of a metric, averaged over the group's runs;
- ``level``: a per-run value (``value:``), averaged over the group's runs;
- ``metric_gap``: per run, ``metric - minus`` (two metrics of the same rows, same reduction),
  averaged over the group's runs;
- ``difference``: a per-run value, group ``a``'s mean minus group ``b``'s;
- ``score_iqm_difference``: IQM of normalised final scores (the aggregate's ``score``),
  group ``a`` minus group ``b``, with P(a > b) and its CI beside it.

Continual scopes (``continual:<sequence>`` runs; analysis/continual.py) add a claim key
``segments:`` (``all``, ``late`` = every segment after the first, or a list of segment
indices) and two per-segment metrics of the aggregate's segment table (continual_segments.csv):
``plasticity_ratio`` and ``segment_score`` (end-of-segment normalised score), no network. Per
run, their values over the selected segments (default ``late``) reduce as above, over segment
index: ``mean``, ``first``, ``last``, ``max``, ``slope`` (least squares, per segment), and
``change`` is the last selected segment minus the first. A monitor metric with ``segments:``
is read at each selected segment's end (its last monitor row inside the segment, at or
before the segment's nominal end) and reduces the same way: ``change`` is then last segment
minus first segment, ``value: slope`` the slope per segment.

Each group is a (runs x tasks) matrix, seeds in rows and tasks in columns, and the 95% CI
is rliable's stratified percentile bootstrap over runs, tasks as strata (the two groups
of a difference resampled independently). The verdict follows the CI alone: ``yes`` when
the whole CI is on the expected side of the threshold, ``no`` when it is wholly on the
other side, ``inconclusive`` otherwise. Nothing here is tuned to make a claim hold.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.analysis.vocabulary import CLAIM_COLUMNS
from plasticity_bench.metric_names import METRICS, ROLES

STATISTICS = ("change", "level", "metric_gap", "difference", "score_iqm_difference")
# "slope": the least-squares slope of the metric over the run's rows, per 1000 steps.
REDUCTIONS = ("first", "last", "mean", "max", "slope")
# Expected side of a threshold → (phrase, holds when the CI is inside, fails when inside)
EXPECTATIONS = ("above", "below", "at_least", "at_most")
GROUP_KEYS = ("suite", "algo", "arch", "method", "label", "variant", "task")
CLAIM_KEYS = {"claim", "source", "statistic", "metric", "minus", "network", "layer", "value", "group", "a", "b",
              "expect", "pool", "segments"}
# Per-run, per-segment values of continual runs (the aggregate's segment table), not monitor rows.
SEGMENT_METRICS = {"plasticity_ratio": "plasticity_ratio", "segment_score": "score"}  # name -> segment table column
SEGMENT_SELECTIONS = ("all", "late")
CONTINUAL_FAMILY = "continual:"  # analysis.continual.FAMILY (not imported: the workflow parses this module)
# What makes two planned runs one setting: everything but the seed and the task.
SETTING_KEYS = ("suite", "algo", "arch", "method", "label", "variant", "steps")
VERDICTS = ("yes", "no", "inconclusive")


class ClaimError(ValueError):
    """A claim entry that cannot be measured as written (named in the message)."""


@dataclass(frozen=True)
class Claim:
    claim: str
    source: str
    statistic: str
    expect: str  # one of EXPECTATIONS
    threshold: float
    metric: str = ""
    minus: str = ""
    network: str = ""
    layer: str = "all"
    value: str = "last"
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # "group", or "a" and "b"
    pool: bool = False  # a group may pool several settings (each is then named in the claim's detail)
    segments: str | tuple[int, ...] | None = None  # continual claims: "all", "late" or indices; None: not per segment

    @property
    def per_segment(self) -> bool:
        return self.segments is not None

    def segment_text(self) -> str:
        if self.segments == "late":
            return "segments 1.."
        if self.segments == "all":
            return "every segment"
        return "segments " + ", ".join(str(k) for k in self.segments)

    @property
    def two_groups(self) -> bool:
        return self.statistic in ("difference", "score_iqm_difference")

    def expected(self) -> str:
        symbol = {"above": ">", "below": "<", "at_least": ">=", "at_most": "<="}[self.expect]
        return f"{symbol} {self.threshold:g}"

    def description(self) -> str:
        if self.statistic == "score_iqm_difference":
            return "IQM of normalised final score, a - b"
        where = f"{self.network}/{self.layer}"
        if self.per_segment:
            what = (self.metric if self.metric in SEGMENT_METRICS
                    else f"{self.metric} ({where}) at segment ends")
            what = f"{what}, {self.segment_text()}"
            if self.statistic == "change":
                return f"{what}: last - first segment, mean over runs"
            per_run = "slope per segment" if self.value == "slope" else self.value
            if self.statistic == "level":
                return f"{what}: {per_run} of each run, mean over runs"
            return f"{what}: {per_run} of each run, mean of a - mean of b"
        if self.statistic == "change":
            return f"{self.metric} ({where}), last - first monitor row, mean over runs"
        if self.statistic == "metric_gap":
            return f"{self.metric} - {self.minus} ({where}), {self.value} over each run, mean over runs"
        if self.statistic == "level":
            return f"{self.metric} ({where}), {self.value} over each run, mean over runs"
        return f"{self.metric} ({where}), {self.value} over each run, mean of a - mean of b"


def parse_claims(entries: Sequence[Mapping[str, Any]]) -> list[Claim]:
    """Claims from a config's ``claims:`` list; a bad entry raises ClaimError naming it."""
    claims = []
    for index, entry in enumerate(entries):
        where = f"claims[{index}]"
        unknown = sorted(set(entry) - CLAIM_KEYS)
        if unknown:
            raise ClaimError(f"{where} has unknown keys {unknown}; valid: {', '.join(sorted(CLAIM_KEYS))}")
        for key in ("claim", "source", "statistic", "expect"):
            if key not in entry:
                raise ClaimError(f"{where} lacks {key!r}")
        statistic = entry["statistic"]
        if statistic not in STATISTICS:
            raise ClaimError(f"{where}.statistic is {statistic!r}; valid: {', '.join(STATISTICS)}")
        expect = entry["expect"]
        if not isinstance(expect, Mapping) or len(expect) != 1 or next(iter(expect)) not in EXPECTATIONS:
            raise ClaimError(f"{where}.expect is {expect!r}; give one of {', '.join(EXPECTATIONS)} with a "
                             "threshold, e.g. {above: 0}")
        (side, threshold), = expect.items()
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
            raise ClaimError(f"{where}.expect.{side} is {threshold!r}; give a finite number")
        two = statistic in ("difference", "score_iqm_difference")
        group_keys = ("a", "b") if two else ("group",)
        wrong = sorted({"group", "a", "b"} - set(group_keys) & set(entry))
        if wrong or any(key not in entry for key in group_keys):
            raise ClaimError(f"{where} ({statistic}) takes {' and '.join(group_keys)}, got "
                             f"{sorted({'group', 'a', 'b'} & set(entry))}")
        groups = {}
        for key in group_keys:
            group = entry[key]
            bad = sorted(set(group) - set(GROUP_KEYS)) if isinstance(group, Mapping) else group
            if bad or not group:
                raise ClaimError(f"{where}.{key} is {group!r}; a non-empty mapping of {', '.join(GROUP_KEYS)}")
            groups[key] = dict(group)
        needs_metric = statistic != "score_iqm_difference"
        segment_metric = entry.get("metric") in SEGMENT_METRICS
        for key in ("metric", "minus") if needs_metric else ():
            if entry.get(key) and entry[key] not in METRICS and not (key == "metric" and segment_metric):
                close = difflib.get_close_matches(str(entry[key]), list(METRICS) + list(SEGMENT_METRICS), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else "; `plasticity-bench list` lists them"
                raise ClaimError(f"{where}.{key} {entry[key]!r} is no metric the runs log{hint}")
        segments = _parse_segments(entry, where, segment_metric)
        if segments is not None and statistic not in ("change", "level", "difference"):
            raise ClaimError(f"{where} ({statistic}) cannot be read per segment; with segments: use change, level "
                             "or difference")
        if segment_metric and entry.get("network"):
            raise ClaimError(f"{where}.metric {entry['metric']!r} is a per-segment score, not a network's: "
                             "drop `network`")
        if needs_metric and not (entry.get("metric") and (entry.get("network") or segment_metric)):
            raise ClaimError(f"{where} ({statistic}) needs a metric and a network")
        if statistic == "metric_gap" and not entry.get("minus"):
            raise ClaimError(f"{where} (metric_gap) needs `minus`, the metric subtracted")
        value = entry.get("value", "last")
        if value not in REDUCTIONS:
            raise ClaimError(f"{where}.value is {value!r}; valid: {', '.join(REDUCTIONS)}")
        if not isinstance(entry.get("pool", False), bool):
            raise ClaimError(f"{where}.pool is {entry['pool']!r}; give true or false")
        claims.append(Claim(claim=str(entry["claim"]), source=str(entry["source"]), statistic=statistic,
                            expect=side, threshold=float(threshold), metric=entry.get("metric", ""),
                            minus=entry.get("minus", ""), network=entry.get("network", ""),
                            layer=entry.get("layer", "all"), value=value, groups=groups,
                            pool=entry.get("pool", False), segments=segments))
    return claims


def _parse_segments(entry: Mapping[str, Any], where: str, segment_metric: bool) -> str | tuple[int, ...] | None:
    """The claim's segment selection: None (not per segment), "all", "late" or indices; a
    per-segment metric reads the late segments unless told."""
    if "segments" not in entry:
        return "late" if segment_metric else None
    value = entry["segments"]
    if value in SEGMENT_SELECTIONS:
        return value
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in value)):
        return tuple(sorted(value))
    raise ClaimError(f"{where}.segments is {value!r}; valid: {', '.join(SEGMENT_SELECTIONS)} (segments after the "
                     "first) or a list of distinct segment indices, e.g. [1, 2]")


def select(rows: Sequence[Mapping[str, Any]], group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The matrix rows a group names (a row without a variant has variant "")."""
    return [row for row in rows if all(str(row.get(key, "")) == str(value) for key, value in group.items())]


def setting(row: Mapping[str, Any]) -> str:
    """The setting a planned run belongs to: its SETTING_KEYS (not its seed or task), as text."""
    return ", ".join(f"{key}={row[key]}" for key in SETTING_KEYS if row.get(key, "") != "")


def check_claim_groups(claims: Sequence[Claim], rows: Sequence[Mapping[str, Any]]) -> None:
    """Before any training: every group of every claim names planned runs of one setting (or
    the claim says ``pool: true``), and the claim's network is one those runs train."""
    for claim in claims:
        for name, group in claim.groups.items():
            members = select(rows, group)
            if not members:
                raise ClaimError(f"claim {claim.claim!r}: group {name} {group} names no planned run")
            settings = sorted({setting(row) for row in members})
            if len(settings) > 1 and not claim.pool:
                raise ClaimError(f"claim {claim.claim!r}: group {name} {group} pools {len(settings)} settings "
                                 f"({'; '.join(settings)}); narrow it (label:, variant:, arch:, ...) or set pool: true")
            if claim.per_segment:
                _check_continual_members(claim, name, group, members)
            if claim.network:
                for algo in sorted({row["algo"] for row in members}):
                    roles = ROLES.get(algo, ())
                    if roles and claim.network not in roles:
                        raise ClaimError(f"claim {claim.claim!r}: network {claim.network!r} is not one {algo} trains; "
                                         f"valid: {', '.join(roles)}")


def _check_continual_members(claim: Claim, name: str, group: Mapping[str, Any],
                              members: Sequence[Mapping[str, Any]]) -> None:
    """A per-segment claim names continual runs (not fresh-agent references) whose sequences
    have every segment it selects (a continual row plans one reference per segment)."""
    for row in members:
        task = str(row.get("task", ""))
        if not task.startswith(CONTINUAL_FAMILY) or "/" in task or row.get("reference"):
            raise ClaimError(f"claim {claim.claim!r}: group {name} {group} names {task!r}, no continual run; "
                             f"segments: and {', '.join(SEGMENT_METRICS)} need continual:<sequence> tasks")
        count = len(row.get("references", ()))
        if isinstance(claim.segments, tuple) and count and claim.segments[-1] >= count:
            raise ClaimError(f"claim {claim.claim!r}: segment {claim.segments[-1]} is not one of {task!r}'s "
                             f"{count} segments; valid: 0..{count - 1}")


def verdict(expect: str, threshold: float, low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    inside = {"above": low > threshold, "below": high < threshold,
              "at_least": low >= threshold, "at_most": high <= threshold}[expect]
    outside = {"above": high <= threshold, "below": low >= threshold,
               "at_least": high < threshold, "at_most": low > threshold}[expect]
    return "yes" if inside else "no" if outside else "inconclusive"


# ----------------------------------------------------------------------------- per-run values


def _run_metric(metrics: pd.DataFrame, claim: Claim, metric: str) -> float | None:
    rows = metrics[(metrics["metric"] == metric) & (metrics["network"] == claim.network)
                   & (metrics["layer"] == claim.layer)]
    values = rows.sort_values("step")["value"].to_numpy(dtype=float)
    if values.size == 0:
        return None
    if claim.statistic == "change":
        return float(values[-1] - values[0])
    if claim.value == "slope":
        if values.size < 2:
            return None
        steps = rows.sort_values("step")["step"].to_numpy(dtype=float)
        return float(np.polyfit(steps / 1000.0, values, 1)[0])
    return float({"first": values[0], "last": values[-1], "mean": values.mean(), "max": values.max()}[claim.value])


def _selected(claim: Claim, table: pd.DataFrame) -> pd.DataFrame:
    """A run's rows of the segment table that the claim selects, in segment order."""
    if claim.segments == "late":
        table = table[table["segment"] >= 1]
    elif claim.segments != "all":
        table = table[table["segment"].isin(claim.segments)]
    return table.sort_values("segment")


def _segment_series(run_id: str, claim: Claim, segments: pd.DataFrame,
                    metrics: Callable[[str], pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """(segment indices, values) of one continual run: a per-segment metric's column of the
    segment table, or a monitor metric's last row inside each selected segment (a segment
    with no defined value is left out)."""
    chosen = _selected(claim, segments[segments["run_id"] == run_id])
    if claim.metric in SEGMENT_METRICS:
        values = chosen[SEGMENT_METRICS[claim.metric]].to_numpy(dtype=float)
        keep = np.isfinite(values)
        return chosen["segment"].to_numpy(dtype=float)[keep], values[keep]
    frame = metrics(run_id)
    rows = frame[(frame["metric"] == claim.metric) & (frame["network"] == claim.network)
                 & (frame["layer"] == claim.layer)].sort_values("step")
    indices, values = [], []
    for k, end in zip(chosen["segment"], chosen["step"]):
        start = end / (k + 1) * k  # the segment's nominal start: segments are equally long
        inside = rows[(rows["step"] > start) & (rows["step"] <= end)]
        if len(inside):
            indices.append(float(k))
            values.append(float(inside["value"].iloc[-1]))
    return np.array(indices), np.array(values)


def _reduce_segments(claim: Claim, indices: np.ndarray, values: np.ndarray) -> float | None:
    if claim.statistic == "change" or claim.value == "slope":
        if values.size < 2:  # one segment has no change and no slope
            return None
        if claim.statistic == "change":
            return float(values[-1] - values[0])
        return float(np.polyfit(indices, values, 1)[0])
    if values.size == 0:
        return None
    return float({"first": values[0], "last": values[-1], "mean": values.mean(), "max": values.max()}[claim.value])


def _run_value(run_id: str, claim: Claim, scores: Mapping[str, float],
               metrics: Callable[[str], pd.DataFrame], segments: pd.DataFrame | None = None) -> float | None:
    """The claim's value of one run; None for a run aggregation did not score (missing,
    failed or trained under another spec), so no claim stands on an unchecked record."""
    if run_id not in scores:
        return None
    if claim.statistic == "score_iqm_difference":
        return scores[run_id]
    if claim.per_segment:
        if segments is None or segments.empty:
            return None
        return _reduce_segments(claim, *_segment_series(run_id, claim, segments, metrics))
    value = _run_metric(metrics(run_id), claim, claim.metric)
    if value is None or claim.statistic != "metric_gap":
        return value
    minus = _run_metric(metrics(run_id), claim, claim.minus)
    return None if minus is None else value - minus


def group_matrix(rows: Sequence[Mapping[str, Any]], values: Mapping[str, float | None]) -> tuple[np.ndarray, int]:
    """(runs x tasks) matrix of a group's per-run values, seeds in order, and how many runs
    were left out: runs with no value, and (so the matrix is rectangular, as rliable needs)
    a task's runs beyond the smallest count of any task."""
    by_task: dict[str, list[float]] = {}
    for row in sorted(rows, key=lambda row: (row["task"], row["seed"])):
        by_task.setdefault(row["task"], [])
        value = values.get(row["run_id"])
        if value is not None and np.isfinite(value):
            by_task[row["task"]].append(value)
    count = min((len(task_values) for task_values in by_task.values()), default=0)
    matrix = np.array([task_values[:count] for task_values in by_task.values()], dtype=float).T
    return matrix.reshape(count, len(by_task)), len(rows) - matrix.size


# ----------------------------------------------------------------------------- statistics


def _bootstrap(data: np.ndarray | list[np.ndarray], func, reps: int, seed: int) -> tuple[float, float, float]:
    """Point estimate and 95% CI of func through stats' one seeded rliable call (imported here:
    the workflow imports this module while it parses and must not load rliable)."""
    from plasticity_bench.analysis.stats import seeded_interval

    point, low, high = seeded_interval(data, lambda *args: np.array([func(*args)]), reps=reps, seed=seed)
    return float(point[0]), float(low[0]), float(high[0])


def measure_claim(claim: Claim, rows: Sequence[Mapping[str, Any]], scores: Mapping[str, float],
                  metrics: Callable[[str], pd.DataFrame], reps: int, seed: int,
                  segments: pd.DataFrame | None = None) -> dict[str, Any]:
    from plasticity_bench.analysis.stats import IMPROVEMENT_PROBABILITY, STATISTICS

    matrices, left_out = {}, 0
    for name, group in claim.groups.items():
        members = select(rows, group)
        values = {row["run_id"]: _run_value(row["run_id"], claim, scores, metrics, segments) for row in members}
        matrices[name], missing = group_matrix(members, values)
        left_out += missing
    used = sum(matrix.size for matrix in matrices.values())
    row = {"claim": claim.claim, "source": claim.source, "statistic": claim.description(),
           "expected": claim.expected(), "runs": used, "detail": ""}
    if any(matrix.shape[0] < 2 for matrix in matrices.values()):
        sizes = ", ".join(f"{name}: {matrix.shape[0]}" for name, matrix in matrices.items())
        return {**row, "measured": np.nan, "ci_low": np.nan, "ci_high": np.nan, "holds": "inconclusive",
                "detail": f"too few runs with this metric per task ({sizes})"}
    if claim.two_groups:
        data = [matrices["a"], matrices["b"]]
        if claim.statistic == "score_iqm_difference":
            func = lambda a, b: STATISTICS["iqm"](a) - STATISTICS["iqm"](b)  # noqa: E731
        else:
            func = lambda a, b: a.mean() - b.mean()  # noqa: E731
    else:
        data, func = matrices["group"], np.mean
    measured, low, high = _bootstrap(data, func, reps, seed)
    details = []
    if claim.statistic == "score_iqm_difference":
        probability, p_low, p_high = _bootstrap(data, IMPROVEMENT_PROBABILITY, reps, seed)
        details.append(f"P(a > b) = {probability:.2f} [{p_low:.2f}, {p_high:.2f}]")
    if claim.two_groups:
        details.append(f"a: {matrices['a'].mean():.3g} over {matrices['a'].size} runs, "
                       f"b: {matrices['b'].mean():.3g} over {matrices['b'].size}")
    if claim.pool:
        for name, group in claim.groups.items():
            pooled = sorted({setting(row) for row in select(rows, group)})
            if len(pooled) > 1:
                details.append(f"{name} pools {len(pooled)} settings: {'; '.join(pooled)}")
    if left_out:
        details.append(f"{left_out} planned runs left out (no value, or unequal runs per task)")
    return {**row, "measured": measured, "ci_low": low, "ci_high": high,
            "holds": verdict(claim.expect, claim.threshold, low, high), "detail": "; ".join(details)}


def measure_claims(entries: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], runs_dir: Path,
                   scores: pd.DataFrame, reps: int, seed: int, segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim (CLAIM_COLUMNS). ``rows``: the matrix's planned runs; ``scores``:
    the aggregate's per-run table (run_id, score): the runs it checked and scored, the only
    ones claims read (their scores for the return claims, their metrics for the others);
    ``segments``: the aggregate's segment table of continual runs (continual.segment_table),
    which per-segment claims read."""
    claims = parse_claims(entries)
    check_claim_groups(claims, rows)
    by_run = dict(zip(scores["run_id"], scores["score"])) if len(scores) else {}
    read: dict[str, pd.DataFrame] = {}

    def metrics(run_id: str) -> pd.DataFrame:  # each run's table read once for every claim
        if run_id not in read:
            read[run_id] = RunRecord(Path(runs_dir) / run_id).metrics()
        return read[run_id]

    measured = [measure_claim(claim, rows, by_run, metrics, reps, seed, segments) for claim in claims]
    return pd.DataFrame(measured, columns=CLAIM_COLUMNS)


CLAIM_HEADER = ["claim", "source", "statistic", "expected", "measured", "95% CI", "holds", "runs", "detail"]
CLAIMS_NOTE = (
    "95% CIs: rliable's stratified percentile bootstrap over runs (tasks are strata, the two groups of a "
    "difference are resampled independently). holds = yes when the whole CI lies on the expected side, no "
    "when it lies wholly on the other side, inconclusive otherwise. Settings were fixed before the runs; a "
    "claim that does not hold is a finding at this scale."
)


def claim_rows(table: pd.DataFrame) -> list[list[str]]:
    """Display cells of each claim (CLAIM_HEADER), for claims.md and index.html."""
    rows = []
    for row in table.itertuples():
        interval = "" if pd.isna(row.ci_low) else f"[{row.ci_low:.3g}, {row.ci_high:.3g}]"
        measured = "" if pd.isna(row.measured) else f"{row.measured:.3g}"
        detail = "" if pd.isna(row.detail) else str(row.detail)
        rows.append([row.claim, row.source, row.statistic, row.expected, measured, interval, row.holds,
                     str(row.runs), detail])
    return rows


def claims_markdown(table: pd.DataFrame, reps: int) -> str:
    """claims.md: the table, and what its columns mean."""
    lines = ["# Claims of the seed papers, re-measured", "", f"{CLAIMS_NOTE} Bootstrap resamples: {reps}.", "",
             "| " + " | ".join(CLAIM_HEADER) + " |", "|" + "---|" * len(CLAIM_HEADER)]
    for cells in claim_rows(table):
        cells[6] = f"**{cells[6]}**"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    counts = table["holds"].value_counts()
    lines += ["", ", ".join(f"{verdict}: {counts.get(verdict, 0)}" for verdict in VERDICTS), ""]
    return "\n".join(lines)
