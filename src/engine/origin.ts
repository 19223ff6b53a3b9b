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
  previous: Job<unknown> | undefined;
}

/** What the futures of one submission share about where they come from. */
export interface OriginSource {
  readonly kind: string;
  readonly folder: RunFolder;
  readonly transport: Transport;
  /** A rerun: the original submission's folder, and the original index of each of its tasks. */
  readonly rerun?: { readonly dir: string; readonly tasks: readonly number[] };
}

// One source per submission, shared by its futures: a million futures do not each carry their own.
const sources = new WeakMap<Job<unknown>, OriginSource>();
const previousRuns = new WeakMap<Job<unknown>, Job<unknown>>();

/** Records where a job comes from. */
export function setOrigin(job: Job<unknown>, source: OriginSource): void {
  sources.set(job, source);
}

/** Where a job comes from; undefined for futures not made by slurmkit's executors or loadJobs. */
export function originOf(job: Job<unknown>): JobOrigin | undefined {
  const s = sources.get(job);
  if (!s) return undefined;
  const i = job.taskIndex;
  return {
    kind: s.kind,
    folder: s.folder,
    transport: s.transport,
    root: s.rerun ? { dir: s.rerun.dir, index: s.rerun.tasks[i] ?? i } : { dir: s.folder.dir, index: i },
    get previous() {
      return previousRuns.get(job);
    },
    set previous(run) {
      if (run) previousRuns.set(job, run);
      else previousRuns.delete(job);
    },
  };
}

/** Every run of a job's task, oldest first: the original, then each rerun up to `job` (those loaded with it). */
export function runsOf(job: Job<unknown>): Job<unknown>[] {
  const runs: Job<unknown>[] = [];
  for (let j: Job<unknown> | undefined = job; j; j = previousRuns.get(j)) runs.unshift(j);
  return runs;
}
