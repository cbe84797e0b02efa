"""Whether a change to the training engine left every number it records unchanged.

Trains a fixed set of runs, one cell per entry of the smoke config (workflow/config/smoke.yaml:
every method on DQN, the SAC methods, each algorithm x architecture, the supervised control),
each cell as seeds 0 and 1 trained together (a seed stack, or seed by seed where the cell
cannot stack), and writes a fingerprint per run: a SHA-256 of each record table (eval,
metrics, and train.parquet without its wall-clock rows, charts/SPS) and of the final
checkpoint's tensors. Run it before a change (--write before.json) and after it
(--compare before.json): it lists every run whose records differ, and exits 1 if any does.

Usage: python bench/bit_identical.py --write FILE | --compare FILE [--only SUBSTRING]
Single-threaded on CPU; about 2 minutes here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
import yaml

from plasticity_bench import results
from plasticity_bench.matrix import expand
from plasticity_bench.training import train_seeds

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1)


def cells() -> dict[str, list]:
    """The smoke config's planned runs of seeds 0 and 1, by cell (the spec without its seed)."""
    config = yaml.safe_load((ROOT / "workflow/config/smoke.yaml").read_text())
    runs, _ = expand({**config, "seeds": list(SEEDS)})
    by_cell: dict[str, list] = {}
    for run in runs:
        if not run.reference:
            cell = {key: value for key, value in run.spec.to_dict().items() if key != "seed"}
            by_cell.setdefault(json.dumps(cell, sort_keys=True), []).append(run.spec)
    return by_cell


def table_digest(path: Path) -> str:
    if not path.exists():
        return "absent"
    table = pd.read_parquet(path)
    if "name" in table.columns:
        table = table[table["name"] != "charts/SPS"]  # wall-clock throughput, never reproducible
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()[:16]


def checkpoint_digest(path: Path) -> str:
    """The checkpoint's networks, optimizer and method state, replay buffer, RNG states and
    step counters (its wall-clock fields left out); "absent" where a completed run removed it."""
    if not path.exists():
        return "absent"
    state = results.load_checkpoint(path)
    counters = {key: value for key, value in state["counters"].items()
                if key not in ("wall_time", "started", "resumes", "trained_with")}
    digest = hashlib.sha256(repr((counters, state["rng"]["numpy"])).encode())

    def visit(value, key: str) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(key.encode() + str(value.dtype).encode())
            digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for name in sorted(value, key=str):
                visit(value[name], f"{key}/{name}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                visit(item, f"{key}/{index}")
        else:
            digest.update(f"{key}={value!r}".encode())

    for part in ("agent", "methods", "replay"):
        visit(state[part], part)
    visit(state["rng"]["torch"], "rng")
    return digest.hexdigest()[:16]


def fingerprints(only: str | None) -> dict[str, dict[str, str]]:
    torch.set_num_threads(1)
    prints: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for cell, specs in cells().items():
            if only and not any(only in spec.run_id for spec in specs):
                continue
            run_dirs = [Path(scratch) / spec.run_id for spec in specs]
            manifests = train_seeds(specs, run_dirs, device="cpu", progress=False, tensorboard=False)
            for spec, run_dir, manifest in zip(specs, run_dirs, manifests):
                prints[spec.run_id] = {"status": manifest["status"],
                                       **{name: table_digest(run_dir / name)
                                          for name in (results.EVAL, results.METRICS, results.TRAIN)},
                                       "checkpoint": checkpoint_digest(run_dir / results.CHECKPOINT)}
            print(f"{' + '.join(spec.run_id for spec in specs)}: "
                  f"{', '.join(prints[spec.run_id]['status'] for spec in specs)}", file=sys.stderr)
    return prints


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, help="write the fingerprints to this JSON file")
    action.add_argument("--compare", type=Path, help="compare with fingerprints written before")
    parser.add_argument("--only", help="only the cells whose run id contains this")
    args = parser.parse_args()
    prints = fingerprints(args.only)
    if args.write:
        args.write.write_text(json.dumps(prints, indent=1, sort_keys=True))
        print(f"{len(prints)} runs fingerprinted into {args.write}")
        return 0
    before = json.loads(args.compare.read_text())
    differ = [run_id for run_id in sorted(prints) if before.get(run_id) != prints[run_id]]
    missing = [run_id for run_id in sorted(before) if run_id not in prints and not args.only]
    for run_id in differ:
        print(f"DIFFERS {run_id}: before {before.get(run_id)}, after {prints[run_id]}")
    for run_id in missing:
        print(f"MISSING {run_id} (its run id changed, or its cell is gone)")
    print(f"{len(prints) - len(differ)} of {len(prints)} runs bit-identical")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main())
