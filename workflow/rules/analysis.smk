# rliable aggregation of all runs of this config, then the versioned report.
import shlex


rule aggregate:
    input:
        matrix=MATRIX,
        jobs=expand(JOB_DONE, job=sorted(JOBS)),  # every run's manifest written
    output:
        f"{AGGREGATE_DIR}/aggregate.json",
    params:
        out=AGGREGATE_DIR,
        reps=config["aggregate"]["reps"],
        seed=config["aggregate"]["seed"],
        final_window=config["aggregate"]["final_window"],
        allow_missing="--allow-missing" if config["aggregate"]["allow_missing"] else "",
    log:
        f"{RESULTS}/logs/aggregate-{CONFIG_HASH[:8]}.log",
    shell:
        "plasticity-bench aggregate --matrix {input.matrix} --runs {RESULTS}/runs --out {params.out} "
        "--reps {params.reps} --seed {params.seed} --final-window {params.final_window} {params.allow_missing} "
        "2>&1 | tee {log}"


rule report:
    input:
        aggregate=f"{AGGREGATE_DIR}/aggregate.json",
        matrix=MATRIX,
    output:
        report(
            directory(REPORT_COPY),
            patterns=["figures/{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        version=REPORT_VERSION,
        reports=config["reports_dir"],
        published=REPORT_DIR,
        metrics=" ".join(f"--metric {shlex.quote(metric)}" for metric in config.get("report_metrics", [])),
    # `report` publishes REPORT_DIR (or leaves an existing one of the same inputs as it is,
    # and refuses one of other inputs); the rule's output is a copy (see common.smk).
    shell:
        "plasticity-bench report --aggregate {AGGREGATE_DIR} --matrix {input.matrix} --runs {RESULTS}/runs "
        "--reports {params.reports} --version {params.version} {params.metrics} "
        "&& cp -r {params.published} {output}"
