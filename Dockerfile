# The training image: PyTorch, the package installed as scripts/setup.sh installs it (torch
# pinned first, then the package with the pipeline extra), run as a non-root user (uid 10001).
#   docker build -t plasticity-bench:0.1.0 .        (or: snakemake image --cores 1)
#   mkdir -p results && docker run --gpus all --user "$(id -u):$(id -g)" \
#       -v "$PWD/results:/home/bench/work/results" plasticity-bench:0.1.0 \
#       train --algo sac --task dmc:cheetah-run --steps 20000 --out results/runs/sac-cheetah
# The default is a GPU image on plain Debian: the CUDA runtime comes with torch's CUDA wheel
# (its nvidia-* dependencies on the package index), and only the NVIDIA driver comes from the
# host (docker run --gpus, apptainer --nv). It trains on the CPU where there is no GPU.
# Build arguments:
#   BASE_IMAGE     a Debian or Ubuntu image with python3 >= 3.10 in its archive (default
#                  Debian bookworm; scripts/image_smoke.sh builds this same file on a local
#                  debootstrapped bookworm). Sites that require NVIDIA's base image can use
#                  one with the torch built for its CUDA, e.g.
#                  --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04 --build-arg TORCH_VARIANT=cu128
#   TORCH_VARIANT  which torch wheel: pypi (default) is the package index's own torch, which
#                  on Linux x86_64 is the CUDA build (torch 2.13.0: CUDA 13.0, host driver
#                  >= 580) with its runtime as nvidia-* wheels; cpu is the CPU-only build
#                  (no CUDA, GBs smaller); cuXYZ (cu128, cu126, ...) is that CUDA build. cpu
#                  and cuXYZ come from https://download.pytorch.org/whl/<variant>.
#   TORCH_FIND_LINKS  a URL (or folder) holding the torch wheel, searched instead of
#                  download.pytorch.org (the index still supplies torch's dependencies).
# Behind a proxy that re-signs HTTPS, give pip the proxy's CA bundle for the build only:
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt   (nothing of it stays in the image)
# The build fails when pip installed another torch than TORCH_VERSION[+TORCH_VARIANT], when a
# CUDA variant's torch has no CUDA runtime (neither its wheels nor the base bring libcudart),
# and when the base declares a CUDA version (CUDA_VERSION, as nvidia/cuda images do) other
# than torch's: NVIDIA's container runtime checks the host driver against the base's version
# (NVIDIA_REQUIRE_CUDA), so a mismatched pair passes that check and then finds no GPU.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# Re-declared so the CUDA check below can name the base.
ARG BASE_IMAGE
# Keep in step with scripts/setup.sh (TORCH_VERSION) and pyproject.toml (tests check both).
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=pypi
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

# The exact version, with the local label for cpu and cuXYZ (2.13.0+cpu), so pip can never
# pick another build. The index's wheel has no label, so `torch==2.13.0` also matches a
# 2.13.0+cpu that a find-links folder offers: the check below verifies what pip picked.
RUN --mount=type=secret,id=pip-ca python3 -m venv /opt/venv \
    && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip install --upgrade "pip>=24" \
    && if [ -n "${TORCH_FIND_LINKS}" ]; then export PIP_FIND_LINKS="${TORCH_FIND_LINKS}"; \
       elif [ "${TORCH_VARIANT}" != pypi ]; then export PIP_EXTRA_INDEX_URL="https://download.pytorch.org/whl/${TORCH_VARIANT}"; fi \
    && if [ "${TORCH_VARIANT}" = pypi ]; then pip install "torch==${TORCH_VERSION}"; \
       else pip install "torch==${TORCH_VERSION}+${TORCH_VARIANT}"; fi

# The torch check: the version pip installed, then its CUDA against the base's. The runtime
# a CUDA wheel carries is libcudart in site-packages (nvidia/cu13/lib, nvidia/cuda_runtime/lib).
RUN torch_version=$(python -c "import torch; print(torch.__version__)") \
    && installed="${torch_version}" && expected="${TORCH_VERSION}+${TORCH_VARIANT}" \
    && if [ "${TORCH_VARIANT}" = pypi ]; then installed="${torch_version%%+*}" && expected="${TORCH_VERSION}"; fi \
    && torch_cuda=$(python -c "import torch; print(torch.version.cuda)") \
    && cudart=$(python -c "import pathlib, torch; site = pathlib.Path(torch.__file__).parents[1]; print(len([*site.glob('nvidia/*/lib/libcudart.so*'), *site.glob('torch/lib/libcudart*.so*')]))") \
    && base_cuda=$(python -c "import os; print('.'.join(os.environ.get('CUDA_VERSION', 'none').split('.')[:2]))") \
    && if [ "${installed}" != "${expected}" ]; then \
        echo "error: pip installed torch ${torch_version}, not ${expected} (TORCH_VERSION=${TORCH_VERSION}, TORCH_VARIANT=${TORCH_VARIANT}); remove other torch builds from TORCH_FIND_LINKS" >&2; \
        exit 1; \
    elif [ "${TORCH_VARIANT}" = cpu ]; then \
        echo "CUDA check skipped: TORCH_VARIANT=cpu builds a CPU-only image (torch CUDA ${torch_cuda}, base CUDA ${base_cuda})"; \
    elif [ "${torch_cuda}" = None ]; then \
        echo "error: torch ${torch_version} (TORCH_VARIANT=${TORCH_VARIANT}) is a CPU-only build; use TORCH_VARIANT=cpu for a CPU-only image, or a CUDA build (pypi on Linux x86_64, cuXYZ)" >&2; \
        exit 1; \
    elif [ "${base_cuda}" = none ] && [ "${cudart}" = 0 ]; then \
        echo "error: torch ${torch_version} is built for CUDA ${torch_cuda} but brings no CUDA runtime (no libcudart in site-packages) and the base image ${BASE_IMAGE} has none (no CUDA_VERSION); install its nvidia-* dependencies or use a matching nvidia/cuda base" >&2; \
        exit 1; \
    elif [ "${base_cuda}" = none ]; then \
        echo "CUDA check passed: torch ${torch_version} carries its CUDA ${torch_cuda} runtime; the base image ${BASE_IMAGE} has no CUDA and needs none, the host's NVIDIA driver must support CUDA ${torch_cuda}"; \
    elif [ "${torch_cuda}" != "${base_cuda}" ]; then \
        echo "error: torch ${torch_version} is built for CUDA ${torch_cuda} but the base image ${BASE_IMAGE} has CUDA ${base_cuda}; choose a matching pair, e.g. --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04 --build-arg TORCH_VARIANT=cu128, or a base without CUDA (the default, Debian) with TORCH_VARIANT=pypi" >&2; \
        exit 1; \
    else \
        echo "CUDA check passed: torch ${torch_version} and the base image both have CUDA ${base_cuda}"; \
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
