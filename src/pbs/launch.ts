// How a PBS job runs bash on its other vnodes: pbsdsh, PBS's own task
// launcher (TM), which every PBS Pro and OpenPBS node has. Its tasks start
// in the home folder with PBS's variables only, and pbsdsh exits 0 whatever
// they do, so these helpers pass the batch shell's exported environment, its
// folder and its log files, and read a task's exit status from the line
// pbsdsh prints for it.
import { quoteShell } from "../base/shell.js";

/**
 * Bash run as each task (`bash -c`): DIR, OUT, ERR, SCRIPT, then the
 * script's arguments. It appends to the batch shell's log files, enters its
 * folder and evaluates SCRIPT.
 */
const TASK_WRAP = [
  'if [ -n "$2" ]; then exec >>"$2"; fi',
  'if [ -n "$3" ]; then exec 2>>"$3"; fi',
  'if ! cd -- "$1" 2>/dev/null; then echo "slurmkit: cannot enter $1 on $(hostname -s); running in /tmp" >&2; cd /tmp || exit 1; fi',
  "slurmkit_pbs_script=$4",
  "shift 4",
  'eval "$slurmkit_pbs_script"',
].join("\n");

/**
 * The bash functions the batch shell (and the rank launcher) use:
 *
 *     slurmkit_pbs_hosts        reads $PBS_NODEFILE: slurmkit_pbs_vnodes (a line per rank) and slurmkit_pbs_hosts (each host once)
 *     slurmkit_pbs_environment  slurmkit_pbs_env: this shell's exported variables, but those MoM sets per task and host ($TMPDIR)
 *     slurmkit_pbs_start FILE -n INDEX|-h HOST NAME=VALUE... -- SCRIPT ARGS...
 *                               starts SCRIPT as a task in the background (pid in slurmkit_pbs_pid), pbsdsh's output in FILE
 *     slurmkit_pbs_status FILE CODE
 *                               the task's exit status, from FILE and pbsdsh's exit CODE; pbsdsh's errors go to stderr
 *     slurmkit_pbs_on_hosts SCRIPT ARGS...
 *                               SCRIPT once on every host, as slurmkit_on_every_node does on several nodes
 */
const UNUSED = "# shellcheck disable=SC2317 # used by some scripts only";

export const PBS_TASK_HELPERS: readonly string[] = [
  `slurmkit_pbs_wrap=${quoteShell(TASK_WRAP)}`,
  UNUSED,
  "slurmkit_pbs_hosts() {",
  "  slurmkit_pbs_vnodes=()",
  "  slurmkit_pbs_hosts=()",
  "  local line known",
  '  if [ ! -r "${PBS_NODEFILE:-}" ]; then echo "slurmkit: cannot read \\$PBS_NODEFILE (${PBS_NODEFILE:-unset}) on $(hostname -s)" >&2; return 1; fi',
  '  while IFS= read -r line || [ -n "$line" ]; do',
  '    [ -n "$line" ] || continue',
  '    slurmkit_pbs_vnodes+=("$line")',
  '    for known in "${slurmkit_pbs_hosts[@]}"; do [ "$known" = "$line" ] && continue 2; done',
  '    slurmkit_pbs_hosts+=("$line")',
  '  done < "$PBS_NODEFILE"',
  "}",
  UNUSED,
  "slurmkit_pbs_environment() {",
  "  slurmkit_pbs_env=()",
  "  local kv",
  "  while IFS= read -r -d '' kv; do",
  // What MoM sets for each task on its own host stays MoM's: the task's numbers, its MoM, and the host's scratch.
  '    case $kv in PBS_TASKNUM=* | PBS_NODENUM=* | PBS_VNODENUM=* | PBS_MOMPORT=* | PBS_JOBDIR=* | TMPDIR=* | HOSTNAME=*) ;; *) slurmkit_pbs_env+=("$kv") ;; esac',
  "  done < <(env -0)",
  "}",
  // The log files behind this shell's stdout and stderr ($$ is the shell's pid in $(...) too), if they are files.
  UNUSED,
  "slurmkit_pbs_log() {",
  "  local path",
  '  path=$(readlink "/proc/$$/fd/$1" 2>/dev/null) || return 0',
  '  case $path in /*) if [ -f "$path" ]; then printf \'%s\' "$path"; fi ;; esac',
  "}",
  UNUSED,
  "slurmkit_pbs_start() {",
  '  local file=$1 where=("$2" "$3") assign=()',
  "  shift 3",
  '  while [ "$1" != -- ]; do assign+=("$1"); shift; done',
  "  shift",
  '  pbsdsh "${where[@]}" -- /usr/bin/env "${slurmkit_pbs_env[@]}" "${assign[@]}" /bin/bash -c "$slurmkit_pbs_wrap" slurmkit-pbs "$PWD" "$(slurmkit_pbs_log 1)" "$(slurmkit_pbs_log 2)" "$@" >"$file" 2>&1 &',
  "  slurmkit_pbs_pid=$!",
  "}",
  UNUSED,
  "slurmkit_pbs_status() {",
  "  local line status='' other=''",
  "  while IFS= read -r line; do",
  "    case $line in",
  "      'pbsdsh: task '*' exit status '*) status=${line##* } ;;",
  "      'pbsdsh: killing task '*) ;;",
  "      *) other=1; printf '%s\\n' \"$line\" >&2 ;;",
  "    esac",
  '  done < "$1"',
  '  rm -f -- "$1"',
  // A task killed by signal n is 256 + n to PBS; 128 + n to a shell.
  "  case $status in",
  '    "") if [ "$2" -ne 0 ]; then return "$2"; elif [ -n "$other" ]; then return 1; fi; return 0 ;;',
  "    *[!0-9]*) return 1 ;;",
  '    *) if [ "$status" -ge 256 ]; then return $((status - 128)); fi; if [ "$status" -gt 255 ] || [ "$status" -eq 0 ]; then return 1; fi; return "$status" ;;',
  "  esac",
  "}",
  UNUSED,
  "slurmkit_pbs_on_hosts() {",
  '  local script="slurmkit_node=\\$(hostname -s); slurmkit_node_count=${#slurmkit_pbs_hosts[@]}; $1" host i=0 code status=0 pids=()',
  "  shift",
  "  slurmkit_pbs_environment",
  '  for host in "${slurmkit_pbs_hosts[@]}"; do',
  '    slurmkit_pbs_start "${TMPDIR:-/tmp}/slurmkit-pbsdsh.$$.host$i" -h "$host" -- "$script" "$@"',
  '    pids+=("$slurmkit_pbs_pid")',
  "    i=$((i + 1))",
  "  done",
  '  for i in "${!pids[@]}"; do',
  '    wait "${pids[$i]}"',
  "    code=$?",
  '    slurmkit_pbs_status "${TMPDIR:-/tmp}/slurmkit-pbsdsh.$$.host$i" "$code" || { code=$?; [ "$status" -ne 0 ] || status=$code; }',
  "  done",
  '  return "$status"',
  "}",
];

/**
 * The node helpers of setup steps on PBS: on several hosts, a step's script
 * runs once on each as a pbsdsh task, with the batch shell's exported
 * variables; on one host, a subshell of the batch shell runs it, so it sees
 * the shell's own variables too, as on one Slurm node.
 */
export const PBS_NODE_HELPERS: readonly string[] = [
  "slurmkit_node=$(hostname -s)",
  ...PBS_TASK_HELPERS,
  UNUSED,
  "slurmkit_on_every_node() {",
  // Outside a job (no nodefile) this host alone.
  '  if slurmkit_pbs_hosts 2>/dev/null && [ "${#slurmkit_pbs_hosts[@]}" -gt 1 ]; then slurmkit_pbs_on_hosts "$@"; return; fi',
  // The step's script runs with its arguments as $1...: the first argument is the script.
  '  (slurmkit_script=$1; shift; eval "slurmkit_node_count=1; $slurmkit_script")',
  "}",
  UNUSED,
  'slurmkit_on_every_node_at_exit() { slurmkit_on_every_node "$@"; }',
];

/**
 * The rank launcher's body (`bash -c`, with the warning's time and the
 * launch as arguments): a task per line of `$PBS_NODEFILE` (`-n` index, so
 * rank r runs on the r-th line's host), each told its rank; the first rank
 * to fail stops the others, as srun's `--kill-on-bad-exit` does.
 */
function launcher(ranks: number, rankScript: string): string {
  return [
    ...PBS_TASK_HELPERS,
    "slurmkit_warn_at=$1",
    "shift",
    "slurmkit_pbs_hosts || exit 1",
    `if [ "\${#slurmkit_pbs_vnodes[@]}" -ne ${ranks} ]; then`,
    `  echo "slurmkit: expected ${ranks} lines in \\$PBS_NODEFILE ($PBS_NODEFILE), one per rank, found \${#slurmkit_pbs_vnodes[@]}" >&2`,
    "  exit 1",
    "fi",
    "slurmkit_pbs_environment",
    `slurmkit_rank_script=${quoteShell(rankScript)}`,
    'slurmkit_files="${TMPDIR:-/tmp}/slurmkit-pbsdsh.$$.rank"',
    "pids=()",
    `for ((r = 0; r < ${ranks}; r++)); do`,
    "  host=${slurmkit_pbs_vnodes[$r]}",
    "  local_rank=0 local_size=0",
    "  for ((k = 0; k < ${#slurmkit_pbs_vnodes[@]}; k++)); do",
    '    [ "${slurmkit_pbs_vnodes[$k]}" = "$host" ] || continue',
    "    local_size=$((local_size + 1))",
    '    [ "$k" -lt "$r" ] && local_rank=$((local_rank + 1))',
    "  done",
    "  node_rank=0",
    '  for ((k = 0; k < ${#slurmkit_pbs_hosts[@]}; k++)); do [ "${slurmkit_pbs_hosts[$k]}" = "$host" ] && node_rank=$k; done',
    '  slurmkit_pbs_start "$slurmkit_files$r" -n "$r" SLURMKIT_RANK_JOB="$PBS_JOBID" SLURMKIT_RANK="$r" SLURMKIT_LOCAL_RANK="$local_rank" SLURMKIT_LOCAL_WORLD_SIZE="$local_size" SLURMKIT_NODE_RANK="$node_rank" \\',
    `    SLURMKIT_WORLD_SIZE=${ranks} SLURMKIT_HOSTS="\${slurmkit_pbs_hosts[*]}" -- "$slurmkit_rank_script" "$slurmkit_warn_at" "$@"`,
    "  pids[r]=$slurmkit_pbs_pid",
    "done",
    // pbsdsh passes TERM, INT and HUP on to its task.
    "trap 'slurmkit_stopped=143; kill -TERM \"${pids[@]}\" 2>/dev/null' TERM",
    "trap 'slurmkit_stopped=130; kill -INT \"${pids[@]}\" 2>/dev/null' INT",
    "trap 'slurmkit_stopped=129; kill -HUP \"${pids[@]}\" 2>/dev/null' HUP",
    "slurmkit_stopped=",
    "status=0",
    'while [ "${#pids[@]}" -gt 0 ]; do',
    '  for r in "${!pids[@]}"; do',
    '    kill -0 "${pids[$r]}" 2>/dev/null && continue',
    '    wait "${pids[$r]}"',
    "    code=$?",
    "    unset 'pids[r]'",
    '    slurmkit_pbs_status "$slurmkit_files$r" "$code" && continue',
    "    code=$?",
    '    if [ "$status" -eq 0 ] && [ -z "$slurmkit_stopped" ]; then',
    "      status=$code",
    '      echo "slurmkit: rank $r ended with exit status $code; stopping the other ranks" >&2',
    '      [ "${#pids[@]}" -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null',
    "    fi",
    "  done",
    '  [ "${#pids[@]}" -eq 0 ] || sleep 1',
    "done",
    'exit "${slurmkit_stopped:-$status}"',
  ].join("\n");
}

/**
 * The launch of `ranks` ranks on PBS: a launcher (bash) starts each rank as
 * a pbsdsh task that runs `rankLines`, then `launch`. A scheduler that warns
 * nobody leaves each rank to warn itself with `signal` at the time the batch
 * shell's own warning comes (`slurmkit_warn_at`, epoch seconds), as Slurm
 * signals every rank.
 */
export function pbsRankLaunch(ranks: number, launch: string, rankLines: readonly string[], signal: string | undefined): { lines: string[]; command: string } {
  const rank = [
    "slurmkit_warn_at=$1",
    "shift",
    "# shellcheck disable=SC2034 # for rank lines",
    "slurmkit_node=$(hostname -s)",
    ...(signal ? ['if [ -n "$slurmkit_warn_at" ]; then', `  ( sleep "$((slurmkit_warn_at - $(date +%s)))"; kill -${signal} $$ ) >/dev/null 2>&1 &`, "fi"] : []),
    ...rankLines,
    'exec "$@"',
  ].join("\n");
  return { lines: [], command: `bash -c ${quoteShell(launcher(ranks, rank))} slurmkit-ranks "\${slurmkit_warn_at:-}" ${launch}` };
}
