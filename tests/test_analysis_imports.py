"""What the light parts of the analysis and the workflow import (each checked in a fresh interpreter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules_after(code: str, *names: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of ``names`` are in its sys.modules then."""
    probe = f"{code}\nimport sys\nprint(' '.join(str(n in sys.modules) for n in {names!r}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return dict(zip(names, (word == "True" for word in result.stdout.split())))


def test_reading_run_records_does_not_import_torch(tmp_path):
    """The analysis reads manifests, eval and metrics tables without the trainer's torch."""
    from test_stats import make_matrix, write_run

    matrix = make_matrix()
    write_run(tmp_path, "none", "gym:TaskA-v0", 0)
    code = (
        "from plasticity_bench.analysis.runs import RunRecord, check_run, read_scorable_eval\n"
        "from plasticity_bench.analysis.vocabulary import read_aggregate\n"
        f"record = RunRecord({str(tmp_path / matrix['runs'][0]['run_id'])!r})\n"
        f"assert check_run(record, {matrix['runs'][0]!r}) == ('completed', '')\n"
        "evals, reason = read_scorable_eval(record)\n"
        "assert reason == '' and len(evals) and len(record.metrics())"
    )
    assert modules_after(code, "torch") == {"torch": False}


def workflow_imports() -> str:
    """The plasticity_bench imports the workflow runs while it is parsed (top level of its files)."""
    lines = []
    for path in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        lines += [line for line in path.read_text().splitlines()
                  if re.match(r"(from|import) plasticity_bench\b", line)]
    return "\n".join(lines)


@pytest.mark.parametrize("heavy", ["matplotlib", "rliable"])
def test_parsing_the_workflow_imports_no_plotting_or_rliable(heavy):
    """Every SLURM job parses the workflow again: it must stay cheap to import."""
    code = workflow_imports()
    assert "plasticity_bench.provenance" in code  # the report's default version comes from there
    assert modules_after(code, heavy) == {heavy: False}
