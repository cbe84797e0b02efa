"""Environments and suites: conventions of make_env, seeding, time limits, validation, scores."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium
import numpy as np
import pytest

from plasticity_bench.environments import (
    TASK_FAMILIES,
    dmc_tasks,
    is_discrete,
    make_env,
    validate_task,
)
from plasticity_bench.environments.suites import (
    Suite,
    TaskScore,
    load_suite,
    load_suites,
    normalise,
    suite_of_task,
)

ONE_TASK_PER_FAMILY_AND_KIND = [
    "mujoco:HalfCheetah-v5",
    "dmc:cartpole-swingup",
    "gym:Pendulum-v1",
    "gym:CartPole-v1",
    "minatar:breakout",
]


def _random_actions(env: gymnasium.Env, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    if isinstance(env.action_space, gymnasium.spaces.Discrete):
        return [int(a) for a in rng.integers(env.action_space.n, size=count)]
    return list(rng.uniform(-1.0, 1.0, size=(count, *env.action_space.shape)).astype(np.float32))


def _rollout(env: gymnasium.Env, seed: int, actions: list) -> tuple[list, list]:
    observation, _ = env.reset(seed=seed)
    observations, rewards = [observation], []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(action)
        observations.append(observation)
        rewards.append(reward)
        if terminated or truncated:
            break
    return observations, rewards


@pytest.mark.parametrize("task", ONE_TASK_PER_FAMILY_AND_KIND)
def test_make_env_gives_flat_float32_observations_and_unit_or_discrete_actions(task):
    env = make_env(task)
    assert isinstance(env, gymnasium.Env)
    observation, _ = env.reset(seed=0)
    assert observation.dtype == np.float32 and observation.ndim == 1
    assert observation.shape == env.observation_space.shape
    if is_discrete(task):
        assert isinstance(env.action_space, gymnasium.spaces.Discrete)
    else:
        space = env.action_space
        assert isinstance(space, gymnasium.spaces.Box) and space.dtype == np.float32
        assert np.all(space.low == -1.0) and np.all(space.high == 1.0)
    for action in _random_actions(env, 20, seed=1):
        observation, reward, terminated, truncated, _ = env.step(action)
        assert observation.dtype == np.float32 and observation.shape == env.observation_space.shape
        assert np.isfinite(float(reward)) and isinstance(terminated, bool) and isinstance(truncated, bool)
        if terminated or truncated:
            env.reset(seed=2)
    env.close()


def test_is_discrete_per_family():
    assert is_discrete("gym:CartPole-v1") and is_discrete("gym:Acrobot-v1") and is_discrete("minatar:freeway")
    assert not is_discrete("gym:Pendulum-v1") and not is_discrete("dmc:walker-walk")
    assert not is_discrete("mujoco:Hopper-v5")


@pytest.mark.parametrize("task", ONE_TASK_PER_FAMILY_AND_KIND)
def test_reset_seed_determines_the_episode(task):
    env = make_env(task)
    actions = _random_actions(env, 300, seed=3)
    first = _rollout(env, seed=7, actions=actions)
    # A different episode in between must leave no trace (RNG state, sticky last action, ...).
    _rollout(env, seed=8, actions=_random_actions(env, 50, seed=4))
    second = _rollout(env, seed=7, actions=actions)
    assert len(first[0]) == len(second[0]) > 1
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    # ... and the seed matters: other seeds give other episodes.
    others = [_rollout(env, seed=seed, actions=actions) for seed in range(100, 105)]
    assert any(
        len(o[0]) != len(first[0]) or any(not np.array_equal(x, y) for x, y in zip(o[0], first[0])) or o[1] != first[1]
        for o in others
    )
    env.close()


def test_minatar_sticky_action_does_not_carry_over_between_episodes():
    # MinAtar repeats the previous action with probability 0.1; after reset(seed) the
    # "previous action" must not be the last one of the episode before.
    actions = [3, 3, 0, 3, 3, 0, 3, 3]  # right / no-op in Breakout
    fresh = [_rollout(make_env("minatar:breakout"), seed, actions) for seed in range(40)]
    env = make_env("minatar:breakout")
    for seed, expected in enumerate(fresh):
        env.reset(seed=1000 + seed)
        for _ in range(5):
            env.step(1)  # left: the action a carried-over sticky step would repeat
        observations, rewards = _rollout(env, seed, actions)
        for a, b in zip(observations, expected[0]):
            np.testing.assert_array_equal(a, b)
        assert rewards == expected[1]


def test_dmc_time_limit_truncates_after_1000_steps():
    env = make_env("dmc:cartpole-swingup")
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    for step in range(1, 1001):
        _, _, terminated, truncated, info = env.step(action)
        if step < 1000:
            assert not terminated and not truncated, step
    assert truncated and not terminated and info["discount"] == 1.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(action)
    env.reset(seed=1)
    env.step(action)  # usable again after reset


def test_minatar_terminal_is_terminated_and_has_a_time_limit():
    env = make_env("minatar:breakout")
    assert env.spec is None or env.spec.max_episode_steps is None or env.spec.max_episode_steps > 0
    assert isinstance(env, gymnasium.wrappers.TimeLimit)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(6)))
        if terminated or truncated:
            break
    assert terminated and not truncated  # a random paddle loses the ball quickly


def test_gymnasium_tasks_keep_their_registered_time_limit():
    env = make_env("gym:Pendulum-v1")
    env.reset(seed=0)
    for step in range(1, 201):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
    assert truncated and not terminated


def test_pendulum_unit_actions_map_to_its_torque_bounds():
    env = make_env("gym:Pendulum-v1")
    max_torque = env.unwrapped.max_torque
    assert max_torque == 2.0 and np.all(env.unwrapped.action_space.high == max_torque)
    env.reset(seed=0)
    for unit, torque in [(1.0, max_torque), (-1.0, -max_torque), (0.5, max_torque / 2)]:
        env.step(np.array([unit], dtype=np.float32))
        assert env.unwrapped.last_u == pytest.approx(torque)


def test_mujoco_unit_actions_map_to_humanoid_control_range():
    env = make_env("mujoco:Humanoid-v5")
    low, high = env.unwrapped.action_space.low, env.unwrapped.action_space.high
    assert not np.allclose(high, 1.0)  # Humanoid's actuators are limited to +-0.4
    env.reset(seed=0)
    env.step(np.ones(env.action_space.shape, dtype=np.float32))
    np.testing.assert_allclose(env.unwrapped.data.ctrl, high, rtol=1e-6)
    env.step(-np.ones(env.action_space.shape, dtype=np.float32))
    np.testing.assert_allclose(env.unwrapped.data.ctrl, low, rtol=1e-6)


def test_dmc_unit_actions_map_to_the_action_spec_bounds():
    # quadruped's actuators have bounds other than [-1, 1] (e.g. [-0.8, 0.8], [-1, 1.1]).
    env = make_env("dmc:quadruped-run")
    spec = env.dm_env.action_spec()
    assert not (np.all(spec.minimum == -1.0) and np.all(spec.maximum == 1.0))
    physics = env.dm_env.physics
    env.reset(seed=0)
    for unit, expected in [(1.0, spec.maximum), (-1.0, spec.minimum), (0.0, (spec.minimum + spec.maximum) / 2)]:
        env.step(np.full(env.action_space.shape, unit, dtype=np.float32))
        np.testing.assert_allclose(physics.data.ctrl, expected, rtol=1e-6, atol=1e-12)


def test_dmc_observation_is_the_flattened_observation_dict():
    env = make_env("dmc:cheetah-run")
    observation, _ = env.reset(seed=0)
    time_step_observation = env.dm_env.task.get_observation(env.dm_env.physics)
    expected = np.concatenate([np.ravel(v) for v in time_step_observation.values()]).astype(np.float32)
    np.testing.assert_array_equal(observation, expected)


def _one_line_value_error(task: str) -> str:
    with pytest.raises(ValueError) as error:
        validate_task(task)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_validate_task_accepts_each_family():
    for task in ["mujoco:Ant-v5", "dmc:ball_in_cup-catch", "dmc:humanoid-stand", "gym:Acrobot-v1", "minatar:space_invaders"]:
        validate_task(task)


def test_validate_task_names_bad_family_and_lists_families():
    message = _one_line_value_error("atari:Pong-v5")
    assert "'atari'" in message and all(family in message for family in TASK_FAMILIES)
    message = _one_line_value_error("cheetah-run")
    assert "cheetah-run" in message and all(family in message for family in TASK_FAMILIES)


@pytest.mark.parametrize(
    "task, bad, some_valid",
    [
        ("dmc:cheetah-fly", "cheetah-fly", ["cheetah-run", "ball_in_cup-catch", "dog-walk"]),
        ("mujoco:HalfCheetah-v99", "HalfCheetah-v99", ["HalfCheetah-v5", "Humanoid-v5"]),
        ("gym:HalfCheetah-v5", "HalfCheetah-v5", ["CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0"]),
        ("minatar:pong", "pong", ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]),
    ],
)
def test_validate_task_names_bad_name_and_lists_that_familys_names(task, bad, some_valid):
    message = _one_line_value_error(task)
    assert repr(bad) in message
    assert all(name in message for name in some_valid)


def test_dmc_task_list_matches_installed_suite():
    from dm_control import suite

    assert set(dmc_tasks()) == {f"{domain}-{task}" for domain, task in suite.ALL_TASKS}


def _run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_validation_is_cheap_and_making_envs_is_quiet(tmp_path):
    result = _run_python(
        """
        import sys
        from plasticity_bench.environments import TASK_FAMILIES, validate_task
        for task in ["dmc:cheetah-run", "mujoco:HalfCheetah-v5", "gym:CartPole-v1", "minatar:breakout"]:
            validate_task(task)
        assert "dm_control" not in sys.modules and "mujoco" not in sys.modules, "validation imported a simulator"
        from plasticity_bench.environments import make_env
        for task in ["mujoco:HalfCheetah-v5", "dmc:cheetah-run", "minatar:asterix"]:
            make_env(task).reset(seed=0)
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # no GLFW / MuJoCo / MinAtar warnings
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


# ----------------------------------------------------------------------------- suites


def test_expected_suites_exist_with_their_algorithms():
    suites = load_suites()
    expected = {
        "mujoco": ("sac", "td3"),
        "dmc": ("sac", "td3"),
        "dmc_easy": ("sac", "td3"),
        "classic_control": ("dqn",),
        "classic_control_continuous": ("sac", "td3"),
        "minatar": ("dqn",),
    }
    assert {name: suites[name].algos for name in expected} == expected
    assert len(load_suite("minatar").tasks) == 5 and len(load_suite("dmc").tasks) == 10


def test_every_suite_task_is_valid_scored_and_matches_its_algorithms():
    for suite in load_suites().values():
        if suite.algos == ("sl",):  # the supervised control scores accuracy: tests/test_supervised.py
            continue
        assert suite.steps > 0 and suite.description
        discrete = "dqn" in suite.algos
        for task, score in suite.tasks.items():
            validate_task(task)
            assert is_discrete(task) == discrete, (suite.name, task)
            assert np.isfinite(score.random) and np.isfinite(score.reference)
            assert score.reference != score.random and score.reference > score.random, task
            assert "random: measured by bench/random_returns.py" in score.source and "reference:" in score.source


def test_tasks_shared_between_suites_have_the_same_scores():
    seen: dict[str, TaskScore] = {}
    for suite in load_suites().values():
        for task, score in suite.tasks.items():
            assert seen.setdefault(task, score) == score, task


def test_normalise_hand_example(tmp_path, monkeypatch):
    (tmp_path / "toy.yaml").write_text(
        textwrap.dedent(
            """
            name: toy
            description: hand example
            algos: [dqn]
            steps: 1000
            tasks:
              gym:CartPole-v1: {random: 20.0, reference: 220.0, source: "by hand"}
            """
        )
    )
    monkeypatch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(tmp_path))
    assert set(load_suites()) == {"toy"}
    suite = load_suite("toy")
    assert isinstance(suite, Suite) and suite.algos == ("dqn",) and suite.steps == 1000
    assert suite.normalise("gym:CartPole-v1", 120.0) == pytest.approx(0.5)
    np.testing.assert_allclose(normalise("gym:CartPole-v1", np.array([20.0, 220.0, 420.0])), [0.0, 1.0, 2.0])
    assert suite_of_task("gym:CartPole-v1") is not None and suite_of_task("gym:Acrobot-v1") is None
    with pytest.raises(ValueError, match="gym:Acrobot-v1"):
        normalise("gym:Acrobot-v1", 0.0)
    with pytest.raises(ValueError, match="'nope'.*toy"):
        load_suite("nope")


def test_real_suite_normalisation_uses_random_and_reference():
    score = load_suite("dmc").tasks["dmc:cheetah-run"]
    assert score.reference == 1000.0
    assert normalise("dmc:cheetah-run", score.random) == pytest.approx(0.0)
    assert normalise("dmc:cheetah-run", 1000.0) == pytest.approx(1.0)


def test_base_task_module_names_the_package_families():
    from plasticity_bench.environments.tasks import FAMILY_NAMES

    assert FAMILY_NAMES == tuple(TASK_FAMILIES)
