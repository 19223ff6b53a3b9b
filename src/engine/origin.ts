import type { Job } from "../core/job.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { Transport } from "../transport/transport.js";

/** Where a job future comes from: its submission, and the original task it runs again if it is a rerun (internal). */
export interface JobOrigin {
  /** The scheduler that runs it, as its manifest names it ("slurm", "local"). */
  readonly kind: string;
  /** The job's own submission folder. */
  readonly folder: RunFolder;
  /** Where that folder is. */
  readonly transport: Transport;
  /** The original submission's folder and the task's index there; the job's own unless it reruns a task. */
  readonly root: { readonly dir: string; readonly index: number };
  /** The run this one replaced, when a rerun was loaded together with it. */
  previous?: Job<unknown>;
}

const origins = new WeakMap<Job<unknown>, JobOrigin>();

/** Records where a job comes from. */
export function setOrigin(job: Job<unknown>, origin: JobOrigin): void {
  origins.set(job, origin);
}

/** Where a job comes from; undefined for futures not made by slurmkit's executors or loadJobs. */
export function originOf(job: Job<unknown>): JobOrigin | undefined {
  return origins.get(job);
}

/** Every run of a job's task, oldest first: the original, then each rerun up to `job` (those loaded with it). */
export function runsOf(job: Job<unknown>): Job<unknown>[] {
  const runs: Job<unknown>[] = [];
  for (let j: Job<unknown> | undefined = job; j; j = origins.get(j)?.previous) runs.unshift(j);
  return runs;
}
