"""Where the agents claim CleanRL parity: SAC's initial entropy coefficient, DQN's ε-greedy
exploration from step 0 and ε-greedy evaluation, SAC/TD3's uniform random warm-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plasticity_bench.roles import Batch
from plasticity_bench.agents.dqn import DQN
from plasticity_bench.agents.sac import SAC
from plasticity_bench.networks import NetworkConfig
from plasticity_bench.spec import agent_hyperparams, build_spec, default_hyperparams
from plasticity_bench.training.run import Trainer
from plasticity_bench.training.stack import SeedGroup, ready


def make_trainer(tmp_path, algo, task, steps, overrides=()):
    spec = build_spec(algo, "mlp", "none", task, seed=0, steps=steps, overrides=["hidden_sizes=[16, 16]", *overrides])
    return Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False)


def run_env_steps(trainer: Trainer, count: int) -> None:
    trainer.start_episode()
    for _ in range(count):
        over = trainer.collect_step()
        if over:
            trainer.start_episode()


def greedy(agent: DQN, obs: torch.Tensor) -> int:
    with torch.no_grad():
        return int(agent.q_network(obs[None]).argmax())


# ---- SAC ----------------------------------------------------------------------------------


def make_sac(**overrides) -> SAC:
    torch.manual_seed(0)
    hp = {**default_hyperparams("sac"), **overrides}
    return SAC(3, 2, hp, NetworkConfig(hidden_sizes=(8,)), 100, torch.device("cpu"))


def test_sac_autotune_starts_at_alpha_one():
    agent = make_sac()
    assert agent.hp["autotune"] and agent.log_alpha.item() == 0.0 and agent.alpha.item() == 1.0
    assert agent.log_alpha.requires_grad


def test_sac_without_autotune_keeps_the_fixed_alpha():
    agent = make_sac(autotune=False)
    batch = Batch(torch.randn(4, 3), torch.rand(4, 2) * 2 - 1, torch.randn(4), torch.randn(4, 3), torch.zeros(4))
    for _ in range(4):  # two of them are actor updates (policy_frequency 2)
        agent.update(batch)
    assert agent.alpha.item() == pytest.approx(0.2) and not agent.log_alpha.requires_grad


# ---- DQN exploration ----------------------------------------------------------------------


def test_dqn_epsilon_at_10k_of_the_default_50k_budget_is_cleanrls():
    spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed=0, steps=50_000)
    agent = DQN(4, 2, spec.agent_hyperparams(), spec.network_config(), spec.steps, torch.device("cpu"))
    # CleanRL: 1.0 + (0.05 - 1.0) / (0.5 * 50_000) * 10_000 = 0.62; ε reaches end_e at 25k.
    assert agent.epsilon(10_000) == pytest.approx(0.62)
    assert agent.epsilon(25_000) == pytest.approx(0.05) and agent.epsilon(40_000) == pytest.approx(0.05)
    assert spec.hyperparams["learning_starts"] == 10_000  # no learning yet, but ε is already 0.62


def test_dqn_is_epsilon_greedy_before_learning_starts(tmp_path):
    # 400-step budget: ε falls from 1.0 to 0.05 over steps 0..200, all before learning_starts
    # (10_000). Each action must be the ε-greedy draw from the trainer's generator, not a
    # forced uniform one.
    trainer = make_trainer(tmp_path, "dqn", "gym:CartPole-v1", steps=400)
    replica = np.random.default_rng()
    replica.bit_generator.state = trainer.rng.bit_generator.state
    run_env_steps(trainer, 300)
    assert trainer.updates == 0
    expected = []
    for step in range(300):
        epsilon = max(1.0 - 0.95 * step / 200, 0.05)
        if replica.random() < epsilon:
            expected.append(int(replica.integers(2)))
        else:
            expected.append(greedy(trainer.agent, trainer.replay.obs[step]))
    assert trainer.replay.actions[:300].tolist() == expected


# ---- DQN evaluation -----------------------------------------------------------------------


def test_dqn_evaluation_is_epsilon_greedy_on_the_given_generator():
    hp = {**default_hyperparams("dqn"), "eval_epsilon": 0.3}
    torch.manual_seed(0)
    agent = DQN(4, 3, agent_hyperparams("dqn", hp), NetworkConfig(hidden_sizes=(8,)), 1000, torch.device("cpu"))
    observations = torch.randn(200, 4)
    rng, replica = np.random.default_rng(7), np.random.default_rng(7)
    actions = [agent.act(obs.numpy()[None], 999, [rng], explore=False)[0] for obs in observations]
    expected = [int(replica.integers(3)) if replica.random() < 0.3 else greedy(agent, obs) for obs in observations]
    assert actions == expected
    assert 0 < sum(a != greedy(agent, o) for a, o in zip(actions, observations)) < 100


def test_dqn_default_evaluation_epsilon_is_cleanrls():
    assert default_hyperparams("dqn")["eval_epsilon"] == 0.05


def test_evaluation_repeats_exactly_and_leaves_training_rngs_alone(tmp_path):
    overrides = ["eval_episodes=2", "eval_epsilon=0.5"]
    first = make_trainer(tmp_path / "a", "dqn", "gym:CartPole-v1", steps=400, overrides=overrides)
    second = make_trainer(tmp_path / "b", "dqn", "gym:CartPole-v1", steps=400, overrides=overrides)
    for trainer in (first, second):
        ready(trainer)
    numpy_state, torch_state = first.rng.bit_generator.state, first.generators.host.get_state()
    evaluate(first)
    assert first.rng.bit_generator.state == numpy_state and torch.equal(first.generators.host.get_state(), torch_state)
    evaluate(second)
    assert first.records.eval_rows == second.records.eval_rows


def evaluate(trainer: Trainer) -> None:
    """An evaluation as training makes it: played by the seed's stack (a group of one)."""
    group = SeedGroup([trainer], progress=False)
    group.restack()
    trainer.evaluate(group.play_evaluations()[id(trainer)])
    group.drop_stack()


# ---- SAC / TD3 warm-up --------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_sac_and_td3_act_uniformly_before_learning_starts(tmp_path, algo):
    trainer = make_trainer(tmp_path, algo, "gym:Pendulum-v1", steps=400, overrides=["learning_starts=50"])
    replica = np.random.default_rng(0)  # the trainer's generator, seeded with the run seed
    run_env_steps(trainer, 50)
    expected = np.stack([replica.uniform(-1.0, 1.0, size=(1,)).astype(np.float32) for _ in range(50)])
    np.testing.assert_array_equal(trainer.replay.actions[:50].numpy(), expected)
