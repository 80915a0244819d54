#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying the recipes and for the tests.
#
#   bash deploy/slurm/dev_cluster.sh start    # install if missing, configure, start, wait for idle
#   export SLURM_CONF=/var/tmp/hpo-slurm/slurm.conf   # printed by start: the client commands need it
#   bash deploy/slurm/dev_cluster.sh status
#   bash deploy/slurm/dev_cluster.sh stop     # end the daemons started here (by their PIDs)
#   bash deploy/slurm/dev_cluster.sh install  # only install the packages (what .ci/run does)
#
# Needs root (slurmd runs jobs as their users, munged and the packages need it). Debian's
# packages (slurmctld slurmd slurm-client munge) are installed when missing; their services
# are not used (they do not start in a container): the daemons run from a folder of our
# own, HPO_SLURM_DIR (default /var/tmp/hpo-slurm), with a slurm.conf of our own named by
# SLURM_CONF, so that nothing under /etc/slurm is touched. No cgroups are needed.
#
# Environment (all optional):
#   HPO_SLURM_DIR    the cluster's folder: config, state, logs, PID files
#   HPO_SLURM_PORT   slurmctld's port (default 6817); slurmd listens on the next one
#   HPO_SLURM_CPUS   CPUs the node offers (default: nproc); more than nproc oversubscribes
#   HPO_SLURM_REQUEUE_DELAY_S  how long a requeued job waits before it may run again
#                    (default 10; SLURM's own default is 120: cred_expire in AuthInfo)
set -euo pipefail

DIR=${HPO_SLURM_DIR:-/var/tmp/hpo-slurm}
PORT=${HPO_SLURM_PORT:-6817}
CPUS=${HPO_SLURM_CPUS:-$(nproc)}
REQUEUE_DELAY_S=${HPO_SLURM_REQUEUE_DELAY_S:-10}
PACKAGES=(slurmctld slurmd slurm-client munge)
MUNGE_SOCKET=/run/munge/munge.socket.2

die() { echo "dev_cluster: $*" >&2; exit 1; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them (Debian/Ubuntu only)"
    echo "dev_cluster: installing ${missing[*]}"
    # the packages' services would try to start and fail in a container: keep them down
    local policy=/usr/sbin/policy-rc.d ours=0
    if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy && ours=1; fi
    local log; log=$(mktemp)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; [ $ours -eq 0 ] || rm -f $policy
        die "could not install ${missing[*]}"
    fi
    rm -f "$log"
    [ $ours -eq 0 ] || rm -f $policy
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    # one munged per machine: use a running one (its socket answers), else start ours
    if munge -n --socket="$MUNGE_SOCKET" 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1; then return 0; fi
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid"  # ours to end at `stop`
    for _ in $(seq 50); do
        munge -n --socket="$MUNGE_SOCKET" 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munged did not answer on $MUNGE_SOCKET"
}

write_config() {
    local host mem
    host=$(hostname -s)
    mem=$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat > "$DIR/slurm.conf" <<CONF
# written by deploy/slurm/dev_cluster.sh: one node, this machine
ClusterName=hpo-dev
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
# cred_expire: also how long a requeued job waits before it may start again
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=$REQUEUE_DELAY_S
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# look at pending jobs every 2 s (default 60 s/30 s), so a requeued task starts when eligible
SchedulerParameters=sched_interval=2,bf_interval=2
MailProg=/bin/true
ReturnToService=2
# the node is what this file says (HPO_SLURM_CPUS may exceed nproc), not what slurmd finds
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    [ "$(id -u)" -eq 0 ] || die "needs root (slurmd and munged run as root/munge)"
    install_packages
    mkdir -p "$DIR"
    if alive "$DIR/slurmctld.pid" || alive "$DIR/slurmd.pid"; then
        die "already running from $DIR (bash $0 stop first)"
    fi
    start_munge
    write_config
    export SLURM_CONF=$DIR/slurm.conf
    # -D in a session of their own: they write their PID files, which `stop` reads;
    # -c: a fresh cluster, no jobs left from an earlier one in this folder
    setsid /usr/sbin/slurmctld -D -c -f "$SLURM_CONF" >>"$DIR/log/slurmctld.out" 2>&1 < /dev/null &
    setsid /usr/sbin/slurmd -D -f "$SLURM_CONF" >>"$DIR/log/slurmd.out" 2>&1 < /dev/null &
    for _ in $(seq 300); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
            echo "dev_cluster: up ($(sinfo -V), 1 node, $CPUS CPUs); export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    stop >/dev/null
    die "the node did not come up idle within 30 s (logs in $DIR/log)"
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        [ -f "$DIR/$name.pid" ] || continue
        pid=$(cat "$DIR/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
        rm -f "$DIR/$name.pid"
    done
    echo "dev_cluster: stopped ($DIR)"
}

status() {
    export SLURM_CONF=$DIR/slurm.conf
    [ -f "$SLURM_CONF" ] || die "no cluster configured in $DIR"
    sinfo
}

case "${1:-}" in
    install) [ "$(id -u)" -eq 0 ] || die "needs root to install packages"; install_packages ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
