"""The wheel ships the benchmark suites, and an installed (non-editable) copy finds them."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE_FILES = sorted(path.name for path in (ROOT / "plasticity_bench" / "suites").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (setuptools writes build/ next to them)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "plasticity_bench", source / "plasticity_bench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # No build isolation: the venv's setuptools builds it, so the test needs no network.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(root / "dist")], check=True, capture_output=True, text=True, timeout=300)
    (built,) = (root / "dist").glob("plasticity_bench-*.whl")
    return built


def test_wheel_contains_every_suite_file(wheel):
    assert SUITE_FILES, "the repository has no suite files"
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(Path(name).name for name in names if name.startswith("plasticity_bench/suites/")) == SUITE_FILES


def test_installed_wheel_loads_its_suites_outside_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    code = ("import json\nimport plasticity_bench\n"
            "from plasticity_bench.environments.suites import load_suite, load_suites\n"
            "print(plasticity_bench.__file__)\n"
            "print(json.dumps(sorted(load_suites())))\n"
            "print(load_suite('classic_control').normalise('gym:CartPole-v1', 500.0))\n")
    # PYTHONPATH puts the installed copy before the venv's editable one; the folder it runs
    # in is not the repository, so nothing can be read from envs/ or the checkout.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    module_file, suites, cartpole_perfect = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(target)
    assert json.loads(suites) == sorted(Path(name).stem for name in SUITE_FILES)
    assert float(cartpole_perfect) == pytest.approx(1.0)


def test_wheel_installed_in_a_fresh_venv_runs_the_cli(wheel, tmp_path):
    """pip installs the wheel into a new venv, whose console script runs outside the
    repository. The dependencies come from this venv's site-packages through a path entry
    (read as a plain path: the editable install's finder there is not loaded), so the test
    needs no network and the package itself can only come from the wheel."""
    import site
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=300)
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    dependencies = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    Path(fresh_site, "dependencies.pth").write_text("\n".join(dict.fromkeys(dependencies)) + "\n")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "plasticity-bench"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    listing = run("list")
    assert listing.returncode == 0, listing.stderr
    assert "algorithms:" in listing.stdout and "regrama" in listing.stdout and "dmc" in listing.stdout
    where = subprocess.run([str(python), "-c", "import plasticity_bench; print(plasticity_bench.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(Path(fresh_site)), where.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("plasticity-bench ")
