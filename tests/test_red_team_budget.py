"""The budget guard counts the algorithms' own cadences: a SAC run whose actor never trains
(policy_frequency above its updates) was a normal completed run with actor drift 0."""

from __future__ import annotations

import pytest

from plasticity_bench.budget import ShortBudgetError, cadences, check_budget
from plasticity_bench.spec import build_spec

SHORT = ["learning_starts=100", "eval_every_steps=200", "monitor_every_updates=50", "replay_ratio=1"]


@pytest.mark.parametrize("algo,task,key,value,words", [
    ("sac", "gym:Pendulum-v1", "policy_frequency", 1000, "the actor never trains"),
    ("td3", "gym:Pendulum-v1", "policy_frequency", 1000, "the actor never trains"),
    ("sac", "gym:Pendulum-v1", "target_network_frequency", 1000, "the target networks never move"),
    ("dqn", "gym:CartPole-v1", "target_network_frequency", 5000, "the target network never moves"),
])
def test_an_algorithm_cadence_beyond_the_budget_is_refused(algo, task, key, value, words):
    spec = build_spec(algo, "mlp", "none", task, 0, 500, [*SHORT, f"{key}={value}"])  # 400 updates
    with pytest.raises(ShortBudgetError) as raised:
        check_budget(spec)
    message = str(raised.value)
    assert f"{key}={value}" in message and words in message and f"--set {key}=N" in message


def test_cadences_within_the_budget_pass_and_are_listed():
    spec = build_spec("sac", "mlp", "none", "gym:Pendulum-v1", 0, 500, [*SHORT, "policy_frequency=4"])
    check_budget(spec)
    table = cadences(spec)
    assert table["policy_frequency"] == {"value": 4, "unit": "gradient updates", "first_acts_at_update": 4}
    dqn = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 0, 5000, [*SHORT, "replay_ratio=0.1"])
    assert cadences(dqn)["target_network_frequency"]["first_acts_at_update"] == 50  # 500 env steps x 0.1
