"""Workflow robustness: a published report is never a rule's output, whatever reports_dir
says (reports_dir under results/ made the rule's output the published folder itself:
`cp: cannot copy a directory into itself`, then Snakemake deleted it)."""

from __future__ import annotations

import re

import pytest
import yaml

from test_pipeline import SMOKE, snakemake


@pytest.mark.parametrize("reports_dir", ["results/reports", "results", "reports"])
def test_the_published_report_is_never_the_report_rules_output(tmp_path, reports_dir):
    config = yaml.safe_load(SMOKE.read_text())
    config["reports_dir"] = reports_dir
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    copy = re.search(r"&& cp -r (\S+) (\S+)", text)
    assert copy, text[-3000:]
    published, output = copy.group(1), copy.group(2)
    assert published.startswith(f"{reports_dir}/v")
    # neither is inside the other: Snakemake may delete the output, never the published report
    assert output != published and not output.startswith(published + "/") and not published.startswith(output + "/")


def test_a_report_asked_for_before_training_says_what_to_run(tmp_path):
    result = snakemake(tmp_path, "--report", str(tmp_path / "report.html"), "--configfile", str(SMOKE))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "error: nothing to report yet" in output and "snakemake --cores all" in output, output[-2000:]
    assert not (tmp_path / "report.html").exists()
