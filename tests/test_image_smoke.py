"""The container image built and run for real (opt-in, as root): scripts/image_smoke.sh
builds the Dockerfile with buildah on a local Debian bookworm base and trains DQN and SAC
inside the image; the cpu variant (CPU torch) takes about 15 minutes, the cuda variant (the
default GPU image: torch's CUDA wheel and its nvidia-* runtime wheels, ~2.7 GB of downloads)
longer, and several GB of disk. PLASTICITY_BENCH_IMAGE_TEST=1 (or cpu) runs the cpu variant,
=cuda the cuda one, =cpu,cuda both (the cuda run then compares its returns with the cpu run's).
The variant's argument handling is tested without building."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "image_smoke.sh"
REQUESTED = {"1": {"cpu"}}.get(os.environ.get("PLASTICITY_BENCH_IMAGE_TEST", ""),
                                set(os.environ.get("PLASTICITY_BENCH_IMAGE_TEST", "").split(",")))


def smoke(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_unknown_variant_is_refused_before_anything_is_installed():
    result = smoke("gpu")
    assert result.returncode != 0
    assert result.stderr.strip() == "image_smoke: FAILED: unknown variant 'gpu'; choose cpu or cuda"
    from_env = smoke(IMAGE_SMOKE_VARIANT="rocm")
    assert "unknown variant 'rocm'; choose cpu or cuda" in from_env.stderr


def test_cuda_variant_refuses_the_cpu_wheel():
    result = smoke("cuda", TORCH_VARIANT="cpu")
    assert result.returncode != 0
    assert "TORCH_VARIANT=cpu is the cpu variant, not cuda" in result.stderr


@pytest.mark.parametrize("variant", ["cpu", "cuda"])  # cpu first: cuda compares with its returns
@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_image_builds_on_debian_and_trains_inside(variant):
    if variant not in REQUESTED:
        pytest.skip(f"builds the {variant} image with buildah (root, apt, GBs): "
                    f"set PLASTICITY_BENCH_IMAGE_TEST={variant} to run")
    result = subprocess.run(["bash", str(SCRIPT), variant], capture_output=True, text=True, timeout=5300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "image_smoke: OK", output[-5000:]
    tag = {"cpu": "smoke", "cuda": "smoke-cuda"}[variant]
    assert re.search(rf"image localhost/plasticity-bench:{tag}: size [\d.]+ [kMG]B, build time \d+ s", result.stdout)
    assert "inside the image: uid 10001, MUJOCO_GL=disable" in result.stdout
    if variant == "cpu":
        assert "image_smoke: build said: CUDA check skipped: TORCH_VARIANT=cpu" in result.stdout
        assert re.search(r"inside the image: torch [\d.]+\+cpu, torch.version.cuda None, ", result.stdout)
    else:
        assert re.search(r"image_smoke: build said: CUDA check passed: torch [\d.]+\+cu\d+ carries its CUDA [\d.]+ "
                         r"runtime; the base image localhost/debian-base has no CUDA", result.stdout), result.stdout
        assert re.search(r"inside the image: torch [\d.]+\+cu\d+, torch.version.cuda \d+\.\d+, "
                         r"torch.cuda.is_available\(\) (False|True)", result.stdout), result.stdout
        if not Path("/dev/nvidiactl").exists():
            assert "no GPU here: torch.cuda.is_available() False, nothing on stderr" in result.stdout
        if "cpu" in REQUESTED:
            assert "returns: the same in the cuda and the cpu image" in result.stdout, result.stdout
    # Both trainings completed with their evaluations; their final returns are printed.
    finals = re.findall(r"image_smoke: (\w+)-mlp-none-(\S+)-s0-\w+: completed, (\d+) updates, 2 evaluations, "
                        r"final return (-?[\d.]+)", result.stdout)
    assert [(algo, task) for algo, task, _, _ in finals] == [("dqn", "gym_CartPole_v1"),
                                                              ("sac", "dmc_cartpole_swingup")], result.stdout
    assert all(int(updates) > 0 for _, _, updates, _ in finals)
    assert "(owners: uid 10001 4242)" in result.stdout
