"""metric_names.py, the torch-free list of what runs log, agrees with what the agents and the
monitor actually log (configs are checked against it before training)."""

import subprocess
import sys

import torch

from plasticity_bench.metric_names import METRICS, ROLES
from plasticity_bench.spec import build_spec
from plasticity_bench.training.entry import make_trainer


def test_roles_are_the_agents_roles(tmp_path):
    for algo, task in (("sac", "gym:Pendulum-v1"), ("td3", "gym:Pendulum-v1"), ("dqn", "gym:CartPole-v1"),
                       ("sl", "sl:digits-random-labels")):
        spec = build_spec(algo, "mlp", "none", task, seed=0, steps=1000, overrides=["hidden_sizes=[8]"])
        trainer = make_trainer(spec, tmp_path / algo, threads=1, device=torch.device("cpu"), progress=False)
        assert tuple(trainer.agent.roles) == ROLES[algo], algo


def test_metric_names_load_without_torch():
    code = "import sys, plasticity_bench.metric_names as m; print(len(m.METRICS), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(METRICS)), "False"]
