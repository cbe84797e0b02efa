"""Which code trained a run: a user method's source enters the run id, the manifest records
the package's code fingerprint, a report of runs trained by different code says so (an
error with --strict-code), and a user's untracked file does not make a report dirty."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from plasticity_bench import provenance, results
from plasticity_bench.analysis.report import ReportError, build_report
from plasticity_bench.spec import build_spec
from plasticity_bench.training import train

from test_report import aggregated  # noqa: F401  (fixture)

METHOD_SOURCE = '''
import torch
from plasticity_bench.methods.base import Method


class Noise(Method):
    name = "noise"

    def __init__(self, sigma: float = 0.01):
        self.sigma = sigma

    def after_update(self, roles, update_step, sample_batch):
        with torch.no_grad():
            for role in roles.values():
                for param in role.network.parameters():
                    param.add_(torch.randn_like(param) * self.sigma)
        return {}
'''
OVERRIDES = ["monitor_every_updates=50", "hidden_sizes=[16,16]", "eval_episodes=1", "learning_starts=100",
             "eval_every_steps=200", "replay_ratio=1"]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"user_noise_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "code" / f"{name}.py"
    path.parent.mkdir()
    path.write_text(METHOD_SOURCE)
    monkeypatch.syspath_prepend(str(path.parent))
    return name, path


def test_edited_user_method_code_is_another_run(user_module):
    name, path = user_module
    before = build_spec("dqn", "mlp", f"{name}:Noise", "gym:CartPole-v1", 0, 200, OVERRIDES).run_id
    path.write_text(METHOD_SOURCE.replace("* self.sigma", "* self.sigma * 100"))
    after = build_spec("dqn", "mlp", f"{name}:Noise", "gym:CartPole-v1", 0, 200, OVERRIDES).run_id
    assert before != after
    # built-in methods keep their run ids: no user code, nothing added
    assert "user_code" not in json.dumps(build_spec("dqn", "mlp", "redo", "gym:CartPole-v1", 0, 200, OVERRIDES).to_dict())


def test_the_manifest_records_the_code_that_trained_the_run(tmp_path, user_module):
    name, path = user_module
    spec = build_spec("dqn", "mlp", f"{name}:Noise", "gym:CartPole-v1", 0, 200, OVERRIDES)
    manifest = train(spec, tmp_path / spec.run_id, progress=False, allow_short_budget=True, tensorboard=False)
    code = manifest["code"]
    assert code["package_sha256"] == provenance.package_fingerprint() and len(code["package_sha256"]) == 64
    assert code["user_modules"] == {name: provenance.file_sha256(path)}
    assert "git_sha" in code and "git_dirty" in code


def test_a_report_of_runs_trained_by_different_code_says_so(aggregated, tmp_path):  # noqa: F811
    aggregate_dir, matrix, runs = aggregated
    copied = tmp_path / "runs"
    subprocess.run(["cp", "-r", str(runs), str(copied)], check=True)
    folders = sorted(p for p in copied.iterdir() if p.is_dir())
    for index, folder in enumerate(folders):
        manifest = json.loads((folder / results.MANIFEST).read_text())
        manifest["code"] = {"package_sha256": "a" * 64 if index < 2 else "b" * 64, "git_sha": None}
        (folder / results.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ReportError, match="different package code"):
        build_report(aggregate_dir, tmp_path / "strict", matrix, runs_dir=copied, strict_code=True)
    target = build_report(aggregate_dir, tmp_path / "reports", matrix, runs_dir=copied)
    page = (target / "leaderboard.md").read_text()
    assert "trained by different package code" in page
    assert folders[0].name in page and folders[1].name in page
    manifest = json.loads((target / "manifest.json").read_text())
    assert sorted(manifest["code"]) == ["a" * 64, "b" * 64]
    assert len(manifest["code"]["a" * 64]) == 2


def test_an_untracked_user_file_does_not_change_the_code_version():
    root = Path(provenance.__file__).resolve().parents[1]
    before = provenance.code_version()
    user_file = root / f"my_method_{uuid.uuid4().hex[:8]}.py"
    user_file.write_text("# a user's own method, recorded by its hash in the runs that load it\n")
    try:
        after = provenance.code_version()
    finally:
        user_file.unlink()
    assert after == before
