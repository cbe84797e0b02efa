# plasticity-bench pipeline: config → runs (train) → rliable aggregate → versioned report.
#   snakemake --cores all                                       default config, end to end
#   snakemake --cores all --configfile workflow/config/smoke.yaml   seconds-per-job version
#   snakemake -n --configfile workflow/config/paper.yaml         the papers' full matrix
# Rules are thin: each calls the plasticity-bench CLI.

# The default config applies only when none is given: Snakemake would otherwise merge a
# --configfile into it key by key, leaking default budgets into other configs.
if not config:
    import yaml

    with open(workflow.basedir + "/workflow/config/default.yaml") as default_config:
        config.update(yaml.safe_load(default_config))


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/image.smk"


rule all:
    input:
        REPORT_COPY,
    default_target: True
