"""Trainer and agent details: TD targets on truncation, failure on non-finite losses, replay."""

import json

import numpy as np
import torch
import torch.nn.functional as F

from plasticity_bench.roles import Batch
from plasticity_bench.replay import ReplayBuffer
from plasticity_bench.spec import build_spec
from plasticity_bench.training.run import Trainer


def make_trainer(tmp_path, algo, task, steps=400, overrides=()):
    spec = build_spec(algo, "mlp", "none", task, seed=0, steps=steps,
                      overrides=["hidden_sizes=[16, 16]", "learning_starts=10000", *overrides])
    return Trainer(spec, tmp_path, threads=1, device=torch.device("cpu"), progress=False)


def test_time_limit_truncation_is_stored_as_non_terminal_with_the_true_next_obs(tmp_path):
    trainer = make_trainer(tmp_path, "sac", "gym:Pendulum-v1")  # 200-step time limit, never terminates
    trainer.start_episode()
    for _ in range(250):
        over = trainer.collect_step()
        if over:
            final_next_obs = trainer.replay.next_obs[trainer.replay.size - 1].clone()
            trainer.start_episode()
    assert trainer.episodes == 1
    assert trainer.replay.terminations[:250].sum() == 0
    # The stored next observation of the truncated step is the episode's last, not the reset one.
    assert not torch.equal(final_next_obs, trainer.replay.obs[200])
    assert torch.equal(trainer.replay.next_obs[198], trainer.replay.obs[199])


def test_dqn_td_target_bootstraps_unless_terminated(tmp_path):
    agent = make_trainer(tmp_path, "dqn", "gym:CartPole-v1").agent
    torch.manual_seed(1)
    batch = Batch(torch.randn(4, 4), torch.tensor([0, 1, 1, 0]), torch.tensor([1.0, 0.5, -1.0, 2.0]),
                  torch.randn(4, 4), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with torch.no_grad():
        next_max = agent.target_network(batch.next_obs).max(dim=1).values
        expected_target = batch.rewards + 0.99 * next_max * torch.tensor([1.0, 0.0, 1.0, 0.0])
        predicted = agent.q_network(batch.obs)[torch.arange(4), batch.actions]
        expected = F.mse_loss(predicted, expected_target)
    assert torch.allclose(agent.q_loss(agent.q_network, batch), expected)


def test_sac_td_target_bootstraps_unless_terminated(tmp_path):
    agent = make_trainer(tmp_path, "sac", "gym:Pendulum-v1").agent
    batch = Batch(torch.randn(3, 3), torch.rand(3, 1) * 2 - 1, torch.tensor([1.0, -2.0, 0.5]),
                  torch.randn(3, 3), torch.tensor([0.0, 1.0, 0.0]))
    torch.manual_seed(7)
    loss = agent.critic_loss(agent.critic, batch)
    torch.manual_seed(7)  # same next-action sample as inside the loss
    with torch.no_grad():
        next_action, next_log_pi = agent.actor.sample(batch.next_obs)
        q1_next, q2_next = agent.critic_target(batch.next_obs, next_action)
        soft_value = torch.min(q1_next, q2_next).squeeze(-1) - agent.alpha * next_log_pi.squeeze(-1)
        target = batch.rewards + torch.tensor([1.0, 0.0, 1.0]) * 0.99 * soft_value
        q1, q2 = agent.critic(batch.obs, batch.actions)
        expected = F.mse_loss(q1.squeeze(-1), target) + F.mse_loss(q2.squeeze(-1), target)
    assert torch.allclose(loss, expected)


def test_non_finite_loss_fails_the_run_with_step_and_reason(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("train", "--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "3000", "--set", "learning_starts=200",
                 "--set", "learning_rate=1e30", "--set", "monitor_every_updates=50", "--out", str(out), "--no-progress",
                 "--allow-short-budget")  # it diverges long before the default eval_every_steps
    assert result.returncode == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "non-finite q_loss" in manifest["error"] and f"env step {manifest['step']}" in manifest["error"]
    assert manifest["step"] < 3000  # checked at the monitor's cadence, not only at evaluations


def test_replay_sampling_and_state_round_trip():
    replay = ReplayBuffer(5, (2,), (1,), discrete=False)
    for i in range(7):  # wraps around: slots hold transitions 5, 6, 2, 3, 4
        replay.add(np.full(2, i, np.float32), np.full(1, -i, np.float32), i, np.full(2, i + 1, np.float32), i == 6)
    assert len(replay) == 5 and replay.position == 2
    assert replay.obs[:, 0].tolist() == [5, 6, 2, 3, 4]
    batch = replay.sample(64)
    assert torch.equal(batch.next_obs, batch.obs + 1) and torch.equal(batch.actions[:, 0], -batch.obs[:, 0])
    assert torch.equal(batch.terminations, (batch.obs[:, 0] == 6).float())
    copy = ReplayBuffer(5, (2,), (1,), discrete=False)
    copy.load_state_dict(replay.state_dict())
    assert torch.equal(copy.obs, replay.obs) and copy.position == replay.position and copy.size == replay.size


def test_how_often_a_run_is_measured_never_changes_what_it_trains(tmp_path):
    """The monitor draws its batch from a generator of its own call: a run measured every
    10 updates and the same run measured every 20 evaluate to the same returns and end with
    the same parameters (only their metric rows differ)."""
    from plasticity_bench.training import train
    from plasticity_bench.analysis.runs import RunRecord

    ends = []
    for every in (10, 20):
        spec = build_spec("dqn", "mlp", "none", "gym:CartPole-v1", seed=0, steps=800,
                          overrides=["hidden_sizes=[16]", "learning_starts=200", "eval_every_steps=400",
                                     "eval_episodes=2", f"monitor_every_updates={every}"])
        run_dir = tmp_path / str(every)
        assert train(spec, run_dir, device="cpu", progress=False)["status"] == "completed"
        record = RunRecord(run_dir)
        ends.append((record.eval()["return"].tolist(), record.metrics()))
    (returns_10, metrics_10), (returns_20, metrics_20) = ends
    assert returns_10 == returns_20
    drift = metrics_10[(metrics_10["metric"] == "weight_drift") & (metrics_10["step"] == 800)]
    assert len(drift) and drift["value"].tolist() == metrics_20[
        (metrics_20["metric"] == "weight_drift") & (metrics_20["step"] == 800)]["value"].tolist()


def test_statistic_sums_add_updates_and_a_stacks_share_by_hand():
    from plasticity_bench.training.health import StatisticSums

    seed = StatisticSums()
    seed.add({"q_loss": torch.tensor(1.5, dtype=torch.float32)})
    stack = StatisticSums()
    stack.add({"q_loss": torch.tensor([2.0, 10.0]), "q_values": torch.tensor([0.5, -1.0])})
    stack.add({"q_loss": torch.tensor([4.0, float("nan")]), "q_values": torch.tensor([0.5, 3.0])})
    seed.add_share(stack, 0)
    assert seed.sums["q_loss"].dtype == torch.float64 and seed.sums["q_loss"].item() == 7.5  # 1.5 + 2 + 4
    assert seed.counts == {"q_loss": 3, "q_values": 2} and seed.sums["q_values"].item() == 1.0
    other = StatisticSums()
    other.add_share(stack, 1)
    assert torch.isnan(other.sums["q_loss"]) and other.sums["q_values"].item() == 2.0  # a NaN survives the sum
    seed.clear()
    assert seed.sums == {} and seed.counts == {}
