#!/usr/bin/env bash
# Real SLURM run of the smoke workflow on this one machine (root, Debian/Ubuntu):
#   1. installs slurm-wlm + munge with apt unless present,
#   2. writes /etc/slurm/slurm.conf (this host as controller and only node, all its CPUs,
#      90% of its memory, no accounting database: job completion records go to a text
#      file that `sacct --completion` reads) and starts munged, slurmctld, slurmd unless
#      they already run with this configuration,
#   3. waits for the node to be idle,
#   4. runs the smoke config in a fresh temporary folder through
#      snakemake --profile workflow/profiles/slurm (executor slurm, status from squeue),
#   5. checks that every job went through sbatch (the plugin's submission lines, one
#      SLURM log per job, each job id COMPLETED in sacct's completion records) and that
#      the report was written, then prints a summary.
# The venv's snakemake is used (SNAKEMAKE overrides); KEEP_WORKDIR=1 keeps the run folder.
# --setup-only stops after step 3 (a running one-machine SLURM for trying the profile).
set -euo pipefail
SETUP_ONLY=0
[ "${1:-}" = --setup-only ] && SETUP_ONLY=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SNAKEMAKE=${SNAKEMAKE:-$ROOT/.venv/bin/snakemake}
CONFIG=${CONFIG:-$ROOT/workflow/config/smoke.yaml}
[ "$(id -u)" -eq 0 ] || { echo "slurm_smoke: must run as root (it installs and starts SLURM)" >&2; exit 2; }
[ -x "$SNAKEMAKE" ] || { echo "slurm_smoke: no snakemake at $SNAKEMAKE (run scripts/setup.sh)" >&2; exit 2; }
t0=$(date +%s)

# ---- 1. packages ---------------------------------------------------------------------
if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v munged > /dev/null; then
    echo "slurm_smoke: installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge > /dev/null
fi

# ---- 2. configuration and daemons ----------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
MEMORY_MB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
CONF_DIR=/etc/slurm
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
CONF=$(cat <<EOF
# Written by plasticity-bench scripts/slurm_smoke.sh: one machine, controller and node.
ClusterName=plasticitybench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=3600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
restart=0
if [ ! -f "$CONF_DIR/slurm.conf" ] || [ "$(cat "$CONF_DIR/slurm.conf")" != "$CONF" ]; then
    printf '%s\n' "$CONF" > "$CONF_DIR/slurm.conf"
    restart=1
fi

if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey > /dev/null; then mungekey --create --keyfile /etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
fi
chown munge:munge /etc/munge/munge.key /run/munge
chmod 400 /etc/munge/munge.key
if ! munge -n 2> /dev/null | unmunge > /dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    sleep 1
fi
munge -n | unmunge > /dev/null || { echo "slurm_smoke: munge does not work" >&2; exit 1; }

stop_daemon() {  # by the pid its own pid file names
    local pidfile=$1
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2> /dev/null; then
        kill "$(cat "$pidfile")"
        for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2> /dev/null || break; sleep 0.2; done
    fi
}
if [ "$restart" -eq 1 ]; then
    stop_daemon /run/slurmd.pid
    stop_daemon /run/slurmctld.pid
fi
if ! scontrol ping 2> /dev/null | grep -q UP; then slurmctld; fi
if ! { [ -f /run/slurmd.pid ] && kill -0 "$(cat /run/slurmd.pid)" 2> /dev/null; }; then slurmd; fi

# ---- 3. node idle --------------------------------------------------------------------
state=unknown
for _ in $(seq 60); do
    state=$(sinfo --noheader --nodes="$HOST" --format=%T 2> /dev/null | head -n 1 || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*) scontrol update NodeName="$HOST" State=RESUME 2> /dev/null || true ;;
    esac
    sleep 1
done
case "$state" in idle|mixed|allocated) ;; *)
    echo "slurm_smoke: node $HOST is '$state', not idle; see /var/log/slurm/slurmd.log" >&2; exit 1 ;;
esac
t_ready=$(date +%s)
echo "slurm_smoke: SLURM ready (node $HOST: $CPUS CPUs, ${MEMORY_MB} MB) after $((t_ready - t0)) s"
[ "$SETUP_ONLY" -eq 0 ] || exit 0

# ---- 4. the smoke workflow through sbatch --------------------------------------------
WORKDIR=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
[ "${KEEP_WORKDIR:-0}" = 1 ] || trap 'rm -rf "$WORKDIR"' EXIT
export PATH="$(dirname "$SNAKEMAKE"):$PATH"  # the jobs (sbatch --export=ALL) find plasticity-bench
cd "$WORKDIR"
"$SNAKEMAKE" --snakefile "$ROOT/Snakefile" --profile "$ROOT/workflow/profiles/slurm" --configfile "$CONFIG" \
    --slurm-keep-successful-logs --slurm-init-seconds-before-status-checks 5 > snakemake.log 2>&1 \
    || { tail -n 60 snakemake.log >&2; echo "slurm_smoke: the workflow failed (log above)" >&2; exit 1; }
t_done=$(date +%s)

# ---- 5. checks -----------------------------------------------------------------------
planned=$(grep -oP '^total\s+\K[0-9]+' snakemake.log | head -n 1)
local_jobs=$(grep -c '^localrule ' snakemake.log || true)
mapfile -t slurm_ids < <(grep -oP 'has been submitted with SLURM jobid \K[0-9]+' snakemake.log)
submitted=${#slurm_ids[@]}
logs=$(find .snakemake/slurm_logs -name '*.log' | wc -l)
# sacct reads the job completion records (JobCompType=jobcomp/filetxt): one line per job.
ids=$(IFS=,; echo "${slurm_ids[*]}")
sacct --completion --noheader --parsable2 --format=JobID,JobName,State,Elapsed --jobs="$ids" > sacct.txt
completed=$(awk -F'|' '$3 == "COMPLETED"' sacct.txt | wc -l)
awk -F'|' '$3 != "COMPLETED" { print "slurm_smoke: SLURM job " $1 " is " $3 }' sacct.txt >&2
report=$(find reports -name leaderboard.csv | head -n 1)

echo "slurm_smoke: $submitted of $planned jobs submitted with sbatch ($local_jobs local: the 'all' target)," \
     "$completed COMPLETED in sacct --completion, $logs SLURM job logs"
echo "slurm_smoke: sacct --completion, first records:"; head -n 3 sacct.txt | sed 's/^/    /'
echo "slurm_smoke: SLURM job ids ${slurm_ids[0]:-}..${slurm_ids[$((submitted - 1))]:-}"
echo "slurm_smoke: report ${report:-MISSING}"
echo "slurm_smoke: wall time $((t_done - t0)) s (SLURM setup $((t_ready - t0)) s, workflow $((t_done - t_ready)) s)"
[ "$submitted" -gt 0 ] && [ "$submitted" -eq $((planned - local_jobs)) ] \
    || { echo "slurm_smoke: FAIL: expected $((planned - local_jobs)) sbatch submissions, saw $submitted" >&2; exit 1; }
[ "$completed" -eq "$submitted" ] || { echo "slurm_smoke: FAIL: not every SLURM job completed" >&2; exit 1; }
[ "$logs" -eq "$submitted" ] || { echo "slurm_smoke: FAIL: $logs SLURM logs for $submitted jobs" >&2; exit 1; }
[ -n "$report" ] || { echo "slurm_smoke: FAIL: no reports/*/leaderboard.csv" >&2; exit 1; }
echo "slurm_smoke: OK"
