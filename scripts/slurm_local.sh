#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the cluster path's tests and for trying
# a sweep as it would run on an institution's cluster (docs/training.md, "Running on a
# cluster"). Run as root (Debian/Ubuntu):
#   scripts/slurm_local.sh          # install if missing, configure, start; waits until the node is idle
#   scripts/slurm_local.sh --stop   # stop exactly the daemons this script started
# Idempotent: a second start with the daemons running only checks the node. The partition
# is `local`. There is no accounting database: `sacct`, which submitit polls for job states,
# is answered by scripts/sacct_local (installed as /usr/local/bin/sacct while the cluster
# runs) from slurmctld's memory. State lives in $STATE (pids, logs).
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/fetal_dcgan_slurm}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SACCT_SHIM=/usr/local/bin/sacct
CONF=/etc/slurm/slurm.conf
PARTITION=local
HOST=$(hostname -s)

die() { echo "slurm_local: $*" >&2; exit 1; }
running() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

stop() {
    # Slurm daemons first, munge last; only the pids recorded by this script.
    for name in slurmd slurmctld munged; do
        if running "$name"; then
            pid=$(cat "$STATE/$name.pid")
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) did not stop"
            echo "stopped $name (pid $pid)"
        fi
        rm -f "$STATE/$name.pid"
    done
    if grep -qs "stand-in for \`sacct\`" "$SACCT_SHIM"; then rm -f "$SACCT_SHIM"; echo "removed $SACCT_SHIM"; fi
}

[[ ${1:-} == "--stop" ]] && { stop; exit 0; }
[[ ${1:-} == "" ]] || die "unknown option ${1}: use no option to start, --stop to stop"
[[ $(id -u) == 0 ]] || die "run as root: it installs packages and starts munged, slurmctld and slurmd"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sinfo >/dev/null; then
    echo "installing slurmctld slurmd slurm-client munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y slurmctld slurmd slurm-client munge >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y slurmctld slurmd \
             slurm-client munge >/dev/null; }
fi

mkdir -p "$STATE" /etc/slurm /var/spool/slurmctld /var/spool/slurmd /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
[[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key

# This host as the only node: its cores and memory (less 1 GB for the system).
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
cat > "$STATE/slurm.conf.new" <<EOF
# Written by scripts/slurm_local.sh: one node, this host.
ClusterName=fetal-dcgan-local
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
KillWait=10
MinJobAge=600
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
if ! cmp -s "$STATE/slurm.conf.new" "$CONF"; then
    running slurmctld && stop  # a changed configuration needs fresh daemons
    mv "$STATE/slurm.conf.new" "$CONF"
else
    rm "$STATE/slurm.conf.new"
fi

if ! running munged; then
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid >/dev/null
    for _ in $(seq 25); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.2; done
    cp /run/munge/munged.pid "$STATE/munged.pid"
    echo "started munged (pid $(cat "$STATE/munged.pid"))"
fi
if ! running slurmctld; then
    slurmctld -i  # -i: ignore state from an earlier cluster
    for _ in $(seq 50); do [[ -s "$STATE/slurmctld.pid" ]] && break; sleep 0.2; done
    echo "started slurmctld (pid $(cat "$STATE/slurmctld.pid"))"
fi
if ! running slurmd; then
    slurmd
    for _ in $(seq 50); do [[ -s "$STATE/slurmd.pid" ]] && break; sleep 0.2; done
    echo "started slurmd (pid $(cat "$STATE/slurmd.pid"))"
fi

if ! grep -qs "stand-in for \`sacct\`" "$SACCT_SHIM" && { sacct -n -j 1 2>&1 || true; } | grep -q "accounting storage is disabled"; then
    install -m 755 "$HERE/sacct_local" "$SACCT_SHIM"
    echo "installed $SACCT_SHIM (job states from scontrol; no accounting database)"
fi

for _ in $(seq 120); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
    case $state in
        idle|mix|alloc) echo "node $HOST is $state in partition $PARTITION ($CPUS cores, $MEM_MB MB)"; exit 0 ;;
        down*|drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
die "the node did not become idle in 60 s: see $STATE/slurmctld.log and $STATE/slurmd.log"
