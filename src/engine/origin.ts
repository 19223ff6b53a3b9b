import type { TaskRequest } from "../protocol/records.js";
import { answerSweepIndex, folderOf, type Job } from "../core/job.js";
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
  /** What one task asked for, from the manifest (version 4 on). */
  readonly request?: TaskRequest | undefined;
}

// One source per submission, found through the folder its futures share: a million futures carry nothing each.
const sources = new WeakMap<RunFolder, OriginSource>();
const previousRuns = new WeakMap<Job<unknown>, Job<unknown>>();

/** Records where the futures made with `source.folder` come from. */
export function setOrigin(source: OriginSource): void {
  sources.set(source.folder, source);
}

answerSweepIndex((job) => {
  const source = originSourceOf(job);
  return source?.rerun ? rootIndex(source, job) : undefined;
});

/** Where a job's submission comes from, without building its JobOrigin; undefined for futures not made by slurmkit. */
export function originSourceOf(job: Job<unknown>): OriginSource | undefined {
  const folder = folderOf(job);
  return folder ? sources.get(folder) : undefined;
}

/** The index of a job's task in its original submission (its own index unless it is a rerun). */
export function rootIndex(source: OriginSource, job: Job<unknown>): number {
  return source.rerun ? (source.rerun.tasks[job.taskIndex] ?? job.taskIndex) : job.taskIndex;
}

/** Where a job comes from; undefined for futures not made by slurmkit's executors or loadJobs. */
export function originOf(job: Job<unknown>): JobOrigin | undefined {
  const s = originSourceOf(job);
  if (!s) return undefined;
  return {
    kind: s.kind,
    folder: s.folder,
    transport: s.transport,
    root: { dir: s.rerun?.dir ?? s.folder.dir, index: rootIndex(s, job) },
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
