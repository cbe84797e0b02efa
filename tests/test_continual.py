"""Continual tasks: sequences checked before training, switch points, resumption inside a
segment, fresh-agent references planned once, and plasticity ratios recomputed from records."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.continual import CONTINUAL_SEGMENTS_FILE, MIN_REFERENCE_SCORE, segment_label
from plasticity_bench.analysis.continual_plots import segment_lengths
from plasticity_bench.analysis.plots import aggregate_look, plot_all
from plasticity_bench.analysis.runs import RunRecord
from plasticity_bench.environments import make_env
from plasticity_bench.environments import make_task_envs
from plasticity_bench.environments.continual import ContinualEnv, Sequence
from plasticity_bench.environments.suites import load_suites
from plasticity_bench.matrix import expand, train_jobs, write_matrix
from plasticity_bench.results import load_checkpoint
from plasticity_bench.spec import SpecError, build_spec
from plasticity_bench.training import train

PENDULUM4 = {"tasks": ["gym:Pendulum-v1"] * 4, "segment_steps": 400}
SAC_SMALL = {"learning_starts": 200, "eval_every_steps": 200, "eval_episodes": 1, "hidden_sizes": [32, 32],
             "monitor_every_updates": 100, "probe_every_updates": 0}


@pytest.mark.parametrize("sequence, message", [
    ({"tasks": ["dmc:walker-run", "dmc:cheetah-run"], "segment_steps": 10000},
     "the spaces of 'dmc:cheetah-run' (observation (17,)"),
    ({"tasks": ["gym:Pendulum-v1", "gym:MountainCarContinuous-v0"], "segment_steps": 10000},
     "the spaces of 'gym:MountainCarContinuous-v0'"),
    ({**PENDULUM4, "segment_steps": 200}, "segment_steps=200 is not longer than learning_starts=200"),
    ({**PENDULUM4, "transform": "mirror"}, "unknown transform 'mirror'; valid: none, permute_observations"),
    ({**PENDULUM4, "transform": "permute_observations", "transform_options": {"sed": 1}},
     "unknown option 'sed' of transform 'permute_observations'; valid: seed"),
    ({**PENDULUM4, "transform": "dynamics", "transform_options": {"values": [{"gravity": 5.0}]}},
     "'gym:Pendulum-v1' has no attribute 'gravity'; valid:"),
    ({**PENDULUM4, "segment_steps": 500}, "segment_steps=500 is not a multiple of eval_every_steps=200"),
    ({**PENDULUM4, "segment_steps": 100}, "not longer than learning_starts"),
    ({**PENDULUM4, "tasks": ["gym:Pendulum-v1", "sl:digits-random-labels"]}, "cannot be a segment"),
    ({**PENDULUM4, "colour": 1}, "unknown key 'colour'"),
])
def test_bad_sequences_are_refused_before_training_in_one_line(sequence, message):
    with pytest.raises(SpecError) as error:
        build_spec("sac", "mlp", "none", "continual:mine", 0, 1600, {**SAC_SMALL, "sequence": sequence})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_budget_unknown_sequence_and_algorithm_are_refused():
    with pytest.raises(SpecError, match=r"steps=1000 is not a whole number of segments .* valid: 400, 800, 1200, 1600"):
        build_spec("sac", "mlp", "none", "continual:mine", 0, 1000, {**SAC_SMALL, "sequence": PENDULUM4})
    with pytest.raises(SpecError, match="unknown continual sequence 'nope'; valid: .*walker"):
        build_spec("sac", "mlp", "none", "continual:nope", 0, 1000, SAC_SMALL)
    with pytest.raises(SpecError, match="algorithm 'dqn' needs a discrete-action task"):
        build_spec("dqn", "mlp", "none", "continual:walker", 0, 6_000_000)


def test_named_sequences_resolve_with_matching_spaces_and_an_override_changes_the_run_id():
    suites = load_suites()
    for suite in suites.values():
        for name, definition in suite.sequences.items():
            Sequence.from_dict(definition)
            assert all(task in suite.tasks for task in definition["tasks"]), name
    walker = build_spec("sac", "mlp", "none", "continual:walker", 0, 6_000_000)
    assert walker.hyperparams["sequence"]["tasks"][3] == "dmc:walker-stand"
    shorter = build_spec("sac", "mlp", "none", "continual:walker", 0, 60_000, {"sequence": {"segment_steps": 10_000}})
    assert shorter.hyperparams["sequence"]["tasks"] == walker.hyperparams["sequence"]["tasks"]
    assert shorter.run_id != build_spec("sac", "mlp", "none", "continual:walker", 0, 60_000,
                                        {"sequence": {"segment_steps": 20_000}}).run_id


def test_minatar_games_are_padded_to_one_channel_count():
    env = ContinualEnv("m", Sequence.from_dict({"tasks": ["minatar:breakout", "minatar:seaquest"],
                                                "segment_steps": 10000}))
    channels = {task: int(np.prod(make_env(task).observation_space.shape)) // 100 for task in env.envs}
    assert env.observation_space.shape == (100 * max(channels.values()),) and channels["minatar:breakout"] < 10
    obs, _ = env.reset(seed=0)
    raw, _ = env.envs["minatar:breakout"].reset(seed=0)
    grid = obs.reshape(100, -1)
    np.testing.assert_array_equal(grid[:, :channels["minatar:breakout"]].ravel(), raw)
    assert not grid[:, channels["minatar:breakout"]:].any()


def test_switch_happens_at_the_first_episode_boundary_after_each_segment():
    """CartPole's episodes end at random lengths: the segment changes at the first reset at
    or after (k + 1) * segment_steps steps, never before, and the eval env follows it."""
    sequence = {"tasks": ["gym:CartPole-v1"] * 4, "segment_steps": 600, "transform": "reverse_actions"}
    spec = build_spec("dqn", "mlp", "none", "continual:mine", 0, 2400,
                      {"sequence": sequence, "learning_starts": 100, "eval_every_steps": 600})
    env, eval_env = make_task_envs(spec.task, spec.hyperparams)
    rng = np.random.default_rng(0)
    switches, steps, episode = {}, 0, 0
    env.reset(seed=0)
    while steps < 2400:
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        steps += 1
        if terminated or truncated:
            before = env.segment
            episode += 1
            env.reset(seed=episode)
            if env.segment != before:
                switches[env.segment] = steps
            eval_env.reset(seed=episode)
            assert eval_env.segment == env.segment and eval_env.reversed == (env.segment % 2 == 1)
    assert sorted(switches) == [1, 2, 3]
    for k, at in switches.items():
        assert k * 600 <= at < k * 600 + 500  # within one episode (CartPole's limit: 500 steps)
    assert any(at > k * 600 for k, at in switches.items())  # an episode did cross a nominal end
    # reverse_actions plays action 1 - a on odd segments
    assert env.segment == 3 and env.reversed


def test_permutation_and_dynamics_are_fixed_by_the_definition():
    permuted = Sequence.from_dict({**PENDULUM4, "transform": "permute_observations", "transform_options": {"seed": 3}})
    first, again = ContinualEnv("p", permuted), ContinualEnv("p", permuted)
    for k in (2, 1, 3):  # entered in any order, a segment is the same task
        first.enter(k)
        again.load_state_dict({"steps": 0, "segment": k})
        np.testing.assert_array_equal(first.permutation, again.permutation)
    for k in range(1, 4):  # Pendulum has 3 numbers: 1 permutation in 6 would be the identity
        assert (ContinualEnv("p", permuted, only_segment=k).permutation != np.arange(3)).any()
    assert ContinualEnv("p", permuted).permutation is None  # segment 0 is the task itself
    dynamics = Sequence.from_dict({**PENDULUM4, "transform": "dynamics",
                                   "transform_options": {"values": [{"g": 10.0}, {"g": 15.0, "m": 2.0}, {"g": 5.0}]}})
    env = ContinualEnv("d", dynamics)
    env.enter(1)
    assert (env.env.unwrapped.g, env.env.unwrapped.m) == (15.0, 2.0)
    env.enter(2)  # m goes back to its default: a segment never inherits the one before
    assert (env.env.unwrapped.g, env.env.unwrapped.m) == (5.0, 1.0)
    assert [dynamics.reference_task("d", k) for k in range(4)] == ["continual:d/0", "continual:d/1", "continual:d/2",
                                                                   "continual:d/0"]


def test_task_id_appends_a_one_hot_of_the_task_identity():
    sequence = Sequence.from_dict({**PENDULUM4, "transform": "reverse_actions", "task_id": True})
    env = ContinualEnv("r", sequence)
    assert env.observation_space.shape == (3 + 2,)
    for k, expected in enumerate(([1, 0], [0, 1], [1, 0], [0, 1])):
        env.enter(k)
        obs, _ = env.reset(seed=0)
        np.testing.assert_array_equal(obs[-2:], expected)
    assert sequence.reference_task("r", 2) == "continual:r/0"  # the observation differs from Pendulum's


def trained_config(tmp_path):
    return {"name": "continual-test", "algos": ["sac"], "archs": ["mlp"], "methods": ["none", "layer_norm"],
            "suites": ["continual_classic"], "tasks": {"continual_classic": ["continual:mine"]}, "seeds": [0, 1],
            "steps": {"continual_classic": 1200},
            "sequences": {"continual_classic": {"mine": {**PENDULUM4, "transform": "reverse_actions"}}},
            "overrides": {"sac": SAC_SMALL}}


def test_fresh_agent_references_are_planned_once_per_segment_task_and_seed(tmp_path):
    runs, _ = expand(trained_config(tmp_path))
    continual = [run for run in runs if not run.reference]
    references = [run for run in runs if run.reference]
    # 3 segments trained (1200 / 400): plain Pendulum, reversed, plain again -> 2 tasks x 2 seeds
    assert len(continual) == 4 and len(references) == 4
    assert sorted({run.spec.task for run in references}) == ["continual:mine/1", "gym:Pendulum-v1"]
    assert all(run.spec.method == "none" and run.spec.steps == 400 for run in references)
    for run in continual:
        ids = run.references
        assert len(ids) == 3 and ids[0] == ids[2] != ids[1]
        by_id = {ref.spec.run_id: ref.spec for ref in references}
        assert all(by_id[i].seed == run.spec.seed for i in ids)
        assert by_id[ids[0]].hyperparams["hidden_sizes"] == run.spec.hyperparams["hidden_sizes"]
    ids = [run.spec.run_id for run in runs]
    assert len(ids) == len(set(ids))
    # the references train as ordinary jobs, one per cell: none and layer_norm share them
    jobs = train_jobs(runs)
    assert len(jobs) == 2 + 2 and sum(len(job.runs) for job in jobs) == 8


@pytest.mark.slow
def test_plasticity_ratio_row_recomputed_from_the_records(tmp_path):
    config = trained_config(tmp_path)
    config["methods"] = ["none"]
    # the continual claims read the aggregate's segment table and the runs' monitor rows
    config["claims"] = [
        {"claim": "ratio below 1", "source": "s", "statistic": "level", "value": "mean", "metric": "plasticity_ratio",
         "group": {"method": "none", "task": "continual:mine"}, "expect": {"below": 1}},
        {"claim": "dormant grows", "source": "s", "statistic": "change", "metric": "dormant_ratio@0.1",
         "network": "critic", "segments": "all", "group": {"method": "none", "task": "continual:mine"},
         "expect": {"above": 0}}]
    runs, dropped = expand(config)
    runs_dir = tmp_path / "runs"
    for run in runs:
        train(run.spec, runs_dir / run.spec.run_id, progress=False, tensorboard=False)
    write_matrix(tmp_path / "matrix.json", config, runs, dropped)
    matrix = json.loads((tmp_path / "matrix.json").read_text())
    # Runs this short learn nothing, so the suite's normalisation would leave every reference
    # below MIN_REFERENCE_SCORE; an affine one that keeps them above it checks the arithmetic.
    def normalise(suite, task, returns):
        assert (suite, task) == ("continual_classic", "gym:Pendulum-v1")
        return (np.asarray(returns, dtype=float) + 2000.0) / 2000.0

    result = aggregate(matrix, runs_dir, tmp_path / "aggregate", reps=50, normaliser=normalise)
    segments = pd.read_csv(tmp_path / "aggregate" / CONTINUAL_SEGMENTS_FILE)
    assert len(segments) == 2 * 3 and sorted(set(segments["segment"])) == [0, 1, 2]

    row = segments[(segments["seed"] == 1) & (segments["segment"] == 1)].iloc[0]
    run = next(r for r in runs if not r.reference and r.spec.seed == 1)
    evals = RunRecord(runs_dir / run.spec.run_id).eval()
    end = evals[evals["step"] == 800].iloc[0]
    assert end["segment"] == 1 and end["segment_task"] == "continual:mine/1"
    reference = RunRecord(runs_dir / run.references[1]).eval()
    score = (end["return"] + 2000.0) / 2000.0
    reference_score = (reference.sort_values("step")["return"].iloc[-1] + 2000.0) / 2000.0
    assert reference.sort_values("step")["step"].iloc[-1] == 400 and reference_score > MIN_REFERENCE_SCORE
    assert row["score"] == pytest.approx(score) and row["reference_score"] == pytest.approx(reference_score)
    assert row["plasticity_ratio"] == pytest.approx(score / reference_score)
    assert row["reference_run_id"] == run.references[1]
    # the claims, by hand from the segment table and the monitor rows at each segment's end
    ratio, dormant = result.claims.to_dict("records")
    late = segments[segments["segment"] >= 1].groupby("seed")["plasticity_ratio"].mean()
    assert ratio["measured"] == pytest.approx(late.mean()) and ratio["runs"] == 2
    changes = []
    for continual_run in (r for r in runs if not r.reference):
        metrics = RunRecord(runs_dir / continual_run.spec.run_id).metrics()
        rows = metrics[(metrics["metric"] == "dormant_ratio@0.1") & (metrics["network"] == "critic")
                       & (metrics["layer"] == "all")].sort_values("step")
        first, last = (rows[(rows["step"] > start) & (rows["step"] <= start + 400)]["value"].iloc[-1]
                       for start in (0, 800))
        changes.append(last - first)
    assert dormant["measured"] == pytest.approx(np.mean(changes))
    # the leaderboard scores segments 1 and 2 as tasks; segment 0 is not ranked
    tasks = set(result.scores.loc[result.scores["suite"] == "continual_classic", "task"])
    assert tasks == {segment_label("continual:mine", 1), segment_label("continual:mine", 2)}
    assert "continual" in result.summary and result.summary["continual"]["segments_file"] == CONTINUAL_SEGMENTS_FILE
    # the two continual figures, one each for the scope, with the segment boundaries at 400 and 800
    assert segment_lengths(result) == {("continual_classic", "sac", "mlp"): 400}
    drawn = plot_all(result, tmp_path / "figures", figures=["plasticity_ratio", "sequence_returns"], formats=("png",),
                     look=aggregate_look(result))
    assert sorted(d.kind for d in drawn) == ["plasticity_ratio", "sequence_returns"]
    assert all(path.exists() for d in drawn for path in d.paths)


# ----------------------------------------------------------------------------- resumption

RESUME_ARGS = ["--algo", "sac", "--method", "redo", "--task", "continual:gravity", "--steps", "1600",
               "--set", "sequence=" + json.dumps({**PENDULUM4, "transform": "dynamics",
                                                  "transform_options": {"values": [{"g": 10.0}, {"g": 14.0}, {"g": 6.0},
                                                                                   {"g": 12.0}]}}),
               "--set", "learning_starts=200", "--set", "checkpoint_every_steps=200", "--set", "eval_every_steps=200",
               "--set", "eval_episodes=1", "--set", "monitor_every_updates=100", "--set", "probe_every_updates=0",
               "--set", "redo.period=150", "--set", "hidden_sizes=[32, 32]"]


def train_command(out):
    return [sys.executable, "-m", "plasticity_bench", "train", *RESUME_ARGS, "--out", str(out), "--no-progress",
            "--device", "cpu", "--no-tensorboard"]


@pytest.mark.slow
def test_sigkill_inside_the_third_segment_then_resume_equals_uninterrupted(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(train_command(reference), check=True, capture_output=True, timeout=900)

    process = subprocess.Popen(train_command(resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    progress = resumed / "progress.json"
    while not (progress.exists() and json.loads(progress.read_text() or "{}").get("step", 0) >= 1100):
        assert process.poll() is None, "run finished before it reached the third segment"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    state = load_checkpoint(resumed / "checkpoint.pt")
    # killed inside segment 2 (steps 800-1200) after its checkpoint at step 1000 (or 1200, before the switch)
    assert state["continual_env"]["segment"] == 2 and 1000 <= state["continual_env"]["steps"] <= 1200
    assert RunRecord(resumed).manifest()["status"] == "running"

    subprocess.run(train_command(resumed), check=True, capture_output=True, timeout=900)
    manifest = RunRecord(resumed).manifest()
    assert manifest["status"] == "completed" and manifest["resumes"] >= 1
    pd.testing.assert_frame_equal(RunRecord(resumed).eval(), RunRecord(reference).eval())
    pd.testing.assert_frame_equal(RunRecord(resumed).metrics(), RunRecord(reference).metrics())
    assert list(RunRecord(reference).eval()["segment"]) == [0, 0, 1, 1, 2, 2, 3, 3]
    final = [load_checkpoint(run / "checkpoint.pt") for run in (reference, resumed)]
    assert final[0]["continual_env"] == final[1]["continual_env"] == {"steps": 1600, "segment": 3}


def test_segment_table_by_hand(tmp_path):
    """End-of-segment rows and ratios from hand-made records: the evaluation at each nominal
    end, the reference's last evaluation, and no ratio where the reference learned nothing."""
    from plasticity_bench.analysis.continual import segment_table
    from plasticity_bench.analysis.runs import ScorableRun
    from plasticity_bench.analysis.vocabulary import AnalysisError
    from plasticity_bench.results import write_json

    keys = {"run_id": "c", "suite": "s", "algo": "sac", "arch": "mlp", "method": "none", "task": "continual:x", "seed": 0}
    (tmp_path / "c").mkdir()
    write_json(tmp_path / "c" / "manifest.json", {"spec": {"hyperparams": {"sequence": {
        "tasks": ["gym:A", "gym:B"], "segment_steps": 100}}}})
    evals = pd.DataFrame({"step": [50, 100, 150, 200], "return": [1.0, 4.0, 2.0, 6.0], "episodes": 1,
                          "segment": [0, 0, 1, 1], "segment_task": ["gym:A", "gym:A", "gym:B", "gym:B"]})
    run = ScorableRun(keys, 200, evals)
    references = [ScorableRun({**keys, "run_id": "ra"}, 100, pd.DataFrame({"step": [50, 100], "return": [3.0, 8.0]})),
                  ScorableRun({**keys, "run_id": "rb"}, 100, pd.DataFrame({"step": [50, 100], "return": [5.0, 0.1]}))]
    scale = {"gym:A": 10.0, "gym:B": 2.0}

    def normalise(suite, task, returns):
        return np.asarray(returns, dtype=float) / scale[task]

    table = segment_table([run], references, tmp_path, normalise, {"c": {"references": ["ra", "rb"]}})
    assert list(table["step"]) == [100, 200] and list(table["return"]) == [4.0, 6.0]
    assert list(table["score"]) == [0.4, 3.0] and table["plasticity_ratio"].iloc[0] == pytest.approx(0.4 / 0.8)
    assert np.isnan(table["plasticity_ratio"].iloc[1]) and "did not learn" in table["ratio_note"].iloc[1]
    # an end of segment that was not evaluated inside its segment is an error, not a silent score
    with pytest.raises(AnalysisError, match="no evaluation of segment 1 at its end, step 200"):
        segment_table([ScorableRun(keys, 200, evals.assign(segment=[0, 0, 1, 2]))], references, tmp_path, normalise,
                      {"c": {"references": ["ra", "rb"]}})
