"""Claims: per-run values from real metrics.parquet files, CIs from real rliable, verdicts by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rliable import library as rly
from rliable import metrics as rly_metrics

from plasticity_bench.analysis.claims import (
    ClaimError,
    check_claim_groups,
    claims_markdown,
    group_matrix,
    measure_claims,
    parse_claims,
    verdict,
)
from plasticity_bench.matrix import expand
from plasticity_bench.results import METRICS, write_parquet

TASKS = ("gym:CartPole-v1", "gym:Acrobot-v1")
SEEDS = (0, 1, 2)
REPS = 300


def dormant_curve(variant: str, task: str, seed: int) -> np.ndarray:
    """Dormant ratio over 4 monitor rows: grows by 0.1 (rr1) or 0.02 (rr025) per row, plus
    seed and task offsets, so every statistic below has a hand value."""
    slope = {"rr1": 0.1, "rr025": 0.02}[variant]
    return 0.1 + 0.01 * seed + 0.05 * TASKS.index(task) + slope * np.arange(4)


def rows() -> list[dict]:
    return [{"run_id": f"{variant}-{task}-{seed}", "algo": "dqn", "arch": "mlp", "method": "none",
             "variant": variant, "task": task, "seed": seed, "suite": "classic_control"}
            for variant in ("rr1", "rr025") for task in TASKS for seed in SEEDS]


def write_runs(runs_dir: Path, skip: tuple[str, ...] = ()) -> list[dict]:
    planned = rows()
    for row in planned:
        if row["run_id"] in skip:
            continue
        curve = dormant_curve(row["variant"], row["task"], row["seed"])
        steps = 1000 * (1 + np.arange(len(curve)))
        frame = pd.DataFrame({
            "step": np.concatenate([steps, steps, steps]),
            "network": "q",
            "layer": ["all"] * len(curve) * 2 + ["layers.1"] * len(curve),
            "metric": ["dormant_ratio@0.1"] * len(curve) + ["grama_inactive_ratio@0.1"] * len(curve)
            + ["dormant_ratio@0.1"] * len(curve),
            "value": np.concatenate([curve, curve + 0.03, np.zeros(len(curve))]),
        })
        (runs_dir / row["run_id"]).mkdir(parents=True)
        write_parquet(runs_dir / row["run_id"] / METRICS, frame.sample(frac=1.0, random_state=0))  # any row order
    return planned


def claim(**entry) -> dict:
    return {"claim": "c", "source": "paper", "network": "q", "metric": "dormant_ratio@0.1", **entry}


GROWS = claim(statistic="change", group={"variant": "rr1"}, expect={"above": 0})
HIGHER_AT_RR1 = claim(statistic="difference", value="last", a={"variant": "rr1"}, b={"variant": "rr025"},
                      expect={"above": 0})
GAP = claim(statistic="metric_gap", value="mean", metric="grama_inactive_ratio@0.1", minus="dormant_ratio@0.1",
            group={"variant": "rr025"}, expect={"above": 0})


def scored(runs_dir: Path) -> pd.DataFrame:
    """The aggregate's scores table for the runs written (claims read only scored runs)."""
    ids = sorted(path.name for path in runs_dir.iterdir() if path.is_dir())
    return pd.DataFrame({"run_id": ids, "score": 0.0})


def test_statistics_match_hand_values_and_rliable(tmp_path):
    planned = write_runs(tmp_path)
    table = measure_claims([GROWS, HIGHER_AT_RR1, GAP], planned, tmp_path, scored(tmp_path), REPS, seed=0)
    grows, higher, gap = table.to_dict("records")
    # change: every rr1 run grows by 3 x 0.1
    assert grows["measured"] == pytest.approx(0.3)
    assert grows["ci_low"] == pytest.approx(0.3) and grows["ci_high"] == pytest.approx(0.3)
    assert grows["holds"] == "yes" and grows["runs"] == 6
    # difference of last values: (0.1 - 0.02) x 3, the offsets cancel in expectation only
    last = {variant: np.array([[dormant_curve(variant, task, seed)[-1] for task in TASKS] for seed in SEEDS])
            for variant in ("rr1", "rr025")}
    assert higher["measured"] == pytest.approx(last["rr1"].mean() - last["rr025"].mean())
    np.random.seed(0)
    _, interval = rly.get_interval_estimates({"x": [last["rr1"], last["rr025"]]},
                                             lambda a, b: np.array([a.mean() - b.mean()]), reps=REPS)
    assert (higher["ci_low"], higher["ci_high"]) == pytest.approx(tuple(interval["x"][:, 0]))
    assert higher["holds"] == "yes"
    # the gap reads two metrics of the same layer ("all"), not the layers.1 rows
    assert gap["measured"] == pytest.approx(0.03)


def test_expected_side_decides_the_verdict():
    assert verdict("above", 0, 0.1, 0.3) == "yes"
    assert verdict("above", 0, -0.1, 0.3) == "inconclusive"
    assert verdict("above", 0, -0.3, 0.0) == "no"
    assert verdict("below", 0.01, 0.0, 0.005) == "yes"
    assert verdict("below", 0.01, 0.02, 0.03) == "no"
    assert verdict("at_most", 0, 0.0, 0.0) == "yes"
    assert verdict("at_most", 0, 0.0, 0.01) == "inconclusive"
    assert verdict("at_most", 0, 0.01, 0.02) == "no"
    assert verdict("at_least", 0, 0.0, 0.2) == "yes"
    assert verdict("at_least", 0, -0.2, -0.1) == "no"
    assert verdict("above", 0, float("nan"), float("nan")) == "inconclusive"


def test_a_claim_against_the_data_does_not_hold(tmp_path):
    planned = write_runs(tmp_path)
    lower = {**HIGHER_AT_RR1, "expect": {"below": 0}}
    table = measure_claims([lower], planned, tmp_path, scored(tmp_path), REPS, seed=0)
    assert table.loc[0, "holds"] == "no"


def test_score_claim_is_rliable_iqm_difference_with_probability_of_improvement(tmp_path):
    planned = write_runs(tmp_path)
    rng = np.random.default_rng(3)
    scores = pd.DataFrame({"run_id": [row["run_id"] for row in planned], "score": rng.uniform(0, 1, len(planned))})
    entry = {"claim": "c", "source": "paper", "statistic": "score_iqm_difference", "a": {"variant": "rr1"},
             "b": {"variant": "rr025"}, "expect": {"at_least": 0}}
    row = measure_claims([entry], planned, tmp_path, scores, REPS, seed=1).iloc[0]
    by_run = dict(zip(scores.run_id, scores.score))
    matrix = {variant: np.array([[by_run[f"{variant}-{task}-{seed}"] for task in TASKS] for seed in SEEDS])
              for variant in ("rr1", "rr025")}
    assert row["measured"] == pytest.approx(rly_metrics.aggregate_iqm(matrix["rr1"])
                                            - rly_metrics.aggregate_iqm(matrix["rr025"]))
    probability = rly_metrics.probability_of_improvement(matrix["rr1"], matrix["rr025"])
    assert f"P(a > b) = {probability:.2f}" in row["detail"]
    assert row["holds"] in ("yes", "no", "inconclusive")


def test_missing_runs_are_left_out_and_counted(tmp_path):
    planned = write_runs(tmp_path, skip=("rr1-gym:CartPole-v1-2",))
    row = measure_claims([GROWS], planned, tmp_path, scored(tmp_path), REPS, seed=0).iloc[0]
    assert row["runs"] == 4  # rectangular: 2 seeds x 2 tasks
    assert "2 planned runs left out" in row["detail"]
    matrix, left_out = group_matrix(rows()[:6], {r["run_id"]: 1.0 for r in rows()[:5]})
    assert matrix.shape == (2, 2) and left_out == 2


def test_a_run_aggregation_did_not_score_is_left_out(tmp_path):
    """A record the aggregate refused (failed, or another spec's) never enters a claim."""
    planned = write_runs(tmp_path)
    scores = scored(tmp_path)
    scores = scores[scores["run_id"] != "rr1-gym:CartPole-v1-2"]
    row = measure_claims([GROWS], planned, tmp_path, scores, REPS, seed=0).iloc[0]
    assert row["runs"] == 4 and "2 planned runs left out" in row["detail"]


def test_too_few_runs_is_inconclusive_not_an_error(tmp_path):
    planned = write_runs(tmp_path, skip=tuple(f"rr1-{task}-{seed}" for task in TASKS for seed in (1, 2)))
    row = measure_claims([GROWS], planned, tmp_path, scored(tmp_path), REPS, seed=0).iloc[0]
    assert row["holds"] == "inconclusive" and "too few runs" in row["detail"]


@pytest.mark.parametrize("entry, message", [
    ({**GROWS, "statistic": "slope"}, "statistic is 'slope'; valid: change"),
    ({**GROWS, "expect": {"bigger": 0}}, "expect is {'bigger': 0}; give one of above"),
    ({**GROWS, "expect": {"above": "zero"}}, "expect.above is 'zero'"),
    ({**GROWS, "colour": "red"}, "unknown keys ['colour']"),
    ({**HIGHER_AT_RR1, "group": {"variant": "rr1"}}, "takes a and b"),
    ({**GROWS, "group": {"methods": "none"}}, "group is {'methods': 'none'}"),
    ({**GROWS, "value": "median"}, "value is 'median'; valid: first, last, mean, max, slope"),
    ({**GAP, "minus": ""}, "needs `minus`"),
    # a boolean is no threshold (YAML's `above: true` would read as "> 1")
    ({**GROWS, "expect": {"above": True}}, "expect.above is True; give a finite number"),
    ({**GROWS, "metric": "dormant_ratio@0.5"}, "metric 'dormant_ratio@0.5' is no metric the runs log; did you mean"),
    ({**GAP, "minus": "grama_ratio@0.1"}, "minus 'grama_ratio@0.1' is no metric the runs log"),
    ({**GROWS, "pool": "yes"}, "pool is 'yes'; give true or false"),
])
def test_bad_claims_are_refused_with_the_reason(entry, message):
    with pytest.raises(ClaimError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_claims([entry])


def test_a_group_that_names_no_planned_run_is_refused():
    with pytest.raises(ClaimError, match="group group {'variant': 'rr2'} names no planned run"):
        check_claim_groups(parse_claims([{**GROWS, "group": {"variant": "rr2"}}]), rows())


def test_a_group_must_resolve_to_one_setting_or_say_it_pools():
    pooled = {**GROWS, "group": {"method": "none"}}  # both replay ratios
    with pytest.raises(ClaimError, match=r"group group \{'method': 'none'\} pools 2 settings .*variant=rr025.*"
                                         r"variant=rr1.*or set pool: true"):
        check_claim_groups(parse_claims([pooled]), rows())
    check_claim_groups(parse_claims([{**pooled, "pool": True}]), rows())


def test_a_pooled_claim_names_what_it_pools(tmp_path):
    planned = write_runs(tmp_path)
    row = measure_claims([{**GROWS, "group": {"method": "none"}, "pool": True}], planned, tmp_path,
                         scored(tmp_path), REPS, seed=0).iloc[0]
    assert "group pools 2 settings" in row["detail"] and "variant=rr025" in row["detail"]


def test_a_network_the_runs_do_not_train_is_refused_before_training():
    with pytest.raises(ClaimError, match="network 'qq' is not one dqn trains; valid: q"):
        check_claim_groups(parse_claims([{**GROWS, "network": "qq"}]), rows())


def test_slope_is_the_least_squares_slope_per_1000_steps(tmp_path):
    planned = write_runs(tmp_path)
    slope = claim(statistic="level", value="slope", group={"variant": "rr1"}, expect={"above": 0})
    row = measure_claims([slope], planned, tmp_path, scored(tmp_path), REPS, seed=0).iloc[0]
    assert row["measured"] == pytest.approx(0.1)  # every rr1 curve rises by 0.1 per row, rows 1000 steps apart
    assert row["holds"] == "yes"


def test_validation_config_claims_name_planned_runs():
    with open("workflow/config/validation.yaml") as handle:
        config = yaml.safe_load(handle)
    planned, _ = expand(config)
    claims = parse_claims(config["claims"])
    check_claim_groups(claims, [run.row() for run in planned])
    assert len(claims) >= 10


def test_markdown_lists_every_claim_with_its_interval(tmp_path):
    planned = write_runs(tmp_path)
    table = measure_claims([GROWS, HIGHER_AT_RR1], planned, tmp_path, scored(tmp_path), REPS, seed=0)
    text = claims_markdown(table, REPS)
    assert text.count("| c | paper |") == 2
    assert "[0.3, 0.3]" in text and "yes: 2, no: 0, inconclusive: 0" in text


def test_aggregate_and_report_publish_the_config_claims(tmp_path, monkeypatch):
    """Through the real aggregate (rliable) and report: claims.csv in the aggregate dir and the
    report, claims.md and the index.html section; a variant's runs are a method of their own."""
    from test_stats import make_runs, write_suite

    from plasticity_bench.analysis import aggregate, report
    from plasticity_bench.analysis.vocabulary import read_aggregate

    monkeypatch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(tmp_path / "suites")))
    matrix, runs = make_runs(tmp_path)
    for row in matrix["runs"]:  # regrama's runs as a labelled entry, e.g. from regrama[tau=0.1]
        if row["method"] == "regrama":
            row["label"] = "regrama[tau=0.1]"
    matrix["config"]["claims"] = [
        {"claim": "GraMa-inactive grows", "source": "GraMa", "statistic": "change", "network": "critic",
         "metric": "grama_inactive_ratio@0.025", "group": {"method": "none"}, "expect": {"above": 0}},
        {"claim": "regrama scores above none", "source": "GraMa", "statistic": "score_iqm_difference",
         "a": {"label": "regrama[tau=0.1]"}, "b": {"method": "none"}, "expect": {"above": 0}},
    ]
    aggregate.aggregate(matrix, runs, tmp_path / "aggregate", reps=REPS)
    claims = read_aggregate(tmp_path / "aggregate").claims
    assert list(claims["holds"]) == ["yes", "yes"]
    assert claims.loc[0, "measured"] == pytest.approx(0.04)  # 0.01 x 4 more rows
    target = report.build_report(tmp_path / "aggregate", tmp_path / "reports", matrix)
    assert pd.read_csv(target / "claims.csv")["claim"].tolist() == ["GraMa-inactive grows", "regrama scores above none"]
    assert "| GraMa-inactive grows | GraMa |" in (target / "claims.md").read_text()
    page = (target / "index.html").read_text()
    assert "Claims of the seed papers, re-measured" in page and "regrama scores above none" in page
    assert "regrama[tau=0.1]" in pd.read_csv(target / "leaderboard.csv")["method"].tolist()


# ----------------------------------------------------------------------------- continual claims

SEQUENCE = "continual:pendulum-permuted"
SEGMENT_STEPS = 1000
SEGMENT_COUNT = 4
# Hand plasticity ratios per method and seed, segments 0..3: none falls, reset stays near 1.
RATIOS = {
    "none": [[1.0, 0.6, 0.5, 0.4], [1.0, 0.7, 0.5, 0.3], [1.0, 0.5, 0.6, 0.4]],
    "reset": [[1.0, 0.9, 1.0, 0.95], [1.0, 1.0, 0.9, 1.0], [1.0, 0.95, 0.95, 0.9]],
}


def continual_rows() -> list[dict]:
    return [{"run_id": f"{method}-{seed}", "algo": "sac", "arch": "mlp", "method": method, "task": SEQUENCE,
             "seed": seed, "suite": "continual_classic", "steps": SEGMENT_STEPS * SEGMENT_COUNT,
             "references": [f"ref-{seed}-{k}" for k in range(SEGMENT_COUNT)]}
            for method in RATIOS for seed in SEEDS]


def dormant_at(method: str, seed: int, k: int) -> float:
    """none's dormant ratio at segment k's end grows by 0.05 per segment; reset's stays flat."""
    return 0.2 + 0.01 * seed + (0.05 * k if method == "none" else 0.0)


def write_continual_runs(runs_dir: Path) -> tuple[list[dict], pd.DataFrame]:
    """Monitor rows every 250 steps; the row at each segment's end holds ``dormant_at``, the
    rows before it inside the segment a decoy (1.0) a reading off the segment's end would pick
    up; segment 2 of seed 0 has no row at its end, its last row is 2750 (-> 2.5 x its value)."""
    planned, segment_rows = continual_rows(), []
    for row in planned:
        method, seed = row["method"], row["seed"]
        steps, values = [], []
        for k in range(SEGMENT_COUNT):
            for step in range(k * SEGMENT_STEPS + 250, (k + 1) * SEGMENT_STEPS + 1, 250):
                at_end = step == (k + 1) * SEGMENT_STEPS
                if method == "none" and seed == 0 and k == 2 and at_end:
                    continue
                steps.append(step)
                values.append(dormant_at(method, seed, k) if at_end else
                              2.5 * dormant_at(method, seed, k) if (seed, k, step) == (0, 2, 2750) else 1.0)
            segment_rows.append({"run_id": row["run_id"], "segment": k, "step": (k + 1) * SEGMENT_STEPS,
                                 "score": 0.8 * RATIOS[method][seed][k],
                                 "plasticity_ratio": RATIOS[method][seed][k]})
        frame = pd.DataFrame({"step": steps, "network": "critic", "layer": "all", "metric": "dormant_ratio@0.1",
                              "value": values})
        (runs_dir / row["run_id"]).mkdir(parents=True)
        write_parquet(runs_dir / row["run_id"] / METRICS, frame)
    return planned, pd.DataFrame(segment_rows)


def continual_scored(planned: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"run_id": [row["run_id"] for row in planned], "score": 0.0})


RATIO_BELOW_ONE = {"claim": "none's ratio < 1", "source": "paper", "statistic": "level", "value": "mean",
                   "metric": "plasticity_ratio", "group": {"method": "none"}, "expect": {"below": 1}}
RESET_RAISES = {"claim": "reset raises the ratio", "source": "paper", "statistic": "difference", "value": "mean",
                "metric": "plasticity_ratio", "a": {"method": "reset"}, "b": {"method": "none"},
                "expect": {"above": 0}}
DORMANT_GROWS = {"claim": "dormant grows", "source": "paper", "statistic": "change", "metric": "dormant_ratio@0.1",
                 "network": "critic", "segments": "all", "group": {"method": "none"}, "expect": {"above": 0}}


def late_means(method: str) -> np.ndarray:
    """Per-run mean plasticity ratio over segments 1..3, a (seeds x 1 task) matrix."""
    return np.array([[np.mean(RATIOS[method][seed][1:])] for seed in SEEDS])


def test_continual_ratio_claims_match_hand_values_and_rliable(tmp_path):
    planned, segments = write_continual_runs(tmp_path)
    table = measure_claims([RATIO_BELOW_ONE, RESET_RAISES], planned, tmp_path, continual_scored(planned), REPS,
                           seed=0, segments=segments)
    below, raises = table.to_dict("records")
    none, reset = late_means("none"), late_means("reset")
    assert below["measured"] == pytest.approx(none.mean())  # (0.5 + 0.5 + 0.5) / 3
    np.random.seed(0)
    _, interval = rly.get_interval_estimates({"x": none}, lambda x: np.array([x.mean()]), reps=REPS)
    assert (below["ci_low"], below["ci_high"]) == pytest.approx(tuple(interval["x"][:, 0]))
    assert below["holds"] == "yes" and below["runs"] == 3
    assert "plasticity_ratio, segments 1..: mean of each run" in below["statistic"]
    assert raises["measured"] == pytest.approx(reset.mean() - none.mean())
    np.random.seed(0)
    _, interval = rly.get_interval_estimates({"x": [reset, none]}, lambda a, b: np.array([a.mean() - b.mean()]),
                                             reps=REPS)
    assert (raises["ci_low"], raises["ci_high"]) == pytest.approx(tuple(interval["x"][:, 0]))
    assert raises["holds"] == "yes"


def test_a_continual_claim_against_the_data_is_no(tmp_path):
    """none's ratio is not above 1, and reset does not lower it: both read "no"."""
    planned, segments = write_continual_runs(tmp_path)
    wrong = [{**RATIO_BELOW_ONE, "expect": {"above": 1}}, {**RESET_RAISES, "expect": {"below": 0}}]
    table = measure_claims(wrong, planned, tmp_path, continual_scored(planned), REPS, seed=0, segments=segments)
    assert list(table["holds"]) == ["no", "no"]


def test_a_segment_selection_picks_the_segments_it_names(tmp_path):
    planned, segments = write_continual_runs(tmp_path)
    last_two = {**RATIO_BELOW_ONE, "segments": [2, 3]}
    first = {**RATIO_BELOW_ONE, "segments": [0], "expect": {"below": 1}}
    table = measure_claims([last_two, first], planned, tmp_path, continual_scored(planned), REPS, seed=0,
                           segments=segments)
    assert table.loc[0, "measured"] == pytest.approx(np.mean([np.mean(r[2:]) for r in RATIOS["none"]]))
    # segment 0 is a fresh agent's in every run: ratio 1 exactly, never below it
    assert table.loc[1, "measured"] == pytest.approx(1.0) and table.loc[1, "holds"] == "no"


def test_monitor_metrics_are_read_at_segment_ends(tmp_path):
    """change: value at the last segment's end minus the first's; slope: per segment. Seed 0's
    segment 2 has no row at its end: its last row inside the segment stands in."""
    planned, segments = write_continual_runs(tmp_path)
    slope = {**DORMANT_GROWS, "statistic": "level", "value": "slope", "claim": "dormant slope"}
    flat = {**DORMANT_GROWS, "group": {"method": "reset"}, "claim": "reset's dormant grows"}
    table = measure_claims([DORMANT_GROWS, slope, flat], planned, tmp_path, continual_scored(planned), REPS,
                           seed=0, segments=segments)
    grows, per_segment, reset = table.to_dict("records")
    assert grows["measured"] == pytest.approx(0.15) and grows["holds"] == "yes"  # 3 segments x 0.05
    values = {seed: [dormant_at("none", seed, k) for k in range(SEGMENT_COUNT)] for seed in SEEDS}
    values[0][2] *= 2.5
    hand = np.mean([np.polyfit(np.arange(SEGMENT_COUNT), values[seed], 1)[0] for seed in SEEDS])
    assert per_segment["measured"] == pytest.approx(hand)
    assert "at segment ends, every segment: slope per segment" in per_segment["statistic"]
    # reset's ratio is flat: its change is exactly 0, a CI of [0, 0] is not above 0
    assert reset["measured"] == pytest.approx(0.0) and reset["holds"] == "no"


@pytest.mark.parametrize("entry, message", [
    ({**RATIO_BELOW_ONE, "segments": "middle"}, "segments is 'middle'; valid: all, late"),
    ({**RATIO_BELOW_ONE, "segments": [1, 1]}, "segments is [1, 1]; valid: all, late"),
    ({**RATIO_BELOW_ONE, "segments": [-1]}, "segments is [-1]"),
    ({**RATIO_BELOW_ONE, "metric": "plasticity_raito"}, "metric 'plasticity_raito' is no metric the runs log; "
                                                        "did you mean plasticity_ratio"),
    ({**RATIO_BELOW_ONE, "network": "critic"}, "per-segment score, not a network's: drop `network`"),
    ({**DORMANT_GROWS, "statistic": "metric_gap", "minus": "dormant_ratio@0"}, "cannot be read per segment"),
])
def test_bad_continual_claims_are_refused_with_the_reason(entry, message):
    with pytest.raises(ClaimError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_claims([entry])


def test_a_continual_claim_on_stationary_runs_or_absent_segments_is_refused_before_training():
    with pytest.raises(ClaimError, match="names 'gym:CartPole-v1', no continual run"):
        check_claim_groups(parse_claims([{**RATIO_BELOW_ONE, "group": {"variant": "rr1"}}]), rows())
    with pytest.raises(ClaimError, match="segment 4 is not one of 'continual:pendulum-permuted''s 4 segments; "
                                         "valid: 0..3"):
        check_claim_groups(parse_claims([{**RATIO_BELOW_ONE, "segments": [1, 4]}]), continual_rows())
    check_claim_groups(parse_claims([RATIO_BELOW_ONE, RESET_RAISES, DORMANT_GROWS]), continual_rows())


@pytest.mark.parametrize("path", ["workflow/config/default.yaml", "workflow/config/validation.yaml"])
def test_continual_claims_of_the_configs_name_planned_continual_runs(path):
    with open(path) as handle:
        config = yaml.safe_load(handle)
    planned, _ = expand(config)
    claims = parse_claims(config["claims"])
    check_claim_groups(claims, [run.row() for run in planned])
    continual = [claim for claim in claims if claim.per_segment]
    assert {claim.metric for claim in continual} >= {"plasticity_ratio", "dormant_ratio@0.1"}
