import subprocess
import sys

import pytest


def run_cli(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``plasticity-bench ARGS`` in a subprocess, as a user would."""
    result = subprocess.run([sys.executable, "-m", "plasticity_bench", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"plasticity-bench {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def cli():
    return run_cli
