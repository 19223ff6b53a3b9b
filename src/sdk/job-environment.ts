import type { NodeSide } from "../core/node-side.js";
import { torchEnvironment, type JobEnvironment, type TorchDistributedEnv } from "../core/job-environment.js";
import { localNode } from "../local/node.js";
import { SCHEDULERS } from "./schedulers.js";

/**
 * Where this task runs, read from its scheduler's environment: call it
 * inside a task. Under Slurm, a single-rank task (started by the batch
 * script, not srun) is rank 0 of 1, and srun's ranks read their step's
 * variables. Outside a scheduler it describes this process on this machine:
 * rank 0 of 1, job id `local-<pid>`.
 *
 * @example
 * const { rank, worldSize, hosts } = jobEnvironment();
 */
export function jobEnvironment(env: NodeJS.ProcessEnv = process.env): JobEnvironment {
  return nodeSideOf(env).environment(env);
}

/**
 * The variables of PyTorch's env:// rendezvous for this rank: MASTER_ADDR is
 * the address of rank 0's node (the first host), MASTER_PORT is derived from
 * the job id so every rank agrees without talking. Call it inside a task;
 * command tasks get them with `command(..., { torchDistributed: true })`.
 */
export function torchDistributedEnv(environment: JobEnvironment = jobEnvironment()): Promise<TorchDistributedEnv> {
  return torchEnvironment(environment, nodeSideOf(process.env).address);
}

/** The node side that describes `env`: local processes', the scheduler's whose job it is, or local processes' outside any. */
function nodeSideOf(env: NodeJS.ProcessEnv): NodeSide {
  // A local task is local, even when its client runs inside a scheduler's allocation (whose variables it inherits).
  if (localNode.detects(env)) return localNode;
  return SCHEDULERS.find((s) => s.node.detects(env))?.node ?? localNode;
}
