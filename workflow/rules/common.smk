# Validate the config, expand it into runs and name this configuration's outputs.
import os
import sys

from snakemake.utils import validate

from plasticity_bench.provenance import code_version
from plasticity_bench.report import default_version
from plasticity_bench.matrix import config_hash, expand as expand_config

validate(config, "../schemas/config.schema.yaml")

PLANNED, DROPPED = expand_config(config)
RUNS = {run.spec.run_id: run for run in PLANNED}
for dropped in DROPPED:
    print(f"plasticity-bench: dropped {dropped['algo']} × {dropped['arch']} × {dropped['method']} × "
          f"{dropped['task']} ({dropped['suite']}): {dropped['reason']}", file=sys.stderr)
print(f"plasticity-bench: {len(RUNS)} runs planned, {len(DROPPED)} combinations dropped", file=sys.stderr)

CONFIG_HASH = config_hash(config)
RESULTS = "results"
MATRIX = f"{RESULTS}/matrix-{CONFIG_HASH[:8]}.json"
AGGREGATE_DIR = f"{RESULTS}/aggregate/{CONFIG_HASH[:8]}"


# Every job re-reads this file (a SLURM job in its own process, maybe minutes later): the
# version named when the workflow started travels to them in the environment (sbatch
# exports it), so a commit made while the workflow runs cannot rename the report under it.
REPORT_VERSION_VARIABLE = f"PLASTICITY_BENCH_REPORT_VERSION_{CONFIG_HASH[:8]}"


def report_version():
    """Package version + config hash + code commit: other code or another config is always
    a new report directory, so a published report is never overwritten."""
    if os.environ.get(REPORT_VERSION_VARIABLE):
        return os.environ[REPORT_VERSION_VARIABLE]
    code = code_version(exclude=config["reports_dir"])
    version = default_version(CONFIG_HASH)
    if code["git_sha"]:
        version += f"-{code['git_sha'][:7]}" + ("-dirty" if code["git_dirty"] else "")
    os.environ[REPORT_VERSION_VARIABLE] = version
    return version


REPORT_DIR = f"{config['reports_dir']}/{report_version()}"
