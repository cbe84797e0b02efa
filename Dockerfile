# The training image: PyTorch, the package installed as scripts/setup.sh installs it (torch
# pinned first, then the package with the pipeline extra), run as a non-root user (uid 10001).
#   docker build -t plasticity-bench:0.1.0 .        (or: snakemake image --cores 1)
#   mkdir -p results && docker run --gpus all --user "$(id -u):$(id -g)" \
#       -v "$PWD/results:/home/bench/work/results" plasticity-bench:0.1.0 \
#       train --algo sac --task dmc:cheetah-run --steps 20000 --out results/runs/sac-cheetah
# Build arguments:
#   BASE_IMAGE     an Ubuntu or Debian image with python3 >= 3.10 in its archive. The default
#                  is the CUDA image; scripts/image_smoke.sh builds this same file on a local
#                  Debian bookworm base.
#   TORCH_VARIANT  the torch wheel: cu128 (matches the default base's CUDA 12.8), another
#                  cuXYZ to go with another nvidia/cuda base, or cpu for a CPU-only image. It
#                  comes from https://download.pytorch.org/whl/<variant>: PyPI's Linux torch
#                  2.13.0 is built for CUDA 13.0, and a CUDA torch on a CPU build costs GBs.
#   TORCH_FIND_LINKS  a URL (or folder) holding the torch-<version>+<variant> wheel, searched
#                  instead of download.pytorch.org (PyPI still supplies torch's dependencies).
# Behind a proxy that re-signs HTTPS, give pip the proxy's CA bundle for the build only:
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt   (nothing of it stays in the image)
# The build fails when torch's CUDA version differs from the base's (CUDA_VERSION, which
# nvidia/cuda images set): the host driver serves the base's version, and a mismatched torch
# finds no GPU.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04
FROM ${BASE_IMAGE}

# Re-declared so the CUDA check below can name the base.
ARG BASE_IMAGE
# Keep in step with scripts/setup.sh (TORCH_VERSION) and pyproject.toml (tests check both).
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cu128
ARG TORCH_FIND_LINKS=""
ARG EXTRAS=pipeline

# Training never renders, and MUJOCO_GL=egl makes dm_control open an EGL display as it is
# imported, which fails on CPU nodes and where NVIDIA's EGL library is missing. "disable"
# works everywhere; to render, run with -e MUJOCO_GL=egl on an NVIDIA GPU.
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MUJOCO_GL=disable \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    PATH=/opt/venv/bin:$PATH

# python3-venv brings ensurepip on Ubuntu and Debian alike. EGL/GL through glvnd, for
# rendering with MUJOCO_GL=egl. No git: the image holds no checkout, so run manifests made
# in it record git sha null; the image tag names the version.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv \
        libegl1 libgl1 libgles2 libglvnd0 libopengl0 \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The NVIDIA container runtime mounts libEGL_nvidia (graphics capability); glvnd finds it
# through this vendor file.
RUN mkdir -p /usr/share/glvnd/egl_vendor.d \
    && printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "libEGL_nvidia.so.0"}}\n' \
        > /usr/share/glvnd/egl_vendor.d/10_nvidia.json

# The exact local version (2.13.0+cpu, 2.13.0+cu128) so pip can never pick another build.
RUN --mount=type=secret,id=pip-ca python3 -m venv /opt/venv \
    && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip install --upgrade "pip>=24" \
    && if [ -n "${TORCH_FIND_LINKS}" ]; then export PIP_FIND_LINKS="${TORCH_FIND_LINKS}"; \
       else export PIP_EXTRA_INDEX_URL="https://download.pytorch.org/whl/${TORCH_VARIANT}"; fi \
    && pip install "torch==${TORCH_VERSION}+${TORCH_VARIANT}"

RUN torch_cuda=$(python -c "import torch; print(torch.version.cuda)") \
    && base_cuda=$(python -c "import os; print('.'.join(os.environ.get('CUDA_VERSION', 'none').split('.')[:2]))") \
    && if [ "${TORCH_VARIANT}" = cpu ]; then \
        echo "CUDA check skipped: TORCH_VARIANT=cpu builds a CPU-only image (torch CUDA ${torch_cuda}, base CUDA ${base_cuda})"; \
    elif [ "${torch_cuda}" != "${base_cuda}" ]; then \
        echo "error: torch ${TORCH_VERSION}+${TORCH_VARIANT} is built for CUDA ${torch_cuda} but the base image ${BASE_IMAGE} has CUDA ${base_cuda}; choose a matching pair, e.g. --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04 --build-arg TORCH_VARIANT=cu128, or TORCH_VARIANT=cpu for a CPU-only image" >&2; \
        exit 1; \
    else \
        echo "CUDA check passed: torch ${TORCH_VERSION}+${TORCH_VARIANT} and the base image both have CUDA ${base_cuda}"; \
    fi

WORKDIR /opt/plasticity-bench
COPY pyproject.toml README.md Snakefile ./
COPY plasticity_bench ./plasticity_bench
COPY workflow ./workflow
# Editable, as scripts/setup.sh does (the suites are package data, plasticity_bench/suites/).
RUN --mount=type=secret,id=pip-ca if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip install -e ".[${EXTRAS}]" \
    && python -c "import torch, plasticity_bench; print('plasticity-bench', plasticity_bench.__version__, 'torch', torch.__version__)"

# Numeric ids, so the user resolves on hosts that do not know the name.
RUN groupadd --gid 10001 bench \
    && useradd --no-log-init --create-home --shell /bin/bash --uid 10001 --gid bench bench
USER 10001:10001
WORKDIR /home/bench/work

ENTRYPOINT ["plasticity-bench"]
CMD ["--help"]
