#!/usr/bin/env bash
# OpenSSH servers on loopback in front of the test cluster, for the SSH transports' tests.
#
#   sshd.sh up             generate keys and config if missing, start the servers, wait until they answer
#   sshd.sh down           stop the servers and every session they serve
#   sshd.sh restart [s]    drop every connection, stay down s seconds (default 0), start again
#   sshd.sh status         exit 0 when every server answers
#   sshd.sh dir            print the folder with the keys, known_hosts, config and logs
#
# Three servers, each a login node of the test cluster (sessions get its SLURM_CONF):
#   127.0.0.1:2222  the login node: public keys (sshd.log)
#   127.0.0.1:2223  a bastion for ProxyJump: public keys (bastion.log)
#   127.0.0.1:2224  a login node with multifactor authentication, as the Alliance's:
#                   a public key, then a passcode asked through keyboard-interactive
#                   (PAM service slurmkit-mfa-sshd; the passcode is in mfa-passcode;
#                   every passcode checked is a line of mfa-checks.log) (mfa.log)
#
# Everything lives under $SLURMKIT_CLUSTER_DIR/ssh (default <project>/.cluster/ssh):
# hostkey, userkey (authorized), wrongkey (not authorized), otherhostkey (a
# host key the servers do not have), known_hosts (the servers' real key),
# openssh-config (an ssh_config with the aliases slurmkit-test, slurmkit-bastion,
# slurmkit-via-bastion and slurmkit-mfa), *_config, *.pid, *.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../.." && pwd)
C=${SLURMKIT_CLUSTER_DIR:-$project/.cluster}
D=$C/ssh
SERVERS=(sshd:2222 bastion:2223 mfa:2224)
PAM_SERVICE=slurmkit-mfa-sshd

say() { printf 'sshd: %s\n' "$*" >&2; }
die() { printf 'sshd: error: %s\n' "$*" >&2; exit 1; }

running_pid() { # running_pid NAME: the listener's pid, if it runs
  [[ -s $D/$1.pid ]] || return 1
  local pid
  pid=$(cat "$D/$1.pid")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q sshd || return 1
  echo "$pid"
}

answers() { # answers PORT: true when the server sends its SSH banner
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 4 <&3" 2>/dev/null | grep -q SSH-
}

server_config() { # server_config NAME PORT: the sshd_config of one server
  cat <<CONF
Port $2
ListenAddress 127.0.0.1
HostKey $D/hostkey
PidFile $D/$1.pid
AuthorizedKeysFile $D/authorized_keys
PasswordAuthentication no
StrictModes no
SetEnv SLURM_CONF=$C/etc/slurm.conf
ClientAliveInterval 5
Subsystem sftp internal-sftp
CONF
  if [[ $1 == mfa ]]; then
    cat <<CONF
UsePAM yes
KbdInteractiveAuthentication yes
AuthenticationMethods publickey,keyboard-interactive
PermitRootLogin yes
CONF
  else
    cat <<CONF
UsePAM no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CONF
  fi
}

client_config() { # the ssh_config a user of these servers would write
  local name host port
  for name in slurmkit-test:2222 slurmkit-bastion:2223 slurmkit-mfa:2224 slurmkit-via-bastion:2222; do
    host=${name%%:*} port=${name##*:}
    cat <<CONF
Host $host
  HostName 127.0.0.1
  Port $port
  User root
  IdentityFile $D/userkey
  IdentitiesOnly yes
  UserKnownHostsFile $D/known_hosts
  StrictHostKeyChecking yes
CONF
    [[ $host == slurmkit-via-bastion ]] && echo "  ProxyJump slurmkit-bastion"
  done
}

prepare() {
  [[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd is missing: apt-get install openssh-server (cluster.sh up installs it)"
  mkdir -p "$D" /run/sshd
  chmod 700 "$D"
  local k s
  for k in hostkey userkey wrongkey otherhostkey; do
    [[ -f $D/$k ]] || ssh-keygen -q -t ed25519 -N '' -C "slurmkit-test-$k" -f "$D/$k"
  done
  cp "$D/userkey.pub" "$D/authorized_keys"
  : >"$D/known_hosts"
  for s in "${SERVERS[@]}"; do
    printf '[127.0.0.1]:%s %s\n' "${s##*:}" "$(cut -d' ' -f1,2 "$D/hostkey.pub")" >>"$D/known_hosts"
    server_config "${s%%:*}" "${s##*:}" >"$D/${s%%:*}_config"
  done
  client_config >"$D/openssh-config"
  # The second factor: PAM asks for a passcode (keyboard-interactive) and a script checks it.
  # sshd names its PAM service after its program, so a link gives the MFA server its own.
  [[ -s $D/mfa-passcode ]] || echo 246810 >"$D/mfa-passcode"
  cat >"$D/mfa-check.sh" <<SCRIPT
#!/bin/sh
IFS= read -r code || true
code=\$(printf '%s' "\$code" | tr -d '\\000')
if [ "\$code" = "\$(cat "$D/mfa-passcode")" ]; then echo ok >>"$D/mfa-checks.log"; exit 0; fi
echo wrong >>"$D/mfa-checks.log"; exit 1
SCRIPT
  chmod 755 "$D/mfa-check.sh"
  cat >"/etc/pam.d/$PAM_SERVICE" <<PAM
# slurmkit's test MFA login node (test/ssh/sshd.sh): a passcode checked by a script.
auth     required pam_exec.so expose_authtok quiet $D/mfa-check.sh
auth     required pam_permit.so
account  required pam_permit.so
session  required pam_permit.so
password required pam_deny.so
PAM
  ln -sfn /usr/sbin/sshd "$D/$PAM_SERVICE"
}

start() { # start NAME PORT
  local program=/usr/sbin/sshd
  [[ $1 == mfa ]] && program=$D/$PAM_SERVICE
  "$program" -f "$D/$1_config" -E "$D/$1.log"
  for _ in $(seq 50); do answers "$2" && return; sleep 0.1; done
  die "sshd $1 did not answer on 127.0.0.1:$2; see $D/$1.log"
}

up() {
  local s all=yes
  for s in "${SERVERS[@]}"; do running_pid "${s%%:*}" >/dev/null && answers "${s##*:}" || all=no; done
  if [[ $all == yes ]]; then say "already up on 127.0.0.1:2222-2224"; return; fi
  down
  prepare
  for s in "${SERVERS[@]}"; do start "${s%%:*}" "${s##*:}"; done
  say "up on 127.0.0.1:2222 (login), 2223 (bastion), 2224 (MFA) ($D)"
}

down() {
  local s pid
  for s in "${SERVERS[@]}"; do
    if pid=$(running_pid "${s%%:*}"); then
      pkill -TERM -P "$pid" 2>/dev/null || true # the sessions it serves
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$D/${s%%:*}.pid"
  done
}

status() {
  local s
  for s in "${SERVERS[@]}"; do running_pid "${s%%:*}" >/dev/null && answers "${s##*:}" || return 1; done
}

case ${1:-} in
  up) up ;;
  down) down; say "down" ;;
  restart) down; sleep "${2:-0}"; up ;;
  status) status ;;
  dir) echo "$D" ;;
  *) die "usage: sshd.sh up|down|restart [seconds]|status|dir" ;;
esac
