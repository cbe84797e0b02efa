# The container image of the training rules. A target you ask for, never a dependency of
# `all`:  snakemake image --cores 1
# It builds the repository's Dockerfile with Docker when an engine answers (`docker info`),
# otherwise with buildah when it is installed, and writes the image as an archive next to
# config `container_image`: images/plasticity-bench-<version>.oci.tar (buildah push
# oci-archive) or .docker.tar (docker save). With apptainer installed it converts that
# archive to the .sif file `container_image` names (what `--sdm apptainer` runs the training
# jobs in). With neither engine it says so and succeeds; a failed build fails the rule.
# Environment: DOCKER / BUILDAH name the engines' commands; PLASTICITY_BENCH_IMAGE_BUILD_ARGS
# is passed to the build, e.g. "--build-arg TORCH_VARIANT=cpu --build-arg BASE_IMAGE=..."
# (see the Dockerfile); buildah itself reads STORAGE_DRIVER and BUILDAH_ISOLATION. The rule
# has no output, so it runs each time it is asked for; its log records what it did.
import os

from plasticity_bench import __version__ as PACKAGE_VERSION

IMAGE_TAG = f"plasticity-bench:{PACKAGE_VERSION}"
IMAGE_DIR = os.path.dirname(config["container_image"]) if config["container_image"].endswith(".sif") else "images"


rule image:
    params:
        context=workflow.basedir,
        tag=IMAGE_TAG,
        sif=config["container_image"],
        archive=os.path.join(IMAGE_DIR or ".", f"plasticity-bench-{PACKAGE_VERSION}"),
    log:
        f"{RESULTS}/logs/image.log",
    shell:
        """
        (
        docker=${{DOCKER:-docker}}
        buildah=${{BUILDAH:-buildah}}
        read -r -a build_args <<< "${{PLASTICITY_BENCH_IMAGE_BUILD_ARGS:-}}"
        if "$docker" info > /dev/null 2>&1; then
            "$docker" build "${{build_args[@]}}" --tag {params.tag} --tag plasticity-bench:latest {params.context} \
                || {{ echo "plasticity-bench image: docker build of {params.tag} failed (see above)"; exit 1; }}
            mkdir -p "$(dirname {params.archive})"
            "$docker" save --output {params.archive}.docker.tar {params.tag}
            archive=docker-archive://{params.archive}.docker.tar
        elif command -v "$buildah" > /dev/null 2>&1; then
            echo "plasticity-bench image: no Docker engine reachable ('docker info' failed); building with $buildah"
            "$buildah" bud "${{build_args[@]}}" --tag {params.tag} --file {params.context}/Dockerfile {params.context} \
                || {{ echo "plasticity-bench image: buildah bud of {params.tag} failed (see above)"; exit 1; }}
            mkdir -p "$(dirname {params.archive})"
            rm -f {params.archive}.oci.tar
            "$buildah" push {params.tag} oci-archive:{params.archive}.oci.tar:{params.tag}
            archive=oci-archive://{params.archive}.oci.tar
        else
            echo "plasticity-bench image: no Docker engine reachable ('docker info' failed) and no buildah" \
                 "installed, so image {params.tag} was not built. Build it where Docker runs:" \
                 "docker build -t {params.tag} {params.context}"
            exit 0
        fi
        echo "plasticity-bench image: built {params.tag}, archive ${{archive#*://}}"
        if [[ "{params.sif}" != *.sif ]]; then
            echo "plasticity-bench image: container_image {params.sif} is not a .sif file; push {params.tag} there"
        elif command -v apptainer > /dev/null 2>&1; then
            apptainer build --force "{params.sif}" "$archive"
            echo "plasticity-bench image: wrote {params.sif} for --sdm apptainer"
        else
            echo "plasticity-bench image: apptainer not installed, so {params.sif} was not written" \
                 "(elsewhere: apptainer build {params.sif} $archive)"
        fi
        ) 2>&1 | tee {log}
        """
