#!/usr/bin/env bash
# The README's main command: set up, then run the pipeline (default config unless
# arguments say otherwise, e.g. --configfile workflow/config/smoke.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
exec snakemake --cores all "$@"
