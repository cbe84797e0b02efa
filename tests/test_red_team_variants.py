"""A variant's baseline is the same variant's baseline: regrama[rr1]'s P(> none) compares it
with none[rr1] (same replay ratio), never with plain none; without none[rr1] there is none."""

from __future__ import annotations

import pandas as pd
import pytest

from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.baselines import best_baselines, comparisons
from plasticity_bench.analysis.leaderboard import leaderboard
from plasticity_bench.analysis.report import read_aggregate

from test_stats import make_runs, toy_suite  # noqa: F401  (toy_suite: the suite the runs name)

SCOPE = {"suite": "toy", "algo": "sac", "arch": "mlp"}


def frame(methods):
    return pd.DataFrame([{**SCOPE, "method": m, "task": "t", "seed": 0} for m in methods])


def iqm(estimates: dict):
    return pd.DataFrame([{**SCOPE, "method": m, "statistic": "iqm", "estimate": v} for m, v in estimates.items()])


def test_each_method_is_compared_with_the_baseline_of_its_variant():
    methods = ["none", "regrama", "none[rr1]", "regrama[rr1]", "redo[rr1]"]
    best = best_baselines(iqm({"none": 0.2, "regrama": 0.9, "none[rr1]": 0.5, "regrama[rr1]": 0.6, "redo[rr1]": 0.7}))
    best_of = dict(zip(best["method"], best["best_baseline"]))
    # the best baseline of a variant is a built-in method of the same variant
    assert best_of["regrama[rr1]"] == "redo[rr1]" and best_of["redo[rr1]"] == "regrama[rr1]"
    assert best_of["regrama"] == "none"
    pairs = comparisons(frame(methods), best)
    against = {(row.method, row.baseline) for row in pairs.itertuples()}
    assert ("regrama[rr1]", "none[rr1]") in against and ("regrama[rr1]", "none") not in against
    assert ("none[rr1]", "none") not in against and ("regrama", "none") in against


def test_a_variant_without_its_baseline_has_none():
    pairs = comparisons(frame(["none", "regrama[rr1]"]))
    assert pairs.empty


def test_the_leaderboard_reads_p_over_the_variants_baseline(tmp_path):
    matrix, runs = make_runs(tmp_path, cells=[(m, "mlp") for m in ("none", "regrama", "none[rr1]", "regrama[rr1]")])
    aggregate(matrix, runs, tmp_path / "aggregate", reps=100, seed=0)
    agg = read_aggregate(tmp_path / "aggregate")
    board = leaderboard(agg).set_index(["suite", "method"])
    poi = agg.probability_of_improvement
    expected = poi[(poi["method"] == "regrama[rr1]") & (poi["baseline"] == "none[rr1]") & (poi["suite"] != "all")]
    assert len(expected) == 1
    row = board.loc[(expected.iloc[0]["suite"], "regrama[rr1]")]
    assert row["prob_improvement_over_none"] == pytest.approx(expected.iloc[0]["probability"])
