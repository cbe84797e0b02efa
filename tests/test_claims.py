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
