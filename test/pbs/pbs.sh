#!/usr/bin/env bash
# A real OpenPBS server on this host, for slurmkit's PBS tests
# (the recipe of ../shared/pbs-test-server.md).
#
#   pbs.sh up       build /opt/pbs from the vendored source if it is not that version, start it, wait for both nodes
#   pbs.sh down     stop the server this script started, and remove its network namespace
#   pbs.sh status   exit 0 only when the server answers, a node is free and the second node is up
#   pbs.sh env      print 'export PATH=<shims>:$PATH' (qsub, qstat, ... that reach the server)
#   pbs.sh source   print the source tarball's path; exit 1 with how to get it when it is absent
#
# PBS refuses a host name that resolves to 127.x, so it runs inside a private
# network namespace (skpbs) whose own lo holds 10.123.0.1 (pbshost) and
# 10.123.0.2 (pbshost2, a second MoM: jobs of two nodes). Client commands
# reach it through shims in $S/bin. The machine's /etc/hosts is never
# touched; /etc/pbs.conf, /etc/pbs2.conf, /var/spool/pbs and /var/spool/pbs2 are PBS's own and are written here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../.." && pwd)
S=${SLURMKIT_PBS_DIR:-$project/.pbs}
VERSION=23.06.06-cd7ab5e
SHA256=22230b98ed7e9aea0792d7ab958e839911ca89119509726acbc1e92ca7c18b46
# The vendored source beside the project (../shared/vendor), or where SLURMKIT_PBS_SOURCE says.
SOURCE=${SLURMKIT_PBS_SOURCE:-$project/../shared/vendor/openpbs-$VERSION.tar.gz}
if [[ -z ${SLURMKIT_PBS_SOURCE:-} && ! -f $SOURCE && -f /work/shared/vendor/openpbs-$VERSION.tar.gz ]]; then
  SOURCE=/work/shared/vendor/openpbs-$VERSION.tar.gz # a checkout elsewhere on a machine that has the shared folder
fi
NS=skpbs
ADDR=10.123.0.1
# A second MoM, so that jobs can span two hosts: its own host name (a UTS namespace), address, ports and PBS_HOME.
ADDR2=10.123.0.2
MOM2_HOME=/var/spool/pbs2
MOM2_PORTS=(15011 15012)
PREFIX=/opt/pbs
COMMANDS=(qsub qstat qselect qdel qhold qrls qrerun qalter qsig qmgr pbsnodes tracejob pbs_rstat)
PACKAGES=(gcc g++ make libtool autoconf automake pkg-config libhwloc-dev libx11-dev libxt-dev libedit-dev libical-dev
  libncurses-dev perl postgresql-server-dev-all postgresql-contrib python3-dev tcl-dev tk-dev swig libexpat1-dev
  libssl-dev libxext-dev libxft-dev libcjson-dev iproute2)

say() { printf 'pbs: %s\n' "$*" >&2; }
die() { printf 'pbs: error: %s\n' "$*" >&2; exit 1; }
in_ns() { ip netns exec "$NS" "$@"; }

need_root() {
  [[ $(id -u) == 0 ]] || die "this needs root (it builds into $PREFIX, makes a network namespace and starts PBS's daemons); you are $(id -un)"
}

cmd_source() {
  if [[ -f $SOURCE ]]; then
    echo "$SOURCE"
    return 0
  fi
  say "no OpenPBS source at $SOURCE. Put openpbs-$VERSION.tar.gz there (OpenPBS 23.06.06, commit cd7ab5e, from https://github.com/openpbs/openpbs), or set SLURMKIT_PBS_SOURCE to its path"
  return 1
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
  say "installing ${#missing[@]} packages for the build"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$S/log/apt.log" 2>&1 || die "apt-get update failed; see $S/log/apt.log"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$S/log/apt.log" 2>&1 || die "apt-get install failed; see $S/log/apt.log"
}

built() { [[ -x $PREFIX/bin/qstat && $(cat "$PREFIX/.slurmkit-version" 2>/dev/null) == "$VERSION" ]]; }

build() {
  built && return 0
  local src
  src=$(cmd_source) || exit 1
  echo "$SHA256  $src" | sha256sum -c --quiet - >/dev/null 2>&1 || die "$src is not the expected tarball (sha256 $SHA256)"
  install_packages
  say "building OpenPBS $VERSION into $PREFIX (about 3 minutes on 2 cores); log: $S/log/build.log"
  rm -rf "$S/build" && mkdir -p "$S/build"
  tar -xzf "$src" -C "$S/build"
  (cd "$S/build/openpbs" && ./autogen.sh && ./configure --prefix="$PREFIX" && make -j"$(nproc)" && make install) \
    >"$S/log/build.log" 2>&1 || die "the build failed; see $S/log/build.log"
  echo "$VERSION" >"$PREFIX/.slurmkit-version"
  rm -rf "$S/build"
}

write_shims() {
  mkdir -p "$S/bin"
  local c
  for c in "${COMMANDS[@]}"; do
    printf '#!/bin/sh\nexec ip netns exec %s %s/bin/%s "$@"\n' "$NS" "$PREFIX" "$c" >"$S/bin/$c.new"
    chmod 755 "$S/bin/$c.new"
    mv "$S/bin/$c.new" "$S/bin/$c"
  done
}

make_namespace() {
  if ! ip netns list | grep -qw "$NS"; then
    ip netns add "$NS"
  fi
  in_ns ip link set lo up
  in_ns ip addr show dev lo | grep -q "$ADDR/32" || in_ns ip addr add "$ADDR/32" dev lo
  in_ns ip addr show dev lo | grep -q "$ADDR2/32" || in_ns ip addr add "$ADDR2/32" dev lo
  mkdir -p "/etc/netns/$NS"
  printf '127.0.0.1 localhost\n%s pbshost %s\n%s pbshost2\n' "$ADDR" "$(hostname)" "$ADDR2" >"/etc/netns/$NS/hosts"
}

mom2_pid() { # the second MoM's pid, if it runs
  local pid
  pid=$(cat "$MOM2_HOME/mom_priv/mom.lock" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_mom2() { # idempotent
  mom2_pid >/dev/null && return 0
  local d
  for d in aux checkpoint mom_logs spool undelivered mom_priv mom_priv/jobs mom_priv/hooks mom_priv/hooks/tmp; do
    mkdir -p "$MOM2_HOME/$d"
    chmod --reference="/var/spool/pbs/$d" "$MOM2_HOME/$d"
  done
  chmod 755 "$MOM2_HOME"
  cp /var/spool/pbs/mom_priv/config "$MOM2_HOME/mom_priv/config"
  # Its jobs' $TMPDIR apart from the first MoM's, as on another machine.
  mkdir -p /var/tmp/pbs2 && chmod 1777 /var/tmp/pbs2
  # shellcheck disable=SC2016 # a literal $tmpdir line
  printf '%s /var/tmp/pbs2\n' '$tmpdir' >>"$MOM2_HOME/mom_priv/config"
  cp /var/spool/pbs/pbs_environment "$MOM2_HOME/pbs_environment"
  sed -e "s#^PBS_HOME=.*#PBS_HOME=$MOM2_HOME#" -e 's#^PBS_LEAF_NAME=.*#PBS_LEAF_NAME=pbshost2#' -e 's#^PBS_MOM_NODE_NAME=.*#PBS_MOM_NODE_NAME=pbshost2#' \
    -e 's#^PBS_START_\(SERVER\|SCHED\|COMM\)=1#PBS_START_\1=0#' /etc/pbs.conf >/etc/pbs2.conf
  # Its own host name, so that `hostname` on it says pbshost2, as on a second machine.
  # shellcheck disable=SC2016 # expanded by the inner sh
  unshare --uts sh -c 'hostname pbshost2; exec ip netns exec "$1" env PBS_CONF_FILE=/etc/pbs2.conf "$2/sbin/pbs_mom" -M "$3" -R "$4" -d "$5"' \
    pbs-mom2 "$NS" "$PREFIX" "${MOM2_PORTS[0]}" "${MOM2_PORTS[1]}" "$MOM2_HOME" >"$S/log/mom2.log" 2>&1 9>&- || die "the second MoM did not start; see $S/log/mom2.log"
  in_ns "$PREFIX/bin/qmgr" -c "create node pbshost2 port=${MOM2_PORTS[0]}" >/dev/null 2>&1 || true
}

stop_mom2() {
  local pid
  pid=$(mom2_pid) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}

configure() {
  cat >/etc/pbs.conf <<CONF
PBS_SERVER=pbshost
PBS_START_SERVER=1
PBS_START_SCHED=1
PBS_START_COMM=1
PBS_START_MOM=1
PBS_EXEC=$PREFIX
PBS_HOME=/var/spool/pbs
PBS_CORE_LIMIT=unlimited
PBS_SCP=/usr/bin/scp
PBS_LEAF_NAME=pbshost
PBS_MOM_NODE_NAME=pbshost
CONF
  if [[ ! -d /var/spool/pbs/server_priv ]]; then
    "$PREFIX/libexec/pbs_postinstall" >"$S/log/postinstall.log" 2>&1 || true
  fi
  chmod 4755 "$PREFIX/sbin/pbs_iff" "$PREFIX/sbin/pbs_rcp"
  # shellcheck disable=SC2016 # a literal $usecp line
  grep -q '^\$usecp' /var/spool/pbs/mom_priv/config 2>/dev/null || echo '$usecp *:/ /' >>/var/spool/pbs/mom_priv/config
}

answers() { in_ns "$PREFIX/bin/qstat" -B >/dev/null 2>&1; }
node_free() { in_ns "$PREFIX/bin/pbsnodes" -a 2>/dev/null | grep -q 'state = free'; }
# The second node is up (free, or running someone's jobs): its MoM runs and the server hears it.
mom2_ready() {
  local state
  mom2_pid >/dev/null || return 1
  state=$(in_ns "$PREFIX/bin/pbsnodes" pbshost2 2>/dev/null | sed -n 's/^ *state = //p')
  [[ -n $state && ! $state =~ down|offline|unknown|stale ]]
}
ready() { ip netns list 2>/dev/null | grep -qw "$NS" && answers && node_free && mom2_ready; }

wait_for() { # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    ((SECONDS >= deadline)) && { say "gave up waiting for $what; logs are in /var/spool/pbs/*_logs"; return 1; }
    sleep 1
  done
}

server_settings() { # idempotent
  local q
  for q in "set server job_history_enable = True" "set server scheduler_iteration = 5" "set server acl_roots = root"; do
    in_ns "$PREFIX/bin/qmgr" -c "$q"
  done
  # A second queue with a short walltime limit, for the tests of workers that run out of it.
  in_ns "$PREFIX/bin/qmgr" -c "create queue short queue_type = execution" >/dev/null 2>&1 || true
  for q in "set queue short resources_max.walltime = 00:02:00" "set queue short enabled = True" "set queue short started = True"; do
    in_ns "$PREFIX/bin/qmgr" -c "$q"
  done
}

cmd_up() {
  need_root
  mkdir -p "$S/log"
  build
  write_shims
  if ready; then
    server_settings
    say "already up"
    return 0
  fi
  if answers 2>/dev/null && node_free; then
    make_namespace
    start_mom2
    wait_for 120 "the second node" mom2_ready || die "the second node never came up; see $MOM2_HOME/mom_logs"
    server_settings
    say "already up; started the second MoM"
    return 0
  fi
  make_namespace
  configure
  say "starting PBS in network namespace $NS"
  in_ns /etc/init.d/pbs start >"$S/log/start.log" 2>&1 9>&- || {
    # A failed first start leaves /var/spool/pbs half made: make it again once.
    say "the first start failed; making /var/spool/pbs again"
    in_ns /etc/init.d/pbs stop >>"$S/log/start.log" 2>&1 9>&- || true
    rm -rf /var/spool/pbs
    configure
    in_ns /etc/init.d/pbs start >>"$S/log/start.log" 2>&1 9>&- || die "PBS did not start; see $S/log/start.log"
  }
  wait_for 60 "the server" answers
  server_settings
  touch "$S/started"
  wait_for 120 "a free node" node_free || die "the node never became free"
  start_mom2
  wait_for 120 "the second node" mom2_ready || die "the second node never came up; see $MOM2_HOME/mom_logs"
  say "up: nodes pbshost and pbshost2, $(in_ns "$PREFIX/bin/pbsnodes" -a | grep -m1 'resources_available.ncpus' | tr -d ' ') each"
}

cmd_down() {
  need_root
  stop_mom2
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    in_ns /etc/init.d/pbs stop >"$S/log/stop.log" 2>&1 || true
    ip netns del "$NS" || true
  fi
  rm -rf "/etc/netns/$NS" "$S/started"
  say "down"
}

lock() {
  mkdir -p "$S"
  exec 9>"$S/.lock"
  flock -w 900 9 || die "another pbs.sh held $S/.lock for 15 minutes"
}

case ${1:-} in
up) lock; cmd_up ;;
down) lock; cmd_down ;;
status) ready ;;
env) echo "export PATH=$(printf '%q' "$S/bin"):\$PATH" ;;
source) cmd_source ;;
*) die "usage: pbs.sh up | down | status | env | source" ;;
esac
