# One job per run. The CLI resumes from the run's checkpoint after a kill, and exits 3 when
# the run itself failed (a non-finite value, or anything torch, a method or a metric raised
# while it trained; its manifest says why): that is a result for aggregation to report, not
# a reason to stop the other jobs. The job then succeeds, so Snakemake keeps the manifest
# (it deletes a failed job's outputs) and does not run it again by itself.


rule matrix:
    output:
        MATRIX,
    run:
        from plasticity_bench.matrix import write_matrix

        write_matrix(output[0], config, PLANNED, DROPPED)


# GPUs asked of the executor per job: an explicit CUDA device needs one even when gpus is 0.
TRAIN_GPUS = max(config["gpus"], 1) if config["device"].startswith("cuda") else config["gpus"]


rule train:
    output:
        f"{RESULTS}/runs/{{run_id}}/manifest.json",
    params:
        args=lambda wildcards: " ".join(f"'{arg}'" for arg in RUNS[wildcards.run_id].cli_args()),
        run_dir=lambda wildcards: f"{RESULTS}/runs/{wildcards.run_id}",
        device=config["device"],
        gpu_slots=f"{RESULTS}/.gpu_slots",
    log:
        f"{RESULTS}/logs/train/{{run_id}}.log",
    threads: config["threads"]
    resources:
        mem_mb=config["mem_mb"],
        runtime=config["runtime"],
        gpu=TRAIN_GPUS,
    # Used only with --sdm apptainer (add --apptainer-args "--nv" for the GPUs).
    container:
        config["container_image"]
    shell:
        "plasticity-bench train {params.args} --out {params.run_dir} --threads {threads} "
        "--device {params.device} --gpu-slots {params.gpu_slots} "
        "--expect-run-id {wildcards.run_id} --no-progress > {log} 2>&1 || [ $? -eq 3 ]"
