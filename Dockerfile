# GPU image for the training rules: CUDA PyTorch, MuJoCo rendering through EGL, the package
# installed as scripts/setup.sh installs it (torch pinned first, then the package with the
# pipeline extra), run as a non-root user.
#   docker build -t plasticity-bench:0.1.0 .        (or: snakemake image --cores 1)
#   docker run --gpus all plasticity-bench:0.1.0 train --algo sac --task dmc:cheetah-run --steps 20000
# torch's Linux wheel on PyPI is the CUDA build and brings its own CUDA libraries; the base
# image supplies the NVIDIA container settings. The host driver must support the wheel's
# CUDA version (python -c "import torch; print(torch.version.cuda)").
FROM nvidia/cuda:12.8.1-base-ubuntu24.04

# Keep in step with scripts/setup.sh (TORCH_VERSION) and pyproject.toml (tests check both).
ARG TORCH_VERSION=2.13.0
ARG EXTRAS=pipeline

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    PATH=/opt/venv/bin:$PATH

# EGL/GL through glvnd for MuJoCo and dm_control. No git: the image holds no checkout, so
# run manifests made in it record git sha null; the image tag names the version.
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

RUN python3 -m venv /opt/venv \
    && pip install --upgrade "pip>=24" \
    && pip install "torch==${TORCH_VERSION}"

WORKDIR /opt/plasticity-bench
COPY pyproject.toml README.md Snakefile ./
COPY plasticity_bench ./plasticity_bench
COPY envs ./envs
COPY workflow ./workflow
# Editable, as scripts/setup.sh does: the suites in envs/ are found next to the package.
RUN pip install -e ".[${EXTRAS}]" \
    && python -c "import torch, plasticity_bench; print('plasticity-bench', plasticity_bench.__version__, 'torch', torch.__version__)"

# Numeric ids, so the user resolves on hosts that do not know the name.
RUN groupadd --gid 10001 bench \
    && useradd --no-log-init --create-home --shell /bin/bash --uid 10001 --gid bench bench
USER 10001:10001
WORKDIR /home/bench/work

ENTRYPOINT ["plasticity-bench"]
CMD ["--help"]
