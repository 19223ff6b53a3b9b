import { quoteCommand, quoteSbatch } from "./shell.js";

/** What goes into an sbatch script. */
export interface ScriptOptions {
  /** `#SBATCH` options as [long name, value] pairs; `true` for a flag. */
  readonly options: ReadonlyArray<readonly [string, string | true]>;
  /** Setup lines, in order, before the runner starts. */
  readonly setup: readonly string[];
  /** The runner command: node binary, runner script, run folder. */
  readonly runner: readonly string[];
  /** Ranks per job; above 1 the runner starts through srun. */
  readonly ranks: number;
}

/** Renders the sbatch script: the `#SBATCH` header, the setup lines, then the runner launch. */
export function renderScript(o: ScriptOptions): string {
  // SC2016: values are single-quoted on purpose, so that nothing in them expands.
  const lines = ["#!/bin/bash", "# shellcheck disable=SC2016", "# Written by slurmkit."];
  for (const [name, value] of o.options) {
    lines.push(value === true ? `#SBATCH --${name}` : `#SBATCH --${name}=${quoteSbatch(value)}`);
  }
  lines.push("");
  if (o.setup.length) {
    lines.push("# setup", ...o.setup, "");
  }
  lines.push("# run the task");
  if (o.ranks > 1) {
    // Since Slurm 22.05 srun does not take --cpus-per-task from the job.
    lines.push('[ -n "${SLURM_CPUS_PER_TASK:-}" ] && export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"');
    lines.push(`exec srun --ntasks=${o.ranks} --kill-on-bad-exit=1 --unbuffered ${quoteCommand(o.runner)}`);
  } else {
    lines.push(`exec ${quoteCommand(o.runner)}`);
  }
  return `${lines.join("\n")}\n`;
}
