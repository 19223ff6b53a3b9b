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
  // ${a[@]+...}: an empty array is unset to bash before 4.4 under a setup file's set -u.
  '    for known in ${slurmkit_pbs_hosts[@]+"${slurmkit_pbs_hosts[@]}"}; do [ "$known" = "$line" ] && continue 2; done',
  '    slurmkit_pbs_hosts+=("$line")',
  '  done < "$PBS_NODEFILE"',
  "}",
  UNUSED,
  "slurmkit_pbs_environment() {",
  "  slurmkit_pbs_env=()",
  "  local kv",
  "  while IFS= read -r -d '' kv; do",
  // What MoM (and its hooks) set for each task on its own host stays theirs: the task's numbers, its MoM, the host's scratch,
  // its CPUs' share (ompthreads) and GPUs, and its credentials.
  "    case ${kv%%=*} in",
  "      PBS_TASKNUM | PBS_NODENUM | PBS_VNODENUM | PBS_MOMPORT | PBS_JOBDIR | TMPDIR | HOSTNAME | NCPUS | OMP_NUM_THREADS | KRB5CCNAME) ;;",
  "      CUDA_VISIBLE_DEVICES | ROCR_VISIBLE_DEVICES | HIP_VISIBLE_DEVICES | GPU_DEVICE_ORDINAL | ZE_AFFINITY_MASK) ;;",
  '      *) slurmkit_pbs_env+=("$kv") ;;',
  "    esac",
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
  '  pbsdsh "${where[@]}" -- /usr/bin/env ${slurmkit_pbs_env[@]+"${slurmkit_pbs_env[@]}"} ${assign[@]+"${assign[@]}"} /bin/bash -c "$slurmkit_pbs_wrap" slurmkit-pbs "$PWD" "$(slurmkit_pbs_log 1)" "$(slurmkit_pbs_log 2)" "$@" >"$file" 2>&1 &',
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
  '    *) if [ "$status" -ge 256 ]; then status=$((status - 128)); fi; if [ "$status" -gt 255 ]; then return 1; fi; return "$status" ;;',
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

/** Seconds the launch waits for stopped ranks to say they ended before it gives up on them (MoM's kill_delay is usually shorter). */
const STOP_GRACE_SECONDS = 60;

/**
 * The rank launcher's body (`bash -c`, with the warning's time, the exit
 * markers' prefix and the launch as arguments): a task per line of
 * `$PBS_NODEFILE` (`-n` index, so rank r runs on the r-th line's host), each
 * told where it is. The first rank to fail stops the others, as srun's
 * `--kill-on-bad-exit` does. pbsdsh leaves at once when it is signalled, so
 * a stopped rank's own exit marker (on shared storage) says when it ended:
 * the launch, and so the job, outlasts its ranks, which keep MoM's
 * `kill_delay` to end.
 */
function launcher(ranks: number, rankScript: string, ignored: readonly string[]): string {
  return [
    ...PBS_TASK_HELPERS,
    "slurmkit_warn_at=$1",
    "slurmkit_marker=$2",
    "shift 2",
    // qsig's USR1 and the warning are the ranks' (MoM signals them itself); pbsdsh, started below, keeps the ignore.
    `trap '' ${ignored.join(" ")}`,
    "slurmkit_stopped=",
    "trap 'slurmkit_stopped=143' TERM",
    "trap 'slurmkit_stopped=130' INT",
    "trap 'slurmkit_stopped=129' HUP",
    "slurmkit_pbs_hosts || exit 1",
    `if [ "\${#slurmkit_pbs_vnodes[@]}" -ne ${ranks} ]; then`,
    `  echo "slurmkit: expected ${ranks} lines in \\$PBS_NODEFILE ($PBS_NODEFILE), one per rank, found \${#slurmkit_pbs_vnodes[@]}" >&2`,
    "  exit 1",
    "fi",
    "slurmkit_pbs_environment",
    `slurmkit_rank_script=${quoteShell(rankScript)}`,
    'slurmkit_files="${TMPDIR:-/tmp}/slurmkit-pbsdsh.$$.rank"',
    // Each host's number and its ranks, in one pass.
    "declare -A node_of size_of seen_on",
    "for ((k = 0; k < ${#slurmkit_pbs_hosts[@]}; k++)); do node_of[${slurmkit_pbs_hosts[$k]}]=$k; size_of[${slurmkit_pbs_hosts[$k]}]=0; seen_on[${slurmkit_pbs_hosts[$k]}]=0; done",
    'for host in "${slurmkit_pbs_vnodes[@]}"; do size_of[$host]=$((size_of[$host] + 1)); done',
    "pids=()",
    `for ((r = 0; r < ${ranks}; r++)); do`,
    "  host=${slurmkit_pbs_vnodes[$r]}",
    '  rm -f -- "$slurmkit_marker$r"',
    '  slurmkit_pbs_start "$slurmkit_files$r" -n "$r" SLURMKIT_RANK_JOB="$PBS_JOBID" SLURMKIT_RANK="$r" SLURMKIT_LOCAL_RANK="${seen_on[$host]}" \\',
    '    SLURMKIT_LOCAL_WORLD_SIZE="${size_of[$host]}" SLURMKIT_NODE_RANK="${node_of[$host]}" \\',
    `    SLURMKIT_WORLD_SIZE=${ranks} SLURMKIT_HOSTS="\${slurmkit_pbs_hosts[*]}" -- "$slurmkit_rank_script" "$slurmkit_warn_at" "$slurmkit_marker$r" "$@"`,
    "  seen_on[$host]=$((seen_on[$host] + 1))",
    "  pids[r]=$slurmkit_pbs_pid",
    "done",
    // A rank is left while its pbsdsh runs, or, once pbsdsh was signalled (it then leaves at once), until its marker says it ended.
    "status=0 failed='' stop_at='' left=()",
    `for ((r = 0; r < ${ranks}; r++)); do left[r]=1; done`,
    "slurmkit_end() { # rank status",
    "  unset 'left[$1]'",
    '  rm -f -- "$slurmkit_marker$1"',
    '  [ "$2" -eq 0 ] && return 0',
    '  [ -n "$failed" ] && return 0',
    "  failed=$1 status=$2",
    '  if [ -z "$slurmkit_stopped" ]; then',
    '    echo "slurmkit: rank $1 ended with exit status $2; stopping the other ranks" >&2',
    "    stop_at=${stop_at:-$SECONDS}",
    "    local other",
    '    for other in "${!pids[@]}"; do kill -TERM "${pids[$other]}" 2>/dev/null; done',
    "  fi",
    "}",
    'while [ "${#left[@]}" -gt 0 ]; do',
    '  [ -n "$slurmkit_stopped" ] && stop_at=${stop_at:-$SECONDS}',
    '  running=" $(jobs -rp | tr "\\n" " ") "',
    '  for r in "${!left[@]}"; do',
    '    if [ -f "$slurmkit_marker$r" ]; then',
    '      code=$(cat -- "$slurmkit_marker$r" 2>/dev/null)',
    '      case $code in "" | *[!0-9]*) code=1 ;; esac',
    '      slurmkit_end "$r" "$code"',
    "      continue",
    "    fi",
    '    [ -n "${pids[$r]:-}" ] || continue',
    '    case $running in *" ${pids[$r]} "*) continue ;; esac',
    '    wait "${pids[$r]}"',
    "    code=$?",
    "    unset 'pids[r]'",
    // A signalled pbsdsh passed the signal on and left before its task ended: the rank's marker will say when it did.
    '    if grep -q "^pbsdsh: killing task" "$slurmkit_files$r" 2>/dev/null; then stop_at=${stop_at:-$SECONDS}; rm -f -- "$slurmkit_files$r"; continue; fi',
    // Otherwise pbsdsh waited for its task to end and said how it went.
    '    slurmkit_pbs_status "$slurmkit_files$r" "$code"',
    '    slurmkit_end "$r" "$?"',
    "  done",
    '  [ "${#left[@]}" -gt 0 ] || break',
    `  if [ -n "$stop_at" ] && [ $((SECONDS - stop_at)) -ge ${STOP_GRACE_SECONDS} ]; then`,
    `    echo "slurmkit: rank(s) \${!left[*]} did not say they ended within ${STOP_GRACE_SECONDS} s of being stopped" >&2`,
    "    break",
    "  fi",
    "  sleep 1",
    "done",
    `for ((r = 0; r < ${ranks}; r++)); do rm -f -- "$slurmkit_marker$r" "$slurmkit_files$r"; done`,
    'exit "${slurmkit_stopped:-$status}"',
  ].join("\n");
}

/**
 * The launch of `ranks` ranks on PBS: a launcher (bash) starts each rank as
 * a pbsdsh task that runs `rankLines`, then `launch` as its child, and
 * writes the child's exit status to `<sharedDir>/.rank-<job>.<rank>` (a
 * folder every host sees; the launcher removes it). A scheduler that warns
 * nobody leaves each rank to warn itself with `signal` at the time the batch
 * shell's own warning comes (`slurmkit_warn_at`, epoch seconds), as Slurm
 * signals every rank: a warning due before the rank starts is passed on as
 * SLURMKIT_WARNED, as the batch shell does.
 */
export function pbsRankLaunch(ranks: number, launch: string, rankLines: readonly string[], signal: string | undefined, sharedDir: string | undefined): { lines: string[]; command: string } {
  if (sharedDir === undefined) throw new TypeError("pbsRankLaunch needs a folder that every host sees, for the ranks' exit markers");
  // The ranks' own signals: USR1 (qsig) and the warning go to the runner, which listens for them; ignored until it does.
  const ignored = [...new Set(["USR1", "USR2", ...(signal ? [signal] : [])])];
  const rank = [
    "slurmkit_warn_at=$1",
    "slurmkit_marker=$2",
    "shift 2",
    "# shellcheck disable=SC2034 # for rank lines",
    "slurmkit_node=$(hostname -s)",
    "slurmkit_warned=${SLURMKIT_WARNED:-}",
    // MoM signals the task's whole session: this shell outlives TERM, INT and HUP to wait for the runner, which handles them.
    "trap 'slurmkit_stopping=1' TERM INT HUP",
    ...(signal ? [`trap 'slurmkit_warned=1' ${signal}`] : []),
    ...rankLines,
    ...(signal
      ? [
          "slurmkit_left=",
          'if [ -z "$slurmkit_warned" ] && [ -n "$slurmkit_warn_at" ]; then',
          "  slurmkit_left=$((slurmkit_warn_at - $(date +%s)))",
          '  if [ "$slurmkit_left" -le 0 ]; then slurmkit_warned=1; fi',
          "fi",
        ]
      : []),
    `trap '' ${ignored.join(" ")}`,
    'if [ -n "$slurmkit_warned" ]; then export SLURMKIT_WARNED=1; fi',
    '"$@" &',
    "slurmkit_child=$!",
    ...(signal ? ['if [ -z "$slurmkit_warned" ] && [ -n "$slurmkit_left" ]; then', `  ( sleep "$slurmkit_left"; kill -${signal} "$slurmkit_child" ) >/dev/null 2>&1 &`, "fi"] : []),
    'while :; do wait "$slurmkit_child"; slurmkit_status=$?; kill -0 "$slurmkit_child" 2>/dev/null || break; done',
    'printf \'%s\\n\' "$slurmkit_status" > "$slurmkit_marker.tmp" && mv -f -- "$slurmkit_marker.tmp" "$slurmkit_marker"',
    'exit "$slurmkit_status"',
  ].join("\n");
  const marker = `${quoteShell(`${sharedDir}/.rank-`)}"\${PBS_JOBID:-local}."`;
  return { lines: [], command: `bash -c ${quoteShell(launcher(ranks, rank, ignored))} slurmkit-ranks "\${slurmkit_warn_at:-}" ${marker} ${launch}` };
}
