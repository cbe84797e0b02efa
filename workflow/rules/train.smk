# One job per group of a cell's runs (runs equal but for their seed; config `seeds_per_job`
# of them, default all of the cell's seeds; see JOBS in common.smk): one `plasticity-bench
# train --seeds` process trains them together, the seeds a batch dimension
# (plasticity_bench/training/stack.py), each run into its own folder results/runs/<run_id>/ under
# the run id a one-seed run has. A job of one run (seeds_per_job: 1) is today's one-seed
# `train --seed` command, named by its run id. The CLI resumes from each run's checkpoint
# after a kill, and exits 3 when a run itself failed (a non-finite value, or anything torch,
# a method or a metric raised while it trained; its manifest says why), after every run of
# the job ran: that is a result for aggregation to report, not a reason to stop the other
# jobs. The job then succeeds and writes its output (results/jobs/<job>.done, the job's run
# ids), so Snakemake does not run it again by itself.

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
        JOB_DONE,
    params:
        args=lambda wildcards: " ".join(f"'{arg}'" for arg in JOBS[wildcards.job].cli_args()),
        run_ids=lambda wildcards: ",".join(JOBS[wildcards.job].run_ids),
        run_id_lines=lambda wildcards: " ".join(JOBS[wildcards.job].run_ids),
        runs_dir=f"{RESULTS}/runs",
        device=config["device"],
        gpu_slots=f"{RESULTS}/.gpu_slots",
    wildcard_constraints:
        job="[^/]+",
    log:
        f"{RESULTS}/logs/train/{{job}}.log",
    threads: config["threads"]
    resources:
        mem_mb=config["mem_mb"],
        runtime=config["runtime"],
        gpu=TRAIN_GPUS,
    # Used only with --sdm apptainer (add --apptainer-args "--nv" for the GPUs).
    container:
        config["container_image"]
    shell:
        "(plasticity-bench train {params.args} --runs-dir {params.runs_dir} --threads {threads} "
        "--device {params.device} --gpu-slots {params.gpu_slots} "
        "--expect-run-id {params.run_ids} --no-progress > {log} 2>&1 || [ $? -eq 3 ]) "
        "&& printf '%s\\n' {params.run_id_lines} > {output}"
