#!/usr/bin/env bash
# Create .venv and install plasticity-bench with the pipeline, test and wandb extras.
# torch is pinned and installed first: a loose torch requirement resolved by pip would
# pull a multi-GB CUDA build on CPU machines (where torch==2.13.0's CPU wheel is local).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}"
.venv/bin/python -m pip install --quiet -e ".[pipeline,test,wandb]"
.venv/bin/python -c "import torch, plasticity_bench; print('plasticity-bench', plasticity_bench.__version__, '| torch', torch.__version__)"
