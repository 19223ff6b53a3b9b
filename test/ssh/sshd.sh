#!/usr/bin/env bash
# An OpenSSH server on 127.0.0.1:2222 in front of the test cluster, for the SSH transport's tests.
#
#   sshd.sh up             generate keys and config if missing, start sshd, wait until it answers
#   sshd.sh down           stop sshd and every session it serves
#   sshd.sh restart [s]    drop every connection, stay down s seconds (default 0), start again
#   sshd.sh status         exit 0 when sshd answers
#   sshd.sh dir            print the folder with the keys, known_hosts and logs
#
# Everything lives under $SLURMKIT_CLUSTER_DIR/ssh (default <project>/.cluster/ssh):
# hostkey, userkey (authorized), wrongkey (not authorized), otherhostkey (a
# host key the server does not have), known_hosts (127.0.0.1:2222's real key),
# sshd_config, sshd.pid, sshd.log. Sessions get SLURM_CONF of the test cluster.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../.." && pwd)
C=${SLURMKIT_CLUSTER_DIR:-$project/.cluster}
D=$C/ssh
PORT=2222

say() { printf 'sshd: %s\n' "$*" >&2; }
die() { printf 'sshd: error: %s\n' "$*" >&2; exit 1; }

running_pid() { # the listener's pid, if it runs
  [[ -s $D/sshd.pid ]] || return 1
  local pid
  pid=$(cat "$D/sshd.pid")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q sshd || return 1
  echo "$pid"
}

answers() { # true when the server sends its SSH banner
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 4 <&3" 2>/dev/null | grep -q SSH-
}

prepare() {
  [[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd is missing: apt-get install openssh-server (cluster.sh up installs it)"
  mkdir -p "$D" /run/sshd
  chmod 700 "$D"
  local k
  for k in hostkey userkey wrongkey otherhostkey; do
    [[ -f $D/$k ]] || ssh-keygen -q -t ed25519 -N '' -C "slurmkit-test-$k" -f "$D/$k"
  done
  cp "$D/userkey.pub" "$D/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$D/hostkey.pub")" >"$D/known_hosts"
  cat >"$D/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/hostkey
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
SetEnv SLURM_CONF=$C/etc/slurm.conf
ClientAliveInterval 5
Subsystem sftp internal-sftp
CONF
}

up() {
  if running_pid >/dev/null && answers; then say "already up on 127.0.0.1:$PORT"; return; fi
  prepare
  /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
  for _ in $(seq 50); do answers && { say "up on 127.0.0.1:$PORT ($D)"; return; }; sleep 0.1; done
  die "sshd did not answer on 127.0.0.1:$PORT; see $D/sshd.log"
}

down() {
  local pid
  if pid=$(running_pid); then
    pkill -TERM -P "$pid" 2>/dev/null || true # the sessions it serves
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$D/sshd.pid"
}

case ${1:-} in
  up) up ;;
  down) down; say "down" ;;
  restart) down; sleep "${2:-0}"; up ;;
  status) running_pid >/dev/null && answers ;;
  dir) echo "$D" ;;
  *) die "usage: sshd.sh up|down|restart [seconds]|status|dir" ;;
esac
