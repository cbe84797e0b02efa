# Validate the config, expand it into runs and name this configuration's outputs.
import os
import shutil
import sys

from snakemake.utils import validate

from plasticity_bench.analysis.claims import check_claim_groups, parse_claims
from plasticity_bench.provenance import default_version
from plasticity_bench.matrix import config_hash, expand as expand_config, train_jobs

def check_top_level_keys(config):
    """A misspelt top-level key named in one line with the nearest setting (the schema's own
    refusal prints the whole schema)."""
    import difflib

    import yaml

    with open(os.path.join(workflow.current_basedir, "..", "schemas", "config.schema.yaml")) as handle:
        settings = sorted(yaml.safe_load(handle)["properties"])
    for key in config:
        if key not in settings:
            near = difflib.get_close_matches(str(key), settings, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"settings: {', '.join(settings)}"
            sys.exit(f"error: config key {key!r} is not a setting; {hint}")


check_top_level_keys(config)
validate(config, "../schemas/config.schema.yaml")

PLANNED, DROPPED = expand_config(config)
# A claim that names no planned run, or is malformed, stops the workflow before training.
check_claim_groups(parse_claims(config.get("claims", [])), [run.row() for run in PLANNED])
RUNS = {run.spec.run_id: run for run in PLANNED}
for dropped in DROPPED:
    print(f"plasticity-bench: dropped {dropped['algo']} × {dropped['arch']} × {dropped['method']} × "
          f"{dropped['task']} ({dropped['suite']}): {dropped['reason']}", file=sys.stderr)
# Training jobs: each trains config `seeds_per_job` runs of one cell (runs equal but for
# their seed; absent: all of the cell's seeds) in one process.
JOBS = {job.name: job for job in train_jobs(PLANNED, config.get("seeds_per_job"))}
print(f"plasticity-bench: {len(RUNS)} runs planned in {len(JOBS)} training jobs, {len(DROPPED)} combinations "
      "dropped", file=sys.stderr)

CONFIG_HASH = config_hash(config)
RESULTS = "results"
MATRIX = f"{RESULTS}/matrix-{CONFIG_HASH[:8]}.json"
AGGREGATE_DIR = f"{RESULTS}/aggregate/{CONFIG_HASH[:8]}"

# A training job's output is a small file written after its runs trained (their folders and
# manifests, results/runs/<run_id>/, are no Snakemake outputs). Once a run's manifest is gone
# (deleted to train a failed run again), its job's file goes too, so the job runs again; its
# other runs, completed, are not retrained.
JOB_DONE = f"{RESULTS}/jobs/{{job}}.done"
for job_name, job in JOBS.items():
    done = JOB_DONE.format(job=job_name)
    if os.path.exists(done) and not all(os.path.exists(f"{RESULTS}/runs/{run_id}/manifest.json")
                                        for run_id in job.run_ids):
        os.remove(done)


# Every job re-reads this file (a SLURM job in its own process, maybe minutes later): the
# version named when the workflow started travels to them in the environment (sbatch
# exports it), so a commit made while the workflow runs cannot rename the report under it.
REPORT_VERSION_VARIABLE = f"PLASTICITY_BENCH_REPORT_VERSION_{CONFIG_HASH[:8]}"


def report_version():
    """Package version + config hash + code commit (provenance.default_version, the CLI's name
    for the same report): other code or another config is always a new report directory."""
    if os.environ.get(REPORT_VERSION_VARIABLE):
        return os.environ[REPORT_VERSION_VARIABLE]
    version = default_version(CONFIG_HASH, config["reports_dir"])
    os.environ[REPORT_VERSION_VARIABLE] = version
    return version


REPORT_VERSION = report_version()
REPORT_DIR = f"{config['reports_dir']}/{REPORT_VERSION}"
# The published report is not a Snakemake output: Snakemake deletes a job's outputs before
# a forced rerun and after a failure, and a published report must survive both. The rule's
# output is this copy of it (for `snakemake --report`); once the published one is gone
# (moved away to rebuild it), the copy goes too, so the rule runs again.
def report_copy():
    """Where the rule's copy goes: never the published folder nor inside or around it, whatever
    reports_dir says (with reports_dir: results/reports the copy would be the published report,
    which Snakemake deletes with a failed job's output)."""
    published = os.path.abspath(REPORT_DIR)

    def apart(root):  # two sibling roots: the published folder can overlap one of them at most
        copy = os.path.abspath(f"{root}/{REPORT_VERSION}")
        return copy != published and not copy.startswith(published + os.sep) and not published.startswith(copy + os.sep)

    root = next(root for root in (f"{RESULTS}/reports", f"{RESULTS}/report-copies") if apart(root))
    return f"{root}/{REPORT_VERSION}"


REPORT_COPY = report_copy()
# `snakemake --report` renders the report rule's output: before any training there is none,
# and Snakemake's own answer is a bare missing-file error.
if any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv[1:]) and not os.path.isdir(REPORT_COPY):
    sys.exit(f"error: nothing to report yet: {REPORT_COPY} does not exist; run the workflow first "
             "(snakemake --cores all, with the same --configfile), then snakemake --report")
if os.path.isdir(REPORT_COPY) and not os.path.isdir(REPORT_DIR):
    shutil.rmtree(REPORT_COPY)
