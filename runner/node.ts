import { hostname } from "node:os";
import { expandRuntime, isRuntimeValue, type LateString } from "../src/protocol/runtime-value.js";

/** This node's name, as Slurm calls it. */
export const HOST = process.env.SLURMD_NODENAME ?? hostname();

/** A string, or a runtime value expanded with this node's environment. */
export function bind(value: LateString): string {
  return isRuntimeValue(value) ? expandRuntime(value, process.env, HOST) : value;
}

/** The task index: SLURMKIT_TASK_INDEX (LocalExecutor) or SLURM_ARRAY_TASK_ID, plus SLURMKIT_INDEX_OFFSET. */
export function taskIndex(env: NodeJS.ProcessEnv): number {
  const text = env.SLURMKIT_TASK_INDEX ?? env.SLURM_ARRAY_TASK_ID ?? "0";
  const offset = Number(env.SLURMKIT_INDEX_OFFSET ?? "0");
  const index = Number(text);
  if (!Number.isInteger(index) || index < 0) throw new Error(`Bad task index '${text}' (from SLURMKIT_TASK_INDEX or SLURM_ARRAY_TASK_ID)`);
  return index + offset;
}

/** The job id for results: `A_i` for array elements. */
export function jobIdOf(env: NodeJS.ProcessEnv): string {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID ?? env.SLURMKIT_JOB_ID ?? "local";
}
