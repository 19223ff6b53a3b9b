// What every executor offers, whatever scheduler runs its tasks.
import { z } from "zod";
import { accepts, type OptionShape } from "../base/options.js";
import { Job } from "../core/job.js";
import type { ResultOf, TaskSpec } from "../core/tasks.js";
import type { SchedulerCalls } from "./scheduler.js";
import type { JobWatcher } from "./watcher.js";

/** Options of mapArray(). */
export interface MapArrayOptions extends SubmitOptions {
  /**
   * Pack the tasks into this many array elements that work as workers: each
   * claims tasks one at a time and runs each with exactly one task's
   * resources and time limit, so a task gets what it would get in its own
   * element. "auto" picks workers and slots from the task count, the
   * partition's free capacity, `arrayParallelism`, MaxSubmitJobs and
   * MaxTime, and falls back to one task per element when packing cannot help.
   * @default one task per element
   */
  readonly workers?: number | "auto";
  /**
   * Task slots per worker: the worker asks for `slots` times one task's CPUs,
   * memory and GPUs (and memory of its own, see the README's "Memory in a
   * worker"), and runs up to `slots` tasks at once, each with its own
   * share (its own GPUs in CUDA_VISIBLE_DEVICES, its own CPUs where the node
   * allows pinning). @default 1, or what "auto" picks
   */
  readonly slots?: number;
  /**
   * The older way to ask for workers: `k` makes ceil(N / k) workers, "auto"
   * is `workers: "auto"`. Submissions with more elements than MaxArraySize
   * are split into several array jobs either way. Kept, not deprecated: it
   * maps exactly onto `workers`, and users who think in tasks per element
   * (submitit's habit) would otherwise do that division themselves.
   * @default 1
   */
  readonly tasksPerElement?: number | "auto";
}

/** Options of submit() and mapArray(). */
export interface SubmitOptions {
  /**
   * Jobs that must all complete successfully before these tasks start
   * (Slurm's `afterok`). If one of them fails, these jobs end CANCELLED
   * without running (`--kill-on-invalid-dep=yes`), rather than pending forever.
   */
  readonly after?: readonly Job<unknown>[];
}

const countOrAuto = accepts.or(z.union([z.number().int().positive(), z.literal("auto")]), 'a positive integer or "auto"');

/** What submit()'s options accept, checked at run time (`checkOptions`). */
export const SUBMIT_OPTIONS: OptionShape<SubmitOptions> = {
  after: accepts.or(z.array(z.custom((v) => v instanceof Job)), "an array of jobs (futures from submit, mapArray or loadJobs)"),
};

/** What mapArray()'s options accept. */
export const MAP_ARRAY_OPTIONS: OptionShape<MapArrayOptions> = { ...SUBMIT_OPTIONS, workers: countOrAuto, slots: accepts.positiveInteger, tasksPerElement: countOrAuto };

/**
 * An executor: it submits tasks and returns one future per task. SlurmExecutor
 * and LocalExecutor implement it, and `autoExecutor` and `executorFromFlags`
 * return it.
 */
export interface Executor {
  /** The folder of its submissions (a path on the cluster for SSH). */
  readonly folder: string;
  /** The watcher that settles its futures: `stats()` counts scheduler calls and polls. */
  readonly watcher: JobWatcher<SchedulerCalls>;
  /** Submits one task. */
  submit<T extends TaskSpec<unknown>>(task: T, options?: SubmitOptions): Promise<Job<ResultOf<T>>>;
  /** Submits tasks; one future per task, in order. */
  mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options?: MapArrayOptions): Promise<Job<ResultOf<T>>[]>;
  /** Lets go of what it holds (an SSH connection, its watcher once its jobs settled). */
  close(): void;
}
