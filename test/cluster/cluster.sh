#!/usr/bin/env bash
# A real two-node Slurm cluster on this host, for slurmkit's tests.
#
#   cluster.sh up [--accounting on|off]   install what is missing, start, wait until ready
#   cluster.sh down                       stop the daemons this script started, by pid
#   cluster.sh status                     say what runs; exit 0 only when the cluster is ready
#   cluster.sh accounting on|off          restart slurmctld with or without slurmdbd accounting
#   cluster.sh env                        print 'export SLURM_CONF=...'
#   cluster.sh podman                     print the CONTAINERS_CONF and image the container tests use (podman, runc, busybox)
#
# Everything lives under $SLURMKIT_CLUSTER_DIR (default: <project>/.cluster).
# munged, MariaDB, slurmdbd, slurmctld and the slurmds n1 and n2 are private to
# that folder: own sockets, ports, pid files and logs. Nothing in /etc is changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../.." && pwd)
S=${SLURMKIT_CLUSTER_DIR:-$project/.cluster}
export SLURM_CONF="$S/etc/slurm.conf"

CTLD_PORT=17817
DBD_PORT=17819
MYSQL_PORT=17306
NODE_PORTS=(17001 17002)
NODES=(n1 n2)
DB_PASS=slurmkit-test-only
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server lmod python3-venv zip unzip shellcheck openssh-server python3-msgpack tmux podman runc busybox-static)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

pid_alive() { # pidfile: true if its pid runs the daemon the file is named for (a reused pid does not count)
  local pid name
  [[ -s $1 ]] || return 1
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  name=$(basename "$1" .pid)
  name=${name%%-n[0-9]*}
  [[ $name == mysqld ]] && name=mariadbd
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

wait_for() { # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2 limit=$1
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      say "gave up waiting for $what after ${limit}s; logs are in $S/log"
      return 1
    fi
    sleep 0.5
  done
}

need_root() {
  [[ $(id -u) == 0 ]] || die "this needs root (it starts munged, MariaDB and Slurm daemons as root); you are $(id -un)"
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$S/log/apt.log" 2>&1 || die "apt-get update failed; see $S/log/apt.log"
  apt-get install -y -q "${missing[@]}" >>"$S/log/apt.log" 2>&1 || die "apt-get install failed; see $S/log/apt.log"
}

write_config() { # accounting: on|off
  local host accounting_type
  host=$(hostname)
  if [[ $1 == on ]]; then accounting_type=accounting_storage/slurmdbd; else accounting_type=accounting_storage/none; fi
  mkdir -p "$S/etc" "$S/state/slurmctld" "$S/state/slurmd" "$S/log" "$S/run" "$S/munge" "$S/tmp"
  cat >"$S/etc/slurm.conf.new" <<EOF
# Written by test/cluster/cluster.sh; accounting=$1
ClusterName=local
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$S/state/slurmctld
SlurmdSpoolDir=$S/state/slurmd/%n
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd-%n.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
# A node whose slurmd stops answering is DOWN (its jobs NODE_FAIL) after 20 s,
# not the default 300, so the slurmd fault drill ends in time.
SlurmdTimeout=20
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,batch_sched_delay=0
AccountingStorageType=$accounting_type
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1
MpiDefault=none
MailProg=/bin/true
TaskProlog=$S/etc/taskprolog.sh
GresTypes=gpu
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=${NODE_PORTS[0]} CPUs=2 RealMemory=4000 Gres=gpu:2
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=${NODE_PORTS[1]} CPUs=2 RealMemory=4000 Gres=gpu:2
# Preemption: a job in high preempts one in low on the same nodes; low's jobs
# get their --signal at once (preempt_send_user_signal), and GraceTime seconds
# later TERM, then are requeued. debug and short are never preempted.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP PreemptMode=OFF
PartitionName=short Nodes=n1,n2 MaxTime=2 State=UP PreemptMode=OFF
PartitionName=low Nodes=n1,n2 MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=20
PartitionName=high Nodes=n1,n2 MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
  # Two GPUs per node on stand-in character devices: Slurm schedules them and
  # sets CUDA_VISIBLE_DEVICES, as on a GPU node.
  cat >"$S/etc/gres.conf.new" <<EOF
NodeName=n1 Name=gpu File=$S/gpu/n1-gpu[0-1]
NodeName=n2 Name=gpu File=$S/gpu/n2-gpu[0-1]
EOF
  make_gpu_devices
  install_config slurm.conf
  install_config gres.conf

  cat >"$S/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$S/log/slurmdbd.log
PidFile=$S/run/slurmdbd.pid
EOF
  chmod 600 "$S/etc/slurmdbd.conf"

  # Slurm does not set SLURM_TMPDIR; sites do. Each node gets its own scratch.
  cat >"$S/etc/taskprolog.sh" <<EOF
#!/bin/sh
d=$S/tmp/\$SLURMD_NODENAME/\$SLURM_JOB_ID
mkdir -p "\$d"
echo "export SLURM_TMPDIR=\$d"
EOF
  chmod 755 "$S/etc/taskprolog.sh"
}

make_gpu_devices() {
  local n i minor=3
  mkdir -p "$S/gpu"
  for n in "${NODES[@]}"; do
    for i in 0 1; do
      [[ -c $S/gpu/$n-gpu$i ]] || { rm -f "$S/gpu/$n-gpu$i"; mknod "$S/gpu/$n-gpu$i" c 1 $minor; }
      minor=$((minor + 2))
    done
  done
}

install_config() { # name: move etc/<name>.new into place; note a change that the daemons must restart for
  if ! cmp -s "$S/etc/$1.new" "$S/etc/$1"; then
    [[ -f $S/etc/$1 ]] && : >"$S/run/restart-needed"
    mv "$S/etc/$1.new" "$S/etc/$1"
  else
    rm -f "$S/etc/$1.new"
  fi
}

restart_if_config_changed() {
  # GRES and partition changes need slurmctld and the slurmds restarted, not only reconfigured.
  [[ -f $S/run/restart-needed ]] || return 0
  local f
  for f in slurmd-n1 slurmd-n2 slurmctld; do
    if pid_alive "$S/run/$f.pid"; then
      say "restarting $f for the changed configuration"
      stop_pidfile "$S/run/$f.pid" "$f"
    fi
  done
  rm -f "$S/run/restart-needed"
}

config_current() { # accounting: true when writing the config again would change nothing
  local saved=$S/etc/.saved same=0
  mkdir -p "$saved"
  cp -p "$S/etc/slurm.conf" "$S/etc/gres.conf" "$saved/" 2>/dev/null || return 1
  write_config "$1"
  cmp -s "$S/etc/slurm.conf" "$saved/slurm.conf" && cmp -s "$S/etc/gres.conf" "$saved/gres.conf" && same=1
  ((same)) && rm -f "$S/run/restart-needed"
  ((same))
}

accounting_mode() {
  if grep -q '^AccountingStorageType=accounting_storage/none' "$SLURM_CONF" 2>/dev/null; then echo off; else echo on; fi
}

mysql_q() { mariadb --no-defaults -uroot --socket="$S/run/mysql.sock" -e "$1"; }

munge_works() { munge -n | unmunge >/dev/null; }

start_munge() {
  # Slurm's client connections to slurmdbd ignore AuthInfo=socket=, so munged
  # must serve the default socket. One that already answers there is used as
  # it is and never stopped by this script.
  pid_alive "$S/run/munged.pid" && return 0
  if munge_works 2>/dev/null; then
    say "using the munged already running on the default socket"
    return 0
  fi
  if [[ ! -s $S/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of="$S/munge/munge.key" status=none
  fi
  chmod 700 "$S/munge"
  chmod 400 "$S/munge/munge.key"
  mkdir -p /run/munge
  say "starting munged"
  munged --force --key-file="$S/munge/munge.key" \
    --pid-file="$S/run/munged.pid" --log-file="$S/log/munged.log" --seed-file="$S/munge/munged.seed" \
    2>>"$S/log/munged.log" 9>&- || die "munged did not start; see $S/log/munged.log"
  wait_for 20 munged munge_works
}

start_mysql() {
  pid_alive "$S/run/mysqld.pid" && return 0
  if [[ ! -d $S/mysql/mysql ]]; then
    say "initialising MariaDB in $S/mysql"
    mariadb-install-db --no-defaults --user=root --datadir="$S/mysql" --auth-root-authentication-method=socket \
      >"$S/log/mysql-install.log" 2>&1 || die "mariadb-install-db failed; see $S/log/mysql-install.log"
  fi
  say "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  setsid /usr/sbin/mariadbd --no-defaults --user=root --datadir="$S/mysql" --socket="$S/run/mysql.sock" \
    --port=$MYSQL_PORT --bind-address=127.0.0.1 --pid-file="$S/run/mysqld.pid" \
    --log-error="$S/log/mysqld.log" --skip-name-resolve </dev/null >/dev/null 2>&1 9>&- &
  wait_for 60 MariaDB mysql_q 'SELECT 1'
  mysql_q "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
  pid_alive "$S/run/slurmdbd.pid" && return 0
  say "starting slurmdbd"
  slurmdbd >>"$S/log/slurmdbd.out" 2>&1 9>&- || die "slurmdbd did not start; see $S/log/slurmdbd.log"
  wait_for 60 slurmdbd sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx local; then
    sacctmgr -i add cluster local >/dev/null
  fi
  if ! sacctmgr -n -P list account format=account | grep -qx default; then
    sacctmgr -i add account default cluster=local >/dev/null
  fi
  if ! sacctmgr -n -P list user format=user | grep -qx root; then
    sacctmgr -i add user root account=default >/dev/null
  fi
}

start_slurmctld() {
  pid_alive "$S/run/slurmctld.pid" && return 0
  say "starting slurmctld (accounting $(accounting_mode))"
  slurmctld >>"$S/log/slurmctld.out" 2>&1 9>&- || die "slurmctld did not start; see $S/log/slurmctld.log"
  wait_for 60 slurmctld scontrol ping
}

start_slurmds() {
  local n
  for n in "${NODES[@]}"; do
    pid_alive "$S/run/slurmd-$n.pid" && continue
    say "starting slurmd $n"
    mkdir -p "$S/state/slurmd/$n"
    slurmd -N "$n" >>"$S/log/slurmd-$n.out" 2>&1 9>&- || die "slurmd $n did not start; see $S/log/slurmd-$n.log"
  done
}

resume_nodes() {
  # A node left down or drained by an earlier run comes back.
  local n state
  for n in "${NODES[@]}"; do
    state=$(sinfo -h -N -n "$n" -o '%T' 2>/dev/null | head -n 1)
    case $state in
    down* | drain* | fail*) scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true ;;
    esac
  done
}

sacct_ready() {
  [[ $(accounting_mode) == off ]] || sacct -n -X -S now-1minute >/dev/null 2>&1
}

all_pids_alive() {
  local f
  munge_works 2>/dev/null || return 1
  for f in mysqld slurmdbd slurmctld slurmd-n1 slurmd-n2; do
    pid_alive "$S/run/$f.pid" || return 1
  done
}

ready() {
  all_pids_alive && scontrol ping >/dev/null 2>&1 && nodes_idle_or_busy && sacct_ready
}

nodes_idle_or_busy() {
  # Ready means both nodes registered and usable, whether or not jobs run on them.
  local states
  states=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u) || return 1
  [[ $(grep -cE '^n[12] (idle|mixed|allocated|completing)$' <<<"$states") == 2 ]]
}

cmd_up() {
  local accounting=on
  while (($#)); do
    case $1 in
    --accounting) accounting=${2:?--accounting needs on or off}; shift 2 ;;
    *) die "unknown option '$1' for up; accepted: --accounting on|off" ;;
    esac
  done
  [[ $accounting == on || $accounting == off ]] || die "--accounting must be on or off, got '$accounting'"
  if [[ -f $SLURM_CONF ]] && ready && [[ $(accounting_mode) == "$accounting" ]] && [[ ! -f $S/run/restart-needed ]] && config_current "$accounting"; then
    # Packages the tests use beside the cluster (python3-msgpack, tmux) may be newer than the cluster itself.
    if [[ $(id -u) == 0 ]]; then install_packages && podman_ready; fi
    say "already up (SLURM_CONF=$SLURM_CONF, accounting $accounting)"
    return 0
  fi
  need_root
  mkdir -p "$S/log" "$S/run"
  install_packages
  if [[ ! -f $SLURM_CONF ]] || [[ $(accounting_mode) != "$accounting" ]]; then
    write_config "$accounting"
    # slurmctld must re-read a changed config; the slurmds follow on reconfigure.
    if pid_alive "$S/run/slurmctld.pid"; then stop_pidfile "$S/run/slurmctld.pid" slurmctld; fi
  else
    write_config "$accounting"
  fi
  restart_if_config_changed
  start_munge
  start_mysql
  start_slurmdbd
  start_slurmctld
  start_slurmds
  scontrol reconfigure >/dev/null 2>&1 || true
  resume_nodes
  wait_for 90 "both nodes idle" nodes_idle_or_busy || die "nodes did not become idle: $(sinfo -N 2>&1 | tr '\n' ' ')"
  wait_for 60 "sacct" sacct_ready || die "sacct does not answer: $(sacct -n -X 2>&1 | head -n 1)"
  podman_ready
  say "up: nodes n1 n2, accounting $accounting, SLURM_CONF=$SLURM_CONF"
}

# Podman for the container tests, configured in a private file (CONTAINERS_CONF), never in /etc:
# runc (crun refuses these machines' hybrid cgroups) and explicit ulimits (the defaults fail at setrlimit).
PODMAN_IMAGE=localhost/slurmkit-test:busybox-1
podman_ready() {
  cat >"$S/containers.conf.new" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
  mv "$S/containers.conf.new" "$S/containers.conf"
  export CONTAINERS_CONF=$S/containers.conf
  podman image exists "$PODMAN_IMAGE" 2>/dev/null && return 0
  # An image without Node.js: a static busybox, a marker file, and nothing else (no registry is reachable).
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  local c
  for c in sh echo cat ls sleep env id ps kill pwd touch rm mkdir test true false head tr dd date seq grep wc cut; do ln -s busybox "$root/bin/$c"; done
  printf 'NAME="slurmkit test image"\nID=slurmkit-busybox\n' >"$root/etc/os-release"
  echo "inside the slurmkit test image" >"$root/etc/slurmkit-image"
  tar -C "$root" -c . | podman import --change 'ENV PATH=/bin' - "$PODMAN_IMAGE" >"$S/log/podman-import.log" 2>&1 || die "podman import failed; see $S/log/podman-import.log"
  rm -rf "$root"
  say "podman image $PODMAN_IMAGE built (CONTAINERS_CONF=$S/containers.conf)"
}

stop_pidfile() { # pidfile name
  local pid
  pid_alive "$1" || { rm -f "$1"; return 0; }
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30)) killed=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline && !killed)); then
      say "$2 (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      killed=1
    fi
    sleep 0.2
  done
  rm -f "$1"
}

cmd_down() {
  local f stopped=0
  [[ -d $S/run ]] || { say "nothing to stop (no $S/run)"; return 0; }
  for f in slurmd-n1 slurmd-n2 slurmctld slurmdbd mysqld munged; do
    if pid_alive "$S/run/$f.pid"; then
      say "stopping $f (pid $(cat "$S/run/$f.pid"))"
      stop_pidfile "$S/run/$f.pid" "$f"
      stopped=$((stopped + 1))
    fi
  done
  # slurmstepd processes of jobs still running belong to the slurmds' nodes.
  say "down ($stopped daemons stopped)"
}

cmd_status() {
  local f
  for f in munged mysqld slurmdbd slurmctld slurmd-n1 slurmd-n2; do
    if pid_alive "$S/run/$f.pid"; then echo "$f: running (pid $(cat "$S/run/$f.pid"))"; else echo "$f: stopped"; fi
  done
  echo "accounting: $(accounting_mode)"
  sinfo -N 2>&1 || true
  ready
}

cmd_accounting() {
  local mode=${1:-}
  [[ $mode == on || $mode == off ]] || die "accounting takes on or off, got '${mode}'"
  need_root
  [[ -f $SLURM_CONF ]] || die "the cluster was never started; run: cluster.sh up"
  if [[ $(accounting_mode) == "$mode" ]] && ready; then
    say "accounting already $mode"
    return 0
  fi
  write_config "$mode"
  stop_pidfile "$S/run/slurmctld.pid" slurmctld
  cmd_up --accounting "$mode"
}

lock() {
  # Two callers (say, two vitest projects) must not start daemons at once.
  mkdir -p "$S"
  # Daemons are started with 9>&- so that they do not inherit (and hold) the lock.
  exec 9>"$S/.lock"
  flock -w 600 9 || die "another cluster.sh held $S/.lock for 10 minutes"
}

case ${1:-} in
up) shift; lock; cmd_up "$@" ;;
down) lock; cmd_down ;;
status) cmd_status ;;
accounting) shift; lock; cmd_accounting "$@" ;;
env) echo "export SLURM_CONF=$(printf '%q' "$SLURM_CONF")" ;;
podman) echo "export CONTAINERS_CONF=$(printf '%q' "$S/containers.conf") PODMAN_IMAGE=$PODMAN_IMAGE" ;;
*) die "usage: cluster.sh up [--accounting on|off] | down | status | accounting on|off | env" ;;
esac
