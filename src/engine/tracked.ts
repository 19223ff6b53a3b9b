// What the watcher keeps about each job it follows, and how it looks one up
// in a poll's queue states and folder listings.
import type { JobState } from "../base/job-state.js";
import { setJobId, type Job } from "../core/job.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { TaskPool } from "./scheduler.js";

/** What the watcher knows about one tracked job. */
export interface Tracked {
  readonly job: Job<unknown>;
  readonly folder: RunFolder;
  /** The id squeue and sacct know the job by (the array's id for elements); a pooled task's worker once known. */
  schedulerId: string;
  /** The array index, or undefined for a job that is not an array. */
  arrayIndex: number | undefined;
  /** Polls in a row that saw the job ended (or gone) without a result. */
  endedPolls: number;
  /** When the job was first seen ended without a result (ms since epoch). */
  endedSince: number | undefined;
  /** scancel succeeded for it: if it vanishes, it was cancelled. */
  cancelled: boolean;
  /** The array element whose exit marker must be listed before the result counts (stage-out done). */
  exitElement: number | undefined;
  /** Packed: the element's own stderr log; the task is RUNNING only once its state file exists. */
  elementStderr: string | undefined;
  /** A task of a packed submission: the workers that claim it. */
  readonly pool: TaskPool | undefined;
  /** Pooled: the worker (`A_w`) that took it, once known. */
  worker: string | undefined;
  /** Pooled: whether its submission stages out (exit markers per worker). */
  readonly exitMarkers: boolean;
  /** The REQUEUED state record last seen (its `at`), and when this process first saw it. */
  requeueSeen?: { readonly at: number; readonly since: number };
  /** Polls in a row whose reads of this job's files failed (not for want of the cluster). */
  readFailures: number;
}

/** How a job is tracked beyond its ids. */
export interface TrackOptions {
  /** A listed result counts only once this element's exit marker is listed too, or once the job has ended. */
  readonly exitElement?: number;
  /** The task is packed: its element's stderr log, read when the task has none. */
  readonly elementStderr?: string;
  /** The task is claimed by the workers of this pool; its id becomes its worker's. */
  readonly pool?: TaskPool;
  /** Pooled: its submission stages out, so a result counts once its worker's exit marker is listed. */
  readonly exitMarkers?: boolean;
}

/** A job's record as tracking starts. */
export function newTracked(job: Job<unknown>, folder: RunFolder, schedulerId: string, arrayIndex: number | undefined, options: TrackOptions): Tracked {
  return {
    job,
    folder,
    schedulerId,
    arrayIndex,
    endedPolls: 0,
    endedSince: undefined,
    cancelled: false,
    exitElement: options.exitElement,
    elementStderr: options.elementStderr,
    pool: options.pool,
    worker: undefined,
    exitMarkers: options.exitMarkers ?? false,
    readFailures: 0,
  };
}

/** A folder's listing, or its listing error thrown (inside a job's guard); undefined when it was not listed. */
export function listing(listings: ReadonlyMap<string, Set<string> | Error>, dir: string): Set<string> | undefined {
  const l = listings.get(dir);
  if (l instanceof Error) throw l;
  return l;
}

/**
 * A tracked job's state in an id-to-state map. sacct lists array elements that
 * never started under the array's own id ("123|CANCELLED"), so that id stands
 * for any element not listed by itself.
 */
export function lookup(states: ReadonlyMap<string, JobState>, t: Tracked): JobState | undefined {
  if (t.arrayIndex === undefined) return states.get(t.schedulerId);
  return states.get(`${t.schedulerId}_${t.arrayIndex}`) ?? states.get(t.schedulerId);
}

/** A pooled task's worker is known: from now on the task follows that array element. */
export async function learnWorker(t: Tracked, worker: string): Promise<void> {
  const [jobId, index] = worker.split("_");
  t.worker = worker;
  if (!jobId || index === undefined) return;
  t.schedulerId = jobId;
  t.arrayIndex = Number(index);
  t.elementStderr = t.folder.elementLog(jobId, Number(index), "err");
  if (t.pool && t.pool.element(worker) === undefined) await t.pool.adopt(jobId);
  if (t.exitMarkers) t.exitElement = t.pool?.element(worker);
  setJobId(t.job, worker);
}
