"""Wall time of a whole workflow config (train every run, aggregate, report) at two commits,
measured in one run: what a code change did to the time a researcher waits.

Each commit is checked out into a temporary git worktree and runs `snakemake --cores all
--configfile <config>` there from nothing (its own results/ and reports/), with this venv's
packages and the worktree's own code (PYTHONPATH). Printed: each commit's training jobs, runs,
wall time and the ratio before / after, and whether both trained the same runs (by their
specs, as the manifests record them).

Usage: python bench/workflow_wall_time.py [--config smoke] [--before REF] [--after REF]
Run it alone on the machine: the numbers are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plasticity_bench.results import read_manifest

REPO = Path(__file__).resolve().parents[1]
# The last commit before seeds became a batch dimension (one process per run).
BEFORE_SEED_BATCHING = "b51b91c"


def run_workflow(ref: str, config: str, scratch: Path) -> dict:
    worktree = scratch / ref.replace("/", "_")
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), ref],
                   check=True, capture_output=True)
    try:
        env = dict(os.environ, PYTHONPATH=str(worktree),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        started = time.perf_counter()
        finished = subprocess.run(
            ["snakemake", "--cores", "all", "--configfile", f"workflow/config/{config}.yaml"],
            cwd=worktree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if finished.returncode != 0:
            sys.exit(f"{ref}: snakemake failed\n{finished.stderr[-4000:]}")
        manifests = [read_manifest(path.parent) for path in (worktree / "results" / "runs").glob("*/manifest.json")]
        # Commits before seeds were grouped had one job per run and no results/jobs/.
        jobs = len(list((worktree / "results" / "jobs").glob("*.done"))) or len(manifests)
        return {"ref": ref, "wall_s": wall, "jobs": jobs,
                "specs": sorted(json.dumps(manifest["spec"], sort_keys=True) for manifest in manifests),
                "failed": sum(manifest["status"] != "completed" for manifest in manifests)}
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                       check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="smoke")
    parser.add_argument("--before", default=BEFORE_SEED_BATCHING)
    parser.add_argument("--after", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workflow-wall-time-") as scratch:
        results = [run_workflow(ref, args.config, Path(scratch)) for ref in (args.before, args.after)]
    before, after = results
    for result in results:
        print(f"{args.config} @ {result['ref']}: {len(result['specs'])} runs ({result['failed']} failed) "
              f"in {result['jobs']} training jobs, {result['wall_s'] / 60:.1f} min")
    print(f"same runs: {'yes' if before['specs'] == after['specs'] else 'NO: the commits train different runs'}")
    print(f"wall time before / after: {before['wall_s'] / after['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
