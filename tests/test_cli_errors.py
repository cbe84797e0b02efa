"""Bad input: one clear line naming the bad value and the valid choices, exit 2, nothing written."""

import pytest

BASE = {"--algo": "sac", "--arch": "mlp", "--method": "none", "--task": "gym:Pendulum-v1", "--steps": "100"}


def train_args(out, **changes):
    options = {**BASE, **{f"--{k}": v for k, v in changes.items()}}
    return ["train", *[item for pair in options.items() for item in pair], "--out", str(out)]


@pytest.mark.parametrize(
    "changes, must_mention",
    [
        ({"algo": "ppo"}, ["'ppo'", "sac", "dqn"]),
        ({"arch": "transformer"}, ["'transformer'", "mlp"]),
        ({"method": "magic"}, ["'magic'", "regrama", "redo", "layer_norm"]),
        ({"method": "redo+magic"}, ["'magic'", "regrama"]),
        ({"method": "redo+regrama"}, ["redo", "regrama", "reset schedule"]),
        ({"task": "atari:Pong"}, ["'atari'", "dmc", "mujoco"]),
        ({"task": "dmc:cheetah-fly"}, ["cheetah-fly", "cheetah-run"]),
        ({"algo": "dqn"}, ["dqn", "continuous"]),
        ({"task": "gym:CartPole-v1"}, ["sac", "discrete"]),
        ({"steps": "0"}, ["steps", "0"]),
        ({"steps": "-5"}, ["steps", "-5"]),
    ],
)
def test_bad_choice_is_one_line_before_anything_is_written(cli, tmp_path, changes, must_mention):
    out = tmp_path / "run"
    result = cli(*train_args(out, **changes))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in must_mention:
        assert text in lines[0], (text, lines[0])
    assert not out.exists()


@pytest.mark.parametrize(
    "override, must_mention",
    [
        ("learning_rat=0.1", ["learning_rat", "q_lr", "policy_lr"]),
        ("gamma=high", ["gamma", "high", "float"]),
        ("redo.tau=0.1", ["redo", "does not use"]),
        ("activation=Swish", ["Swish", "ReLU", "SiLU"]),
        ("batch_size=0", ["batch_size", "0"]),
        ("novalue", ["novalue", "key=value"]),
    ],
)
def test_bad_override_is_one_line(cli, tmp_path, override, must_mention):
    out = tmp_path / "run"
    result = cli(*train_args(out), "--set", override)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for text in must_mention:
        assert text in line, (text, line)
    assert not out.exists()


def test_bad_method_option_names_valid_options(cli, tmp_path):
    result = cli(*train_args(tmp_path / "run", method="regrama"), "--set", "regrama.tao=0.1")
    assert result.returncode == 2
    assert "regrama.tao" in result.stderr and "regrama.tau" in result.stderr


def test_resolved_spec_records_overrides(cli, tmp_path):
    import json

    result = cli(*train_args(tmp_path / "run", method="regrama"), "--set", "q_lr=0.0005", "--set", "regrama.tau=0.05",
                 "--set", "hidden_sizes=[64, 64]", "--print-spec", check=True)
    spec = json.loads(result.stdout)
    assert spec["hyperparams"]["q_lr"] == 0.0005
    assert spec["hyperparams"]["hidden_sizes"] == [64, 64]
    assert spec["method_options"]["regrama"]["tau"] == 0.05
    assert spec["hyperparams"]["policy_lr"] == 3e-4  # untouched defaults are resolved too


def test_list_prints_every_component(cli):
    out = cli("list", check=True).stdout
    for name in ["sac", "dqn", "mlp", "none", "layer_norm", "redo", "regrama", "mujoco", "dmc", "gym", "minatar",
                 "grama_inactive_ratio", "dormant_ratio", "active_fraction"]:
        assert name in out, name
