"""Per-experiment method options: each paper's tau reaches exactly its own cells."""

import pytest
import yaml

from plasticity_bench.matrix import expand, experiment_config, parse_method_entry, sweep_entries
from plasticity_bench.spec import SpecError

BASE = {
    "algos": ["dqn"], "archs": ["mlp"], "methods": ["none", "regrama"], "suites": ["classic_control"],
    "tasks": {"classic_control": ["gym:CartPole-v1"]}, "seeds": [0], "steps": {"classic_control": 2000},
    "method_options": {"regrama": {"tau": 0.05, "period": 500}},
}


def test_experiment_method_options_merge_per_method_over_the_main_ones():
    block = experiment_config(BASE, {"method_options": {"regrama": {"tau": 0.0}, "redo": {"tau": 0.02}}})
    assert block["method_options"] == {"regrama": {"tau": 0.0, "period": 500}, "redo": {"tau": 0.02}}
    assert BASE["method_options"] == {"regrama": {"tau": 0.05, "period": 500}}  # main config untouched


def test_experiment_tau_reaches_only_its_cells():
    config = {**BASE, "experiments": [{"archs": ["residual"], "overrides": {"dqn": {"hidden_sizes": [64]}},
                                       "method_options": {"regrama": {"tau": 0.0}}}]}
    runs, _ = expand(config)
    taus = {(run.spec.arch, run.spec.method_options["regrama"]["tau"], run.spec.method_options["regrama"]["period"])
            for run in runs if run.spec.method == "regrama"}
    assert taus == {("mlp", 0.05, 500), ("residual", 0.0, 500)}


def test_two_settings_in_one_leaderboard_cell_are_refused():
    config = {**BASE, "experiments": [{"method_options": {"regrama": {"tau": 0.0}}}]}
    with pytest.raises(SpecError, match="share suite/algo/arch/label/method/variant/task/seed classic_control/dqn/mlp//regrama//"):
        expand(config)


def test_variants_let_two_settings_share_a_cell_and_are_kept_apart():
    config = {**BASE, "methods": ["none"], "method_options": {}, "experiments": [
        {"variant": "rr1", "overrides": {"dqn": {"replay_ratio": 1.0}}},
        {"variant": "rr025", "overrides": {"dqn": {"replay_ratio": 0.25}}}]}
    runs, _ = expand(config)
    ratios = {(run.row().get("variant", ""), run.spec.hyperparams["replay_ratio"]) for run in runs}
    assert ratios == {("", 0.1), ("rr1", 1.0), ("rr025", 0.25)}
    assert len({run.spec.run_id for run in runs}) == 3


def test_validation_config_expands_with_its_variants():
    with open("workflow/config/validation.yaml") as handle:
        runs, _ = expand(yaml.safe_load(handle))
    variants = {run.variant for run in runs if run.spec.algo == "dqn" and run.spec.arch == "mlp"}
    assert variants == {"rr1", "rr025"}
    # version 2: fresh seeds 5-9, 5-14 where a CI needs them; the continual scope is the default's (seeds 0-4)
    continual = {run.spec.seed for run in runs if run.suite == "continual_classic"}
    assert {run.spec.seed for run in runs if run.suite != "continual_classic"} == set(range(5, 15))
    assert continual == set(range(5))


def test_paper_config_uses_each_papers_tau_per_cell():
    with open("workflow/config/paper.yaml") as handle:
        runs, _ = expand(yaml.safe_load(handle))
    tau = {}
    for run in runs:
        for method in ("redo", "regrama"):
            if run.spec.method == method:
                tau.setdefault((method, run.spec.algo, run.spec.arch, run.suite), set()).add(
                    run.spec.method_options[method]["tau"])
    # GraMa paper, App. A: 0.01 for ReGraMa and 0.02 for ReDo in the BRO (residual) and
    # DACER (diffusion) cells; 0 for ReGraMa in the CleanRL-SAC MuJoCo activation study.
    for algo in ("sac", "td3"):
        for arch, suite in (("residual", "dmc"), ("diffusion", "mujoco")):
            assert tau[("regrama", algo, arch, suite)] == {0.01}
            assert tau[("redo", algo, arch, suite)] == {0.02}
        assert tau[("regrama", algo, "mlp", "mujoco")] == {0.0}
    assert tau[("redo", "sac", "mlp", "dmc")] == {0.1}  # ReDo's own default elsewhere


def test_method_entries_carry_their_options_into_the_spec_and_the_label():
    config = {**BASE, "methods": ["none", "regrama[tau=0.1,period=250]", "layer_norm+redo[tau=0.02]"]}
    runs, _ = expand(config)
    by_label = {run.row().get("label", run.spec.method): run.spec for run in runs}
    assert set(by_label) == {"none", "regrama[tau=0.1,period=250]", "layer_norm+redo[tau=0.02]"}
    assert by_label["regrama[tau=0.1,period=250]"].method_options["regrama"] == {
        **by_label["regrama[tau=0.1,period=250]"].method_options["regrama"], "tau": 0.1, "period": 250}
    assert by_label["layer_norm+redo[tau=0.02]"].methods == ("layer_norm", "redo")
    assert by_label["layer_norm+redo[tau=0.02]"].method_options["redo"]["tau"] == 0.02
    # the entry's options win over the config's method_options (tau 0.05, period 500)
    assert by_label["regrama[tau=0.1,period=250]"].method_options["regrama"]["period"] == 250


def test_user_method_entries_parse_with_options():
    entry = parse_method_entry("my_methods:WeightNoise[sigma=0.005]")
    assert entry.names == ("my_methods:WeightNoise",) and entry.options == {"my_methods:WeightNoise": {"sigma": 0.005}}


@pytest.mark.parametrize("entry, message", [
    ("regrama[tau]", "must be key=value pairs"),
    ("regrama[tau=0.1", "cannot read"),
    ("regrama[]", "must be key=value pairs"),
])
def test_bad_method_entries_are_refused(entry, message):
    with pytest.raises(SpecError, match=message):
        parse_method_entry(entry)


def test_unknown_option_in_an_entry_is_refused_naming_it():
    with pytest.raises(SpecError, match="taux"):
        expand({**BASE, "methods": ["regrama[taux=0.1]"]})


def test_sweep_expands_a_grid_into_entries_of_its_own_product():
    assert sweep_entries({"regrama": {"tau": [0.01, 0.1], "period": [1000, 5000]}}) == [
        "regrama[tau=0.01,period=1000]", "regrama[tau=0.01,period=5000]",
        "regrama[tau=0.1,period=1000]", "regrama[tau=0.1,period=5000]"]
    config = {**BASE, "methods": ["none"], "sweep": {"regrama": {"tau": [0.0, 0.1]}},
              "experiments": [{"archs": ["residual"], "methods": ["none"],
                               "overrides": {"dqn": {"hidden_sizes": [64]}}}]}
    runs, _ = expand(config)
    labels = {(run.spec.arch, run.row().get("label", run.spec.method)) for run in runs}
    assert labels == {("mlp", "none"), ("mlp", "regrama[tau=0.0]"), ("mlp", "regrama[tau=0.1]"),
                      ("residual", "none")}
    taus = {run.spec.method_options["regrama"]["tau"] for run in runs if run.spec.method == "regrama"}
    assert taus == {0.0, 0.1}


def test_a_sweep_of_a_method_the_config_does_not_know_is_refused():
    with pytest.raises(SpecError, match="regrma"):
        expand({**BASE, "sweep": {"regrma": {"tau": [0.1]}}})
