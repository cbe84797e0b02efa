#!/usr/bin/env bash
# The README's test command: set up, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two workers: the learning and end-to-end tests are single-threaded subprocess work.
exec .venv/bin/python -m pytest -q -n 2 "$@"
