"""Where results come from: the code's git state and the installed package versions."""

from __future__ import annotations

import hashlib
import subprocess
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import plasticity_bench


def _git(repo: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout


def code_version(exclude: Path | None = None) -> dict:
    """``{"git_sha", "git_dirty", "git_diff_sha256"}`` of the repository holding this package.

    ``exclude`` (e.g. the reports root) is left out of the dirty check. Outside a git
    repository (an installed wheel) every field is None.
    """
    repo = Path(plasticity_bench.__file__).resolve().parent
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top is None:
        return {"git_sha": None, "git_dirty": None, "git_diff_sha256": None}
    top_path = Path(top.strip())
    sha = _git(top_path, "rev-parse", "--verify", "-q", "HEAD")
    pathspec = ["--", "."]
    if exclude is not None:
        try:
            relative = Path(exclude).resolve().relative_to(top_path)
            pathspec.append(f":(exclude){relative.as_posix()}")
        except ValueError:
            pass
    status = _git(top_path, "status", "--porcelain", *pathspec) or ""
    diff = (_git(top_path, "diff", "HEAD", "--binary", *pathspec) or "") if sha else ""
    return {
        "git_sha": sha.strip() if sha else None,
        "git_dirty": bool(status.strip()),
        "git_diff_sha256": hashlib.sha256((diff + status).encode()).hexdigest() if status.strip() else None,
    }


def package_versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    versions = {}
    for package in packages:
        try:
            versions[package] = installed_version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def default_version(config_hash: str, reports_root: Path | None = None) -> str:
    """The default name of a report: ``v<package>-<config hash[:8]>-<git sha[:7]>[-dirty]``;
    other code or another config is another name. ``reports_root`` is left out of the dirty
    check (a report is itself a change to the tree).

    Here, not with the report: the workflow names the report while it is parsed (every
    SLURM job parses it again) and must not import plotting or rliable to do so.
    """
    version = f"v{plasticity_bench.__version__}-{str(config_hash)[:8]}"
    code = code_version(exclude=reports_root)
    if code["git_sha"]:
        version += f"-{code['git_sha'][:7]}" + ("-dirty" if code["git_dirty"] else "")
    return version
