"""The README's "Add your method to the leaderboard" tutorial, run as written."""

import re

import pandas as pd
import pytest
import yaml

from test_pipeline import ROOT, SMOKE, snakemake

README = ROOT / "README.md"


def tutorial_blocks() -> tuple[str, dict]:
    text = README.read_text()
    section = text.split("## Add your method to the leaderboard", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    config = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    return code, config


@pytest.mark.slow
def test_readme_method_joins_the_leaderboard(tmp_path):
    code, tutorial_config = tutorial_blocks()
    (tmp_path / "my_methods.py").write_text(code)
    config = yaml.safe_load(SMOKE.read_text())
    config["algos"] = ["sac", "dqn"]
    config.pop("experiments")  # the tutorial's methods on both algorithms are enough here
    config["methods"] = tutorial_config["methods"]
    config["method_options"] = {**config.get("method_options", {}), **tutorial_config["method_options"]}
    # Keys may name only what the config runs: drop the smoke config's other algorithms and methods.
    config["overrides"] = {k: v for k, v in config["overrides"].items() if k in ("all", *config["algos"])}
    config["method_options"] = {k: v for k, v in config["method_options"].items() if k in config["methods"]}
    config["seeds"] = [0, 1]
    config_path = tmp_path / "my_config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    result = snakemake(tmp_path, "--cores", "2", "--configfile", str(config_path))
    assert result.returncode == 0, result.stderr[-4000:]
    report = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    board = pd.read_csv(report / "leaderboard.csv")
    assert "my_methods:WeightNoise" in set(board["method"])
    for algo in ("sac", "dqn"):
        assert ((board["method"] == "my_methods:WeightNoise") & (board["algo"] == algo)).any()
    # The method's option reached the runs, and its statistic was logged.
    manifests = list((tmp_path / "results" / "runs").glob("*my_methods_WeightNoise*/manifest.json"))
    assert len(manifests) == 4
    spec = yaml.safe_load(manifests[0].read_text())["spec"]
    assert spec["method_options"]["my_methods:WeightNoise"] == {"sigma": 0.005, "period": 100}
    metrics = pd.read_parquet(manifests[0].parent / "metrics.parquet")
    assert (metrics["metric"] == "perturbed").any()
    # It appears in the figures: the interval-estimate figure was drawn with it.
    figures = list((report / "figures").glob("interval_estimates_*.png"))
    assert figures and all(f.stat().st_size > 0 for f in figures)
    intervals = pd.read_csv(tmp_path / "results" / "aggregate" / next((tmp_path / "results" / "aggregate").iterdir()).name
                            / "interval_estimates.csv")
    assert "my_methods:WeightNoise" in set(intervals["method"])


def test_unknown_user_method_is_a_clear_error(cli, tmp_path):
    result = cli("train", "--algo", "dqn", "--task", "gym:CartPole-v1", "--steps", "10",
                 "--method", "no_such_module:Thing", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "no_such_module" in result.stderr and "Traceback" not in result.stderr
