import { localEnvironment } from "../core/job-environment.js";
import type { NodeSide } from "../core/node-side.js";

/**
 * Local processes' node side: LocalScheduler tells the runner its task
 * (`SLURMKIT_TASK_INDEX`) and job id (`SLURMKIT_JOB_ID`); nothing warns a
 * local task, and nothing requeues it.
 */
export const localNode: NodeSide = {
  scheduler: "local processes",
  detects: (env) => env.SLURMKIT_TASK_INDEX !== undefined,
  environment: localEnvironment,
  elementIndex: (env) => ({ text: env.SLURMKIT_TASK_INDEX ?? "0", from: "SLURMKIT_TASK_INDEX" }),
  requeueableJob: () => undefined,
  inStep: () => false,
  taskShare: () => ({}),
  address: async () => "127.0.0.1",
  ending: async () => ({ ending: "TIMEOUT", deadline: undefined }),
  requeue: async () => "local processes are not requeued",
};
