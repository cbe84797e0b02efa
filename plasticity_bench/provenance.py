"""Where results come from: the code's git state, a fingerprint of the package's files, the
source of the user modules a run loads, and the installed package versions."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import plasticity_bench


PACKAGE_ROOT = Path(plasticity_bench.__file__).resolve().parent


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
    # Changes to tracked files anywhere, and new files inside the package (code it may
    # import). A user's own untracked files (a method module, a config) are not the package's
    # code: runs record a user module by its hash and a report its config by the config hash.
    status = _git(top_path, "status", "--porcelain", "--untracked-files=no", *pathspec) or ""
    package = PACKAGE_ROOT.relative_to(top_path).as_posix() if PACKAGE_ROOT.is_relative_to(top_path) else None
    if package is not None:
        status += _git(top_path, "status", "--porcelain", "--untracked-files=all", "--", package) or ""
        status = "".join(sorted(set(status.splitlines(keepends=True))))
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


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """sha256 over the package's own source files (path and content of every .py and .yaml
    under plasticity_bench/): the code a process trains with, with or without git. Computed
    once per process, as the code it imported does not change while it runs."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def user_module_hashes(methods: Iterable[str]) -> dict[str, str]:
    """Module → sha256 of its source, for every user method (``"module:Class"``) in
    ``methods``; "unreadable" where the module's source cannot be found. Resolved as the
    registry resolves the method (the working directory on the path, like ``python -m``)."""
    hashes = {}
    for name in methods:
        if ":" not in name:
            continue
        module = name.partition(":")[0]
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        origin = getattr(found, "origin", None)
        hashes[module] = file_sha256(Path(origin)) if origin and Path(origin).is_file() else "unreadable"
    return hashes


def run_code(methods: Iterable[str]) -> dict:
    """The ``code`` a run manifest records: the package fingerprint, the git state it came
    from and the user modules' source hashes."""
    git = code_version()
    return {"package_sha256": package_fingerprint(), "git_sha": git["git_sha"], "git_dirty": git["git_dirty"],
            "git_diff_sha256": git["git_diff_sha256"], "user_modules": user_module_hashes(methods)}


def code_groups(manifests: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """Package fingerprint → the run ids (of ``manifests``, run id → manifest) it trained;
    "unrecorded" for runs whose manifest predates the fingerprint."""
    groups: dict[str, list[str]] = {}
    for run_id, manifest in manifests.items():
        code = manifest.get("code") if isinstance(manifest, Mapping) else None
        fingerprint = code.get("package_sha256") if isinstance(code, Mapping) else None
        groups.setdefault(str(fingerprint or "unrecorded"), []).append(run_id)
    return {key: sorted(ids) for key, ids in sorted(groups.items())}
