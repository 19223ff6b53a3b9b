// The scheduler seam on the client side: what the engine asks of a scheduler
// (Slurm, or local processes) to follow jobs, and of a pool of workers.
import type { JobState } from "../base/job-state.js";
import type { SubmittedArray } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";

/** One line of a scheduler's queue or accounting: a job id or an array range, and its state. */
export interface QueueEntry {
  /** The job id (the array's id for array elements). */
  readonly jobId: string;
  /** The array indices this line covers; undefined for a job that is not an array element. */
  readonly indices?: readonly number[];
  readonly state: JobState;
  /** The raw state text, e.g. "CANCELLED by 0". */
  readonly rawState: string;
}

/** How many calls of each kind a scheduler has made (for Slurm: sbatch, squeue, sacct, scancel, limits). */
export type SchedulerCalls = object;

/** What the watcher asks of a scheduler: one queue call and at most one accounting call per poll. */
export interface WatchedScheduler<Calls extends SchedulerCalls = SchedulerCalls> {
  /** The jobs' states while the scheduler lists them (squeue), finished ones included. */
  queue(jobIds: readonly string[]): Promise<QueueEntry[]>;
  /** The states of jobs the queue no longer lists (sacct); undefined when accounting cannot answer. */
  accounting(jobIds: readonly string[]): Promise<QueueEntry[] | undefined>;
  /** Calls made so far. */
  readonly calls: Calls;
}

/**
 * The workers of one packed submission, as the watcher follows them: array
 * jobs whose elements claim tasks, and more of them when every worker ended
 * with tasks left.
 */
export interface TaskPool {
  readonly folder: RunFolder;
  /** The worker arrays, first the submitted ones, then each top-up. */
  readonly arrays: readonly SubmittedArray[];
  /** The ids the scheduler knows the workers by. */
  readonly jobIds: readonly string[];
  /** A worker `A_w`'s element number (for its exit marker); undefined for an id not in this pool. */
  element(workerId: string): number | undefined;
  /** Whether a worker may still claim tasks, by the states of this poll. */
  alive(states: ReadonlyMap<string, JobState>): boolean;
  /** Whether workers it does not know yet may run (a round a worker submitted, taken in now, or one being submitted): then it has not ended. */
  moreWorkers(): Promise<boolean>;
  /** Takes in a worker array this process did not submit (a top-up by an earlier process). */
  adopt(jobId: string): Promise<void>;
  /** The starts of the blocks its workers claim (manifest version 3, blocks.ts); undefined when they claim one task at a time (version 2). */
  readonly blocks: Uint32Array | undefined;
  /** Task slots per worker: how many tasks a worker may have been running when it died. */
  readonly slots: number;
  /**
   * Every worker ended with tasks unclaimed: submit more, or say why not.
   * `progress` grows as workers take tasks (tasks with records, or version 2's
   * claim files): a round after which it did not grow is "stalled".
   */
  topUp(unclaimed: number, progress: number, states: ReadonlyMap<string, JobState>): Promise<"submitted" | "cancelled" | "stalled" | Error>;
}

/** Expands queue entries (array ranges included) into a map from `id` or `id_i` to state. */
export function indexEntries(entries: readonly QueueEntry[]): Map<string, JobState> {
  const out = new Map<string, JobState>();
  for (const e of entries) {
    if (e.indices === undefined) out.set(e.jobId, e.state);
    else for (const i of e.indices) out.set(`${e.jobId}_${i}`, e.state);
  }
  return out;
}
