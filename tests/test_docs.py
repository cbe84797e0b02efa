"""The project's own documents: nothing cites a file the repository lacks, the README is short
and leads to the three jobs, and every link of the README and docs/ resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Notes kept outside the repository, which the product must never cite.
OUTSIDE_NOTES = ("PAPERS.md", "DESIGN.md")
#: A path into the repository written in a document, a docstring or a comment.
REPO_PATH = re.compile(r"(?<![\w./<>*-])((?:tests|bench|scripts|docs|workflow|plasticity_bench|profiles)/"
                       r"[\w./-]*\w\.(?:py|md|yaml|yml|sh|smk|rst|txt|json|toml))")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".smk", ".rst", ".txt", ".toml", ".cfg", ".html", ""}


def repository_files() -> list[Path]:
    """Tracked and new (not ignored) files, without the published report versions: those are
    records of their commit and never modified (a version of an older layout may cite what
    its commit had)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in sorted(set(listed))
            if not re.match(r"reports/v[^/]+/", name) and (ROOT / name).is_file()
            and (ROOT / name).suffix in TEXT_SUFFIXES]


def read(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        return ""


def test_no_file_cites_notes_kept_outside_the_repository():
    citing = {str(path.relative_to(ROOT)): note for path in repository_files() for note in OUTSIDE_NOTES
              if note in read(path) and path != Path(__file__).resolve()}  # this file names them to find them
    assert not citing, f"cite files the repository lacks (write it in docs/ instead): {citing}"


def test_every_repository_path_a_file_names_exists():
    missing = {}
    for path in repository_files():
        for found in REPO_PATH.findall(read(path)):
            if not (ROOT / found).exists():
                missing.setdefault(found, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"named but not in the repository: {missing}"


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("document", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs")
                                                           .glob("*.md"))])
def test_every_link_of_the_readme_and_docs_resolves(document):
    path = ROOT / document
    text = path.read_text()
    broken = []
    for target in MARKDOWN_LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file) if file else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(target)
    assert not broken, f"{document}: {broken}"


def test_the_readme_is_short_and_leads_to_the_three_jobs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    headings = re.findall(r"^## (.+)$", text, re.M)
    jobs = ["Reproduce the benchmark: one command", "Add your method to the leaderboard", "Make publication figures"]
    assert [h for h in headings if h in jobs] == jobs, headings
    assert "    bash scripts/run.sh" in text and "    bash scripts/test.sh" in text
    assert "plasticity-bench plot --report" in text
    assert "(docs/" in text


def test_every_docs_page_is_reachable_from_the_readme():
    """Following the links of the README and of the docs pages reaches every page of docs/."""
    pages = {path.resolve() for path in (ROOT / "docs").glob("*.md")}
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        path = todo.pop()
        for target in MARKDOWN_LINK.findall(path.read_text()):
            linked = (path.parent / target.partition("#")[0]).resolve()
            if linked in pages and linked not in reached:
                reached.add(linked)
                todo.append(linked)
    assert not pages - reached, sorted(str(page.relative_to(ROOT)) for page in pages - reached)
