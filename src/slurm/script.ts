import { ParameterError } from "../base/errors.js";
import { isSetupStep, STEP_HELPERS, type SetupStep } from "../setup/index.js";
import { quoteCommand, quoteSbatch, quoteShell } from "../base/shell.js";

/** What goes into an sbatch script. */
export interface ScriptOptions {
  /** `#SBATCH` options as [long name, value] pairs; `true` for a flag. */
  readonly options: ReadonlyArray<readonly [string, string | true]>;
  /** Raw lines and setup steps, in order, before the runner starts. */
  readonly setup: readonly (string | SetupStep)[];
  /** The runner command: node binary, runner script, run folder. */
  readonly runner: readonly string[];
  /** Ranks per job; above 1 the runner starts through srun. */
  readonly ranks: number;
  /** Where exit steps, once done, write `<element>.exited` (the results folder). */
  readonly exitMarkerDir?: string;
  /** Added to SLURM_ARRAY_TASK_ID in the marker's name: the array's first element in its submission. */
  readonly exitMarkerOffset?: number | "from-env";
  /** Export SLURMKIT_ELEMENT_START (epoch seconds) before setup: a worker measures its walltime from it. */
  readonly recordStart?: boolean;
  /**
   * Check the node's Node.js after setup, before the runner starts (not
   * inside a container step). A missing or too old one ends the element with
   * a `slurmkit: no usable Node.js` line on stderr, writes `marker` (the first
   * such line of the submission) and cancels the array's elements that have
   * not started, which would fail the same way.
   */
  readonly nodeCheck?: { readonly marker: string };
  /**
   * The warning signal Slurm sends the batch shell (`--signal=B:<name>`).
   * It may come while setup runs, before the runner listens (Slurm sends it
   * up to a minute early): the script keeps it and tells the runner
   * (SLURMKIT_WARNED=1), rather than dying of it.
   */
  readonly warningSignal?: string;
  /**
   * For a scheduler that warns no job before its time limit (PBS): the batch
   * shell sends itself `warningSignal` this many seconds after it starts,
   * as Slurm's `--signal=B:...` would.
   */
  readonly selfWarning?: { readonly afterSeconds: number };
  /** A folder every node of the job sees, for the launch's own short-lived files (the run folder's state folder). */
  readonly sharedDir?: string;
  /** The scheduler's words in the script. @default SLURM_SCRIPT (sbatch's) */
  readonly dialect?: ScriptDialect;
}

/**
 * What differs between batch schedulers' scripts: the header, the variables
 * a job reads, how a script runs on every node, and how the launch starts
 * several ranks. Setup steps, the exit trap and the node check are shared.
 */
export interface ScriptDialect {
  /** The header lines (`#SBATCH --name=value`) of sbatch-style long options, and any lines the body must start with. */
  header(options: ScriptOptions["options"]): string[];
  /** Whether the scheduler itself sends a warning signal before the time limit (Slurm's `--signal`); else the script does. */
  readonly warnsBeforeLimit: boolean;
  /** The variable that holds the array element's index (unset outside an array). */
  readonly arrayIndex: string;
  /** A shell word that expands to this node's name, as the scheduler calls it. */
  readonly nodeName: string;
  /** Lines that set `slurmkit_job` to the job's id (`A_i` for an array element). */
  readonly jobIdLines: readonly string[];
  /** Lines that define `slurmkit_on_every_node` and `slurmkit_on_every_node_at_exit` (STEP_HELPERS). */
  readonly nodeHelpers: readonly string[];
  /** Lines that cancel the array's elements that have not started (the node check's, when Node.js is unusable everywhere). */
  readonly cancelPending: readonly string[];
  /**
   * The launch of `ranks` ranks of `launch`, each running `rankLines` first:
   * lines before it, and the command. `signal` is the warning each rank sends
   * itself at `$slurmkit_warn_at` when the scheduler warns nobody;
   * `sharedDir` is a folder every node sees (ScriptOptions.sharedDir).
   */
  rankLaunch(ranks: number, launch: string, rankLines: readonly string[], signal: string | undefined, sharedDir: string | undefined): { lines: string[]; command: string };
}

/** The oldest Node.js major version the runner runs on (its bundle targets it). */
export const RUNNER_NODE_MAJOR = 18;

/**
 * The script lines of ScriptOptions.nodeCheck, for the node binary `node`.
 * A binary that is missing or too old fails every element the same way, so
 * the pending ones are cancelled; one that is there but fails to run (out of
 * memory, a file system hiccup) fails this element alone.
 */
function nodeCheckLines(node: string, marker: string, dialect: ScriptDialect): string[] {
  const old = Array.from({ length: RUNNER_NODE_MAJOR - 10 }, (_, i) => String(10 + i)).join("|");
  return [
    "# check the node's Node.js before the runner starts",
    `slurmkit_node_bin=${quoteShell(node)}`,
    // --version, not -e: it prints before V8 starts (10 ms against 130 ms for every element).
    'slurmkit_node_out=$("$slurmkit_node_bin" --version 2>&1)',
    "slurmkit_node_status=$?",
    "slurmkit_node_out=${slurmkit_node_out#v}",
    "slurmkit_node_why=",
    "slurmkit_node_all=yes",
    'if ! command -v "$slurmkit_node_bin" >/dev/null 2>&1; then',
    "  case $slurmkit_node_bin in",
    `    */*) slurmkit_node_why="'$slurmkit_node_bin' does not exist or does not run" ;;`,
    `    *) slurmkit_node_why="'$slurmkit_node_bin' was not found on PATH=$PATH" ;;`,
    "  esac",
    'elif [ "$slurmkit_node_status" -ne 0 ]; then',
    `  slurmkit_node_why="'$slurmkit_node_bin' failed to run (exit $slurmkit_node_status): $(printf '%s\\n' "$slurmkit_node_out" | head -n 1)"`,
    "  slurmkit_node_all=no",
    "else",
    "  case $slurmkit_node_out in",
    `    '' | [0-9].* | ${old.replaceAll("|", ".* | ")}.*) slurmkit_node_why="'$slurmkit_node_bin' is v$slurmkit_node_out; the runner needs v${RUNNER_NODE_MAJOR} or newer" ;;`,
    "  esac",
    "fi",
    'if [ -n "$slurmkit_node_why" ]; then',
    `  slurmkit_node_line="slurmkit: no usable Node.js on node ${dialect.nodeName}: $slurmkit_node_why"`,
    `  printf '%s\\n' "$slurmkit_node_line" >&2`,
    '  if [ "$slurmkit_node_all" = yes ]; then',
    "    # The elements not started yet would fail the same way.",
    `    (set -C; printf '%s\\n' "$slurmkit_node_line" > ${quoteShell(marker)}) 2>/dev/null`,
    ...dialect.cancelPending.map((l) => `    ${l}`),
    "  fi",
    "  exit 1",
    "fi",
    "",
  ];
}

/** This node's name, as Slurm calls it. */
const NODE_NAME = "slurmkit_node=${SLURMD_NODENAME:-$(hostname)}";

/**
 * The node helpers of setup steps (see STEP_HELPERS) on Slurm: on several
 * nodes, srun runs a script once per node (at exit with --overlap, beside
 * the task's step); on one node, a subshell of the batch shell runs it, so
 * it sees the shell's own variables too.
 */
const SLURM_NODE_HELPERS = [
  NODE_NAME,
  "# shellcheck disable=SC2317 # used by some steps only",
  "slurmkit_nodes_run() {",
  "  local flag=$1 nodes=${SLURM_JOB_NUM_NODES:-1}",
  "  case $nodes in '' | *[!0-9]*) nodes=1 ;; esac",
  '  local script="slurmkit_node=\\${SLURMD_NODENAME:-\\$(hostname)}; slurmkit_node_count=$nodes; $2"',
  "  shift 2",
  '  if [ "$nodes" -gt 1 ]; then',
  '    srun "$flag" --ntasks="$nodes" --ntasks-per-node=1 bash -c "$script" slurmkit-node "$@"',
  "  else",
  '    (eval "$script")',
  "  fi",
  "}",
  "# shellcheck disable=SC2317 # used by some steps only",
  'slurmkit_on_every_node() { slurmkit_nodes_run --kill-on-bad-exit=1 "$@"; }',
  "# shellcheck disable=SC2317 # used by some steps only",
  'slurmkit_on_every_node_at_exit() { slurmkit_nodes_run --overlap "$@"; }',
];

/** The script words of Slurm's sbatch. */
export const SLURM_SCRIPT: ScriptDialect = {
  header: (options) => options.map(([name, value]) => (value === true ? `#SBATCH --${name}` : `#SBATCH --${name}=${quoteSbatch(value)}`)),
  warnsBeforeLimit: true,
  arrayIndex: "SLURM_ARRAY_TASK_ID",
  nodeName: "${SLURMD_NODENAME:-$(hostname)}",
  jobIdLines: ["slurmkit_job=${SLURM_JOB_ID:-local}", 'if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then slurmkit_job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}; fi'],
  nodeHelpers: SLURM_NODE_HELPERS,
  cancelPending: ['if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then scancel --state=PENDING "$SLURM_ARRAY_JOB_ID" 2>/dev/null; fi'],
  rankLaunch: (ranks, launch, rank) => {
    // Since Slurm 22.05 srun does not take --cpus-per-task from the job.
    const lines = ['[ -n "${SLURM_CPUS_PER_TASK:-}" ] && export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"'];
    // No --unbuffered: srun then writes each rank's output a whole line at a time, so lines of ranks never interleave.
    const srun = `srun --ntasks=${ranks} --kill-on-bad-exit=1`;
    return { lines, command: rank.length ? `${srun} bash -c ${quoteShell([NODE_NAME, ...rank, 'exec "$@"'].join("\n"))} slurmkit-rank ${launch}` : `${srun} ${launch}` };
  },
};

/**
 * Renders the sbatch script: the `#SBATCH` header, the setup, then the runner
 * launch (through srun for several ranks, wrapped by a container step, with an
 * exit trap when a step stages out).
 */
export function renderScript(o: ScriptOptions): string {
  // SC2016, SC1003: values are single-quoted on purpose (with '\'' for a quote), so that nothing in them expands.
  const dialect = o.dialect ?? SLURM_SCRIPT;
  const lines = ["#!/bin/bash", "# shellcheck disable=SC2016,SC1003", "# Written by slurmkit.", ...dialect.header(o.options), ""];
  const warned = o.warningSignal;
  if (warned) {
    if (!/^[A-Z][A-Z0-9]*$/.test(warned)) throw new ParameterError("signal", [`Expected a signal name such as USR2, got '${warned}'`]);
    lines.push("# Slurm's warning may come before the runner listens: kept, and passed on", "slurmkit_warned=", `trap 'slurmkit_warned=1' ${warned}`, "");
    if (o.selfWarning) {
      // $$ stays the batch shell's pid, and becomes the runner's once the shell execs it: either hears the warning.
      lines.push(
        "# This scheduler sends no warning before the time limit: the batch shell sends its own",
        `( sleep ${Math.max(1, Math.trunc(o.selfWarning.afterSeconds))}; kill -${warned} $$ ) >/dev/null 2>&1 &`,
        // Ranks that the launch starts apart from this shell warn themselves at the same time.
        ...(o.ranks > 1 ? [`slurmkit_warn_at=$(( $(date +%s) + ${Math.max(1, Math.trunc(o.selfWarning.afterSeconds))} ))`] : []),
        "",
      );
    }
  }
  if (o.recordStart) lines.push("SLURMKIT_ELEMENT_START=$(date +%s)", "export SLURMKIT_ELEMENT_START", "");
  const steps = o.setup.filter(isSetupStep);
  const containers = steps.filter((s) => s.wrap.length > 0 || s.container);
  if (containers.length > 1) throw new ParameterError("setup", [`Expected at most one container step, got ${containers.length}`]);
  if (steps.length) {
    lines.push("# slurmkit helpers", ...dialect.nodeHelpers, ...STEP_HELPERS, "");
  }
  const exits = steps.flatMap((s) => s.exit);
  // Later workers learn their array's first element from SLURMKIT_ELEMENT_OFFSET (sbatch --export), checked to be a number.
  const offset = o.exitMarkerOffset === "from-env" ? "${slurmkit_offset}" : o.exitMarkerOffset ? String(Math.trunc(o.exitMarkerOffset)) : undefined;
  const element = offset ? `$(( \${${dialect.arrayIndex}:-0} + ${offset} ))` : `\${${dialect.arrayIndex}:-0}`;
  if (o.exitMarkerOffset === "from-env") {
    lines.push("slurmkit_offset=${SLURMKIT_ELEMENT_OFFSET:-0}", "case $slurmkit_offset in *[!0-9]*) slurmkit_offset=0 ;; esac", "");
  }
  const marker = o.exitMarkerDir ? `${quoteShell(`${o.exitMarkerDir}/`)}"${element}.exited"` : undefined;
  if (exits.length) {
    // Set before any setup runs, so a failed setup still stages out what exists.
    // The runner runs in the background so these traps can run. On TERM (scancel,
    // time limit) the task is stopped before stage-out copies its files;
    // USR1/USR2 (`signal`) go to the task, which decides what they mean.
    lines.push(
      ...dialect.jobIdLines,
      "# shellcheck disable=SC2317 # called by the traps below",
      "slurmkit_on_exit() {",
      "  set +eu",
      ...exits.map((l) => `  ${l}`),
      ...(marker ? [`  : > ${marker}`] : []),
      "}",
      "# shellcheck disable=SC2317 # called by the traps below",
      'slurmkit_forward() { [ -n "${slurmkit_child:-}" ] && kill "-$1" "$slurmkit_child" 2>/dev/null; }',
      "trap slurmkit_on_exit EXIT",
      "trap 'slurmkit_forward TERM; wait \"${slurmkit_child:-}\"; exit 143' TERM",
      "trap 'slurmkit_forward INT; wait \"${slurmkit_child:-}\"; exit 130' INT",
      ...["USR1", "USR2"].map((sig) => (sig === warned ? `trap 'slurmkit_warned=1; slurmkit_forward ${sig}' ${sig}` : `trap 'slurmkit_forward ${sig}' ${sig}`)),
      // A requeued job's earlier attempt may have left its marker.
      ...(marker ? [`rm -f -- ${marker}`] : []),
      "",
    );
  }
  if (o.setup.length) {
    lines.push("# setup");
    for (const item of o.setup) lines.push(...(typeof item === "string" ? [item] : item.batch));
    // A setup file's `set -euo pipefail` must not change how the launch below waits and forwards signals.
    lines.push("set +euo pipefail", "");
  }
  if (o.nodeCheck && !containers.some((s) => s.wrap.length > 0)) lines.push(...nodeCheckLines(o.runner[0]!, o.nodeCheck.marker, dialect));
  const rank = steps.flatMap((s) => s.rank);
  const launch = [...(containers[0]?.wrap ?? []), quoteCommand(o.runner)].join(" ");
  lines.push("# run the task");
  let command: string;
  if (o.ranks > 1) {
    const ranked = dialect.rankLaunch(o.ranks, launch, rank, o.selfWarning ? warned : undefined, o.sharedDir);
    lines.push(...ranked.lines);
    command = ranked.command;
  } else {
    lines.push(...rank);
    command = launch;
  }
  // From here the runner takes the warning: ignored until it listens (a signal in that moment is lost, not fatal), and one that came before is passed on.
  const handOver = warned ? [`trap '' ${warned}`, 'if [ -n "$slurmkit_warned" ]; then export SLURMKIT_WARNED=1; fi'] : [];
  if (exits.length) {
    lines.push(
      ...(warned ? [`(${handOver.join("; ")}; exec ${command}) &`] : [`${command} &`]),
      "slurmkit_child=$!",
      // wait returns early when a trapped signal arrives; wait again while the task runs.
      'while :; do wait "$slurmkit_child"; slurmkit_status=$?; kill -0 "$slurmkit_child" 2>/dev/null || break; done',
      'exit "$slurmkit_status"',
    );
  } else lines.push(...handOver, `exec ${command}`);
  return `${lines.join("\n")}\n`;
}
