import { shellWord, type LateString } from "../protocol/runtime-value.js";
import { quoteShell } from "../base/shell.js";
import { accepts } from "../base/options.js";
import { type SetupStep, step, check, need, onEveryNode, optionProblems, CHECKED } from "./step.js";

/** Options of stageIn(). */
export interface StageInOptions {
  /** A file, folder or zip archive on shared storage. */
  readonly from: LateString;
  /** A folder, usually node-local: `atRuntime("$SLURM_TMPDIR/data")`. */
  readonly to: LateString;
  /** Unzip `from` into `to` instead of copying it. @default false */
  readonly unzip?: boolean;
}

/**
 * Copies (or unzips) data into node-local scratch on every node of the job,
 * once per node per allocation.
 *
 * @example
 * stageIn({ from: "/project/data.zip", to: atRuntime("$SLURM_TMPDIR/data"), unzip: true })
 */
export function stageIn(options: StageInOptions): SetupStep {
  const problems = optionProblems("stageIn", options, { from: CHECKED, to: CHECKED, unzip: accepts.boolean });
  need(problems, "from", options.from);
  need(problems, "to", options.to);
  check("stageIn", problems);
  const to = shellWord(options.to);
  const from = shellWord(options.from);
  return step("stageIn", {
    batch: onEveryNode("stageIn", [
      `mkdir -p -- ${to}`,
      `echo "slurmkit: staging in" ${from} "to" ${to} "on $slurmkit_node" >&2`,
      options.unzip ? `unzip -q -o ${from} -d ${to}` : `cp -R -- ${from} ${to}/`,
    ]),
  });
}

/** Options of stageOut(). */
export interface StageOutOptions {
  /** A node-local file or folder: `atRuntime("$SLURM_TMPDIR/out")`. */
  readonly from: LateString;
  /** A shared folder; each job copies into its own subfolder `<to>/<job id>/`. */
  readonly to: LateString;
}

/**
 * Copies results back to shared storage when the job ends, also when it
 * fails, is cancelled or times out (a trap on exit). Each job copies into its
 * own `<to>/<job id>/` (`<array id>_<index>` for array elements), so no job
 * overwrites another's outputs; with several nodes each node copies into
 * `<to>/<job id>/<node>/`.
 *
 * @example
 * stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: "/project/results" })
 */
export function stageOut(options: StageOutOptions): SetupStep {
  const problems = optionProblems("stageOut", options, { from: CHECKED, to: CHECKED });
  need(problems, "from", options.from);
  need(problems, "to", options.to);
  check("stageOut", problems);
  const from = shellWord(options.from);
  const dest = `${shellWord(options.to)}/"$slurmkit_job"`;
  // On several nodes each node's files go to a folder named after the node.
  const perNode = [
    "set -euo pipefail",
    `slurmkit_job=\${1:?}`,
    `if [ "$slurmkit_node_count" -gt 1 ]; then slurmkit_to=${dest}/"$slurmkit_node"; else slurmkit_to=${dest}; fi`,
    'mkdir -p -- "$slurmkit_to"',
    `if [ -e ${from} ]; then cp -R -- ${from} "$slurmkit_to"/; else echo "slurmkit: nothing to stage out at" ${from} "on $slurmkit_node" >&2; fi`,
  ].join("\n");
  return step("stageOut", {
    exit: [`slurmkit_on_every_node_at_exit ${quoteShell(perNode)} "$slurmkit_job" || echo "slurmkit: stage-out failed" >&2`],
  });
}
