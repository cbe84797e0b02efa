# The container image of the training rules. A target you ask for, never a dependency of
# `all`:  snakemake image --cores 1
# With a reachable Docker engine (`docker info` succeeds) it builds and tags the image from
# the repository's Dockerfile, and with apptainer also installed converts it to the .sif
# file that config `container_image` names by default (what `--sdm apptainer` runs the
# training jobs in). Without an engine it says so and succeeds. The rule has no output, so
# it runs each time it is asked for; its log records what it did.
from plasticity_bench import __version__ as PACKAGE_VERSION

IMAGE_TAG = f"plasticity-bench:{PACKAGE_VERSION}"


rule image:
    params:
        context=workflow.basedir,
        tag=IMAGE_TAG,
        sif=config["container_image"],
    log:
        f"{RESULTS}/logs/image.log",
    shell:
        """
        (
        if ! docker info > /dev/null 2>&1; then
            echo "plasticity-bench image: no Docker engine reachable ('docker info' failed)," \
                 "so image {params.tag} was not built. Build it where Docker runs:" \
                 "docker build -t {params.tag} {params.context}"
            exit 0
        fi
        docker build --tag {params.tag} --tag plasticity-bench:latest {params.context}
        echo "plasticity-bench image: built {params.tag}"
        if [[ "{params.sif}" != *.sif ]]; then
            echo "plasticity-bench image: container_image {params.sif} is not a .sif file; push {params.tag} there"
        elif command -v apptainer > /dev/null 2>&1; then
            mkdir -p "$(dirname "{params.sif}")"
            apptainer build --force "{params.sif}" "docker-daemon://{params.tag}"
            echo "plasticity-bench image: wrote {params.sif} for --sdm apptainer"
        else
            echo "plasticity-bench image: apptainer not installed, so {params.sif} was not written"
        fi
        ) 2>&1 | tee {log}
        """
