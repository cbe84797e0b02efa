#!/usr/bin/env bash
# Build the project's Dockerfile for real and train inside the image, on a machine with no
# container registry: as root on Debian/Ubuntu,  bash scripts/image_smoke.sh [cpu|cuda]
# (default cpu; or IMAGE_SMOKE_VARIANT=cuda)
#   1. installs buildah and debootstrap (when missing);
#   2. debootstraps a minimal Debian bookworm root filesystem and imports it as
#      localhost/debian-base (the tarball is kept in $IMAGE_SMOKE_CACHE between runs);
#   3. builds ./Dockerfile on it with buildah (BASE_IMAGE=localhost/debian-base):
#      cpu:  TORCH_VARIANT=cpu, tag localhost/plasticity-bench:smoke; torch's CPU wheel comes
#            from wherever this machine's pip finds it, else from download.pytorch.org;
#      cuda: TORCH_VARIANT=pypi, tag localhost/plasticity-bench:smoke-cuda, the Dockerfile's
#            default GPU image: torch's CUDA wheel and its nvidia-* runtime wheels from the
#            package index (several GB), no CUDA in the base;
#   4. inside the image: torch's CUDA version and torch.cuda.is_available() (a cuda image
#      must have a CUDA torch that answers False without error on a machine with no GPU),
#      plasticity-bench list, DQN on gym:CartPole-v1 and SAC on dmc:cartpole-swingup with the
#      image's MUJOCO_GL, writing through a mounted results folder as the image's uid 10001
#      and as another uid (docker run --user);
#   5. checks the run records and prints the image size, the build time and the final returns,
#      which it keeps in $IMAGE_SMOKE_CACHE/returns-<variant>.txt with a hash of the package
#      source; when the other variant's file has the same hash, both images' returns must be
#      the same (on the CPU, a CUDA build of torch computes what the CPU build does).
# It prints "image_smoke: OK" last on success. STORAGE_DRIVER=vfs (buildah reads it):
# overlay mounts are refused inside many containers. Elsewhere, with a registry: BASE_IMAGE=
# <image> builds on that base instead of the debootstrapped one, and for the cuda variant
# TORCH_VARIANT=cuXYZ picks PyTorch's cuXYZ wheel (e.g. BASE_IMAGE=nvidia/cuda:12.8.1-base-
# ubuntu24.04 TORCH_VARIANT=cu128, for sites that require NVIDIA's base image).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "image_smoke: $*"; }
fail() { echo "image_smoke: FAILED: $*" >&2; exit 1; }

VARIANT=${1:-${IMAGE_SMOKE_VARIANT:-cpu}}
case "$VARIANT" in
    cpu) TAG=localhost/plasticity-bench:smoke; TORCH_VARIANT=cpu; OTHER=cuda ;;
    cuda) TAG=localhost/plasticity-bench:smoke-cuda; TORCH_VARIANT=${TORCH_VARIANT:-pypi}; OTHER=cpu ;;
    *) fail "unknown variant '$VARIANT'; choose cpu or cuda" ;;
esac
[ "$TORCH_VARIANT" != cpu ] || [ "$VARIANT" = cpu ] || fail "TORCH_VARIANT=cpu is the cpu variant, not cuda"
CACHE=${IMAGE_SMOKE_CACHE:-/var/cache/plasticity-bench-image-smoke}
BASE=${BASE_IMAGE:-localhost/debian-base}
TORCH_VERSION=$(sed -n 's/^ARG TORCH_VERSION=//p' Dockerfile)
PYTHON_TAG=cp311  # bookworm's python3 is 3.11
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}

[ "$(id -u)" = 0 ] || fail "run as root: apt-get, debootstrap and buildah need it"
[ -n "$TORCH_VERSION" ] || fail "no 'ARG TORCH_VERSION=' line in Dockerfile"
# What the returns depend on (the package and its requirements), to know when two runs'
# returns must agree.
source_hash=$(find pyproject.toml plasticity_bench -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
say "variant $VARIANT: TORCH_VARIANT=$TORCH_VARIANT on $BASE, tag $TAG, package source $source_hash"

missing=()
command -v buildah > /dev/null || missing+=(buildah)
command -v debootstrap > /dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
say "$(buildah --version), storage driver $STORAGE_DRIVER"

mkdir -p "$CACHE"
base_tar=$CACHE/debian-bookworm-minbase.tar
if [ "$BASE" != localhost/debian-base ]; then
    say "base: $BASE (BASE_IMAGE), no debootstrap"
elif [ ! -s "$base_tar" ]; then
    say "debootstrap: Debian bookworm (minbase) into $base_tar"
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian > "$CACHE/debootstrap.log" 2>&1 \
        || fail "debootstrap failed, see $CACHE/debootstrap.log"
    # The container engine supplies /dev, /proc and /sys.
    tar -C "$rootfs" --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -cf "$base_tar.partial" .
    mv "$base_tar.partial" "$base_tar"
    rm -rf "$rootfs"
fi
if [ "$BASE" = localhost/debian-base ] && ! buildah inspect --type image "$BASE" > /dev/null 2>&1; then
    say "importing $base_tar as $BASE"
    container=$(buildah from scratch)
    buildah add --quiet "$container" "$base_tar" / > /dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$container"
    buildah commit --quiet --rm "$container" "$BASE" > /dev/null
fi

# torch's CPU wheel (cpu variant): where this machine's pip finds it (a local wheel folder or
# index), served to the build over HTTP on 127.0.0.1 (chroot isolation shares the host's
# network), so the build downloads no torch; without one the Dockerfile takes
# download.pytorch.org/whl/cpu. The cuda variant takes torch from the package index, as a
# default docker build does.
wheels=$CACHE/wheels
mkdir -p "$wheels"
if [ "$VARIANT" = cpu ] && ! compgen -G "$wheels/torch-$TORCH_VERSION+cpu-$PYTHON_TAG-*.whl" > /dev/null; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" \
        --implementation cp --python-version 3.11 --abi "$PYTHON_TAG" --platform "manylinux_2_28_$(uname -m)" \
        "torch==$TORCH_VERSION+cpu" > /dev/null 2>&1 || true
fi
build_options=()
server_pid=
container=
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2> /dev/null || true
    [ -z "$container" ] || buildah rm "$container" > /dev/null 2>&1 || true
}
trap cleanup EXIT
if [ "$VARIANT" = cuda ]; then
    say "torch wheel: torch==$TORCH_VERSION, TORCH_VARIANT=$TORCH_VARIANT (the package index's CUDA build for pypi)"
elif wheel=$(compgen -G "$wheels/torch-$TORCH_VERSION+cpu-$PYTHON_TAG-*.whl"); then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -m http.server --bind 127.0.0.1 --directory "$wheels" "$port" > /dev/null 2>&1 &
    server_pid=$!
    say "torch wheel: $wheel, served at http://127.0.0.1:$port/"
    build_options+=(--build-arg TORCH_FIND_LINKS="http://127.0.0.1:$port/")
else
    say "torch wheel: none on this machine, the build takes it from download.pytorch.org/whl/cpu"
fi
# pip in the build trusts what this machine trusts: where HTTPS goes through a proxy with its
# own CA (as here), the base's stock CA bundle rejects PyPI. The Dockerfile's pip steps take
# the bundle as a build secret, which never enters the image.
host_ca=/etc/ssl/certs/ca-certificates.crt
[ ! -s "$host_ca" ] || build_options+=(--secret id=pip-ca,src="$host_ca")

work=$(mktemp -d /tmp/image_smoke.XXXXXX)
say "build: buildah bud on $BASE (log: $work/build.log)"
buildah rmi "$TAG" > /dev/null 2>&1 || true
start=$(date +%s)
if ! buildah bud --isolation chroot --layers=false --build-arg BASE_IMAGE="$BASE" --build-arg TORCH_VARIANT="$TORCH_VARIANT" \
        "${build_options[@]}" --tag "$TAG" --file Dockerfile . > "$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    fail "buildah bud failed, see $work/build.log"
fi
build_s=$(( $(date +%s) - start ))
grep -E "^(CUDA check|plasticity-bench [0-9])" "$work/build.log" | sed 's/^/image_smoke: build said: /'
size=$(buildah images --format '{{.Size}}' "$TAG" | head -n 1)
say "image $TAG: size $size, build time ${build_s} s"
torch_wheels=$(grep -oE "Downloading (torch|nvidia[a-z0-9_-]*|triton)-[^ ]+ \([0-9.]+ [kMG]B\)" "$work/build.log" \
    | sed -E 's/.*\(([0-9.]+) ([kMG])B\)/\1 \2/' \
    | awk '{ total += $1 * ($2 == "G" ? 1000 : $2 == "M" ? 1 : 0.001) } END { printf "%.0f", total }')
[ "$torch_wheels" = 0 ] || say "torch, nvidia-* and triton wheels fetched by the build: $torch_wheels MB"

container=$(buildah from --quiet "$TAG")
# The image's user writes through a folder chowned to uid 10001; another uid (as with
# docker run --user "$(id -u):$(id -g)") through a folder it owns.
mkdir -p "$work/results" "$work/results-user"
chown 10001:10001 "$work/results"
chown 4242:4242 "$work/results-user"
run() { buildah run --isolation chroot --volume "$work/results:/home/bench/work/results" \
            --volume "$work/results-user:/home/bench/work/results-user" "$@"; }

uid=$(run "$container" -- id -u)
[ "$uid" = 10001 ] || fail "the image runs as uid $uid, not 10001"
mujoco_gl=$(run "$container" -- printenv MUJOCO_GL)
say "inside the image: uid $uid, MUJOCO_GL=$mujoco_gl"
# Importing torch loads a CUDA build's libraries (libcudart, cuBLAS, ...); with no GPU and no
# driver, is_available() must answer False quietly: the CPU training below relies on it.
run "$container" -- python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())" \
    > "$work/torch.txt" 2> "$work/torch.err" || { cat "$work/torch.err" >&2; fail "import torch failed in the image"; }
read -r torch_version torch_cuda cuda_available < "$work/torch.txt"
say "inside the image: torch $torch_version, torch.version.cuda $torch_cuda, torch.cuda.is_available() $cuda_available"
if [ "$VARIANT" = cuda ]; then
    [ "$torch_cuda" != None ] || fail "the cuda image's torch $torch_version has no CUDA (torch.version.cuda None)"
    [ ! -s "$work/torch.err" ] || { cat "$work/torch.err" >&2; fail "torch.cuda.is_available() wrote to stderr with no GPU"; }
    if [ -e /dev/nvidiactl ]; then
        say "this machine has an NVIDIA device, so is_available() $cuda_available is not checked"
    else
        [ "$cuda_available" = False ] || fail "torch.cuda.is_available() is $cuda_available on a machine with no GPU"
        say "no GPU here: torch.cuda.is_available() False, nothing on stderr; the runs below train on the CPU"
    fi
fi
run "$container" -- python -c "import ctypes; ctypes.CDLL('libEGL.so.1'); ctypes.CDLL('libGL.so.1')" \
    || fail "libEGL/libGL do not load in the image"
run "$container" -- plasticity-bench list > "$work/list.txt" || fail "plasticity-bench list failed"
grep -q "dqn" "$work/list.txt" && grep -q "dmc" "$work/list.txt" || fail "plasticity-bench list names no dqn/dmc"
say "plasticity-bench list: $(wc -l < "$work/list.txt") lines"

# check RUN_DIR STEPS EVALS: the manifest says completed at STEPS, eval.parquet has EVALS rows.
CHECK='
import json, sys
import pandas as pd
run_dir, steps, evals = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
manifest = json.load(open(f"{run_dir}/manifest.json"))
curve = pd.read_parquet(f"{run_dir}/eval.parquet")
assert manifest["status"] == "completed" and manifest["step"] == steps, (manifest["status"], manifest["step"], manifest["error"])
assert manifest["updates"] > 0, "no gradient updates"
assert len(curve) == evals and curve["step"].iloc[-1] == steps, curve
final_return = curve["return"].iloc[-1]
# repr: the returns of two images are compared digit for digit.
print("%s: completed, %d updates, %d evaluations, final return %r, %.0f s on %s"
      % (manifest["run_id"], manifest["updates"], len(curve), float(final_return), manifest["wall_time_s"],
         manifest.get("device")))
'
train() {  # user out steps evals train-options...
    local user=$1 out=$2 steps=$3 evals=$4
    shift 4
    run --user "$user" "$container" -- plasticity-bench train --no-progress --steps "$steps" --out "$out" "$@" \
        > "$work/$(basename "$out").log" 2>&1 || { tail -n 30 "$work/$(basename "$out").log" >&2; fail "training $out failed"; }
    # As the same user: run records are written readable by their owner only.
    run --user "$user" "$container" -- python -c "$CHECK" "$out" "$steps" "$evals" > "$work/check.txt"
    sed 's/^/image_smoke: /' "$work/check.txt"
    returns+=("$(basename "$out") $(sed -nE 's/.*final return (-?[0-9.e+-]+|nan|inf),.*/\1/p' "$work/check.txt")")
}
returns=()
train 10001:10001 results/dqn-cartpole 5000 2 --algo dqn --task gym:CartPole-v1 \
    --set learning_starts=500 --set eval_every_steps=2500 --set eval_episodes=5 --set monitor_every_updates=150
train 4242:4242 results-user/sac-cartpole-swingup 2000 2 --algo sac --task dmc:cartpole-swingup \
    --set learning_starts=500 --set eval_every_steps=1000 --set eval_episodes=2
owners=$(stat -c %u "$work/results/dqn-cartpole/manifest.json" "$work/results-user/sac-cartpole-swingup/manifest.json" | xargs)
[ "$owners" = "10001 4242" ] || fail "run records owned by uids $owners, not 10001 4242"
say "run records on the host under $work (owners: uid $owners)"

# The returns, kept for the other variant's run to compare with.
record=$CACHE/returns-$VARIANT.txt
{
    echo "source $source_hash"
    printf '%s\n' "${returns[@]}"
    echo "image $TAG size $size build_s $build_s"
} > "$record.partial"
mv "$record.partial" "$record"
other=$CACHE/returns-$OTHER.txt
if [ ! -s "$other" ]; then
    say "returns not compared: no $OTHER image run recorded ($other; bash scripts/image_smoke.sh $OTHER)"
elif [ "$(head -n 1 "$other")" != "source $source_hash" ]; then
    say "returns not compared: the $OTHER image was built from another package source ($(head -n 1 "$other"), this one $source_hash)"
else
    mine=$(sed -n 2,3p "$record")
    theirs=$(sed -n 2,3p "$other")
    say "returns in the $VARIANT image: $(echo $mine); in the $OTHER image: $(echo $theirs)"
    [ "$mine" = "$theirs" ] || fail "the $VARIANT and $OTHER images' returns differ on the same package source"
    say "returns: the same in the $VARIANT and the $OTHER image"
fi
say "OK"
