"""Clear one-line errors, before anything is written, instead of tracebacks or silence."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from plasticity_bench.matrix import parse_method_entry
from plasticity_bench.spec import SpecError, build_spec

from test_pipeline import SMOKE, snakemake

TRAIN = ["train", "--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "2000"]


def one_line_error(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.mark.parametrize("seeds", ["²", "0,--5", "1,,2", "٣"])
def test_malformed_seeds_are_one_line(cli, seeds, tmp_path):
    one_line_error(cli(*TRAIN, "--seeds", seeds, "--runs-dir", str(tmp_path)), f"--seeds {seeds!r}")


def test_a_tuple_written_in_parentheses_is_shown_the_list_form(cli, tmp_path):
    one_line_error(cli(*TRAIN, "--set", "hidden_sizes=(64,64)", "--out", str(tmp_path / "run")),
                   "hidden_sizes='(64,64)'", "hidden_sizes=[64,64]")


def test_method_options_in_brackets_on_the_command_line_point_to_set(cli, tmp_path):
    one_line_error(cli(*TRAIN, "--method", "redo[tau=0.1,period=500]", "--out", str(tmp_path / "run")),
                   "--method redo --set redo.tau=0.1 --set redo.period=500")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "Infinity"])
def test_non_finite_option_values_are_refused(value):
    with pytest.raises(SpecError, match="not a finite number"):
        build_spec("dqn", "mlp", "regrama", "gym:CartPole-v1", 0, 2000, [f"regrama.tau={value}"])
    with pytest.raises(SpecError, match="not a finite number"):
        build_spec("dqn", "mlp", "none", "gym:CartPole-v1", 0, 2000, [f"learning_rate={value}"])


def test_a_repeated_option_key_in_an_entry_is_refused():
    with pytest.raises(SpecError, match="gives option 'tau' twice"):
        parse_method_entry("regrama[tau=0.1,tau=0.2]")


def test_track_without_a_wandb_key_is_refused_before_anything_is_written(tmp_path):
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "no-netrc"))  # no key anywhere
    result = subprocess.run([sys.executable, "-m", "plasticity_bench", *TRAIN, "--track", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, env=env)
    one_line_error(result, "--track", "wandb login", "WANDB_API_KEY")
    assert not out.exists()


def test_a_top_level_config_typo_names_the_key_and_suggests(tmp_path):
    config = yaml.safe_load(SMOKE.read_text())
    config["method"] = config.pop("methods")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "--configfile", str(path))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config key 'method' is not a setting; did you mean 'methods'?" in output
    assert len(output.splitlines()) < 15, output
