"""Two method entries of a config that resolve to one run (the same spec) are refused naming
both, instead of the second silently vanishing from the leaderboard."""

from __future__ import annotations

import pytest

from plasticity_bench.matrix import expand
from plasticity_bench.spec import SpecError

BASE = {"algos": ["dqn"], "archs": ["mlp"], "suites": ["classic_control"],
        "tasks": {"classic_control": ["gym:CartPole-v1"]}, "seeds": [0, 1], "steps": {"classic_control": 2000}}


@pytest.mark.parametrize("entries", [
    ["regrama", "regrama[tau=0.01]"],                             # the default value spelt out
    ["regrama[tau=0.1,period=500]", "regrama[period=500,tau=0.1]"],  # options in another order
    ["regrama[tau=0.1]", "regrama[tau=0.10]"],                    # one number written two ways
])
def test_two_entries_of_one_run_are_refused_naming_both(entries):
    with pytest.raises(SpecError) as raised:
        expand({**BASE, "methods": ["none", *entries]})
    message = str(raised.value)
    assert all(repr(entry) in message for entry in entries) and "list it once" in message


def test_a_sweep_through_the_default_next_to_the_plain_method_is_refused():
    config = {**BASE, "methods": ["none", "regrama"], "sweep": {"regrama": {"tau": [0.01, 0.1]}}}
    with pytest.raises(SpecError, match=r"'regrama' and 'regrama\[tau=0.01\]'"):
        expand(config)
    # listed once, the sweep's default point is a run of its own label: the sensitivity series has it
    runs, _ = expand({**config, "methods": ["none"]})
    labels = {run.label for run in runs}
    assert labels == {"none", "regrama[tau=0.01]", "regrama[tau=0.1]"} and len(runs) == 6
