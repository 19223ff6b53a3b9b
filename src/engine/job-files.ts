// What the watcher reads and writes of one job's files, beyond its result.
import type { JobState } from "../base/job-state.js";
import { packr } from "../protocol/codec.js";
import type { StateFile } from "../protocol/records.js";
import { failedResult } from "../protocol/results.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";
import { readTaskLog } from "./task-logs.js";
import type { Tracked } from "./tracked.js";

/** What the watcher reads: result, state and log files, folder listings, and record streams from an offset. */
export type WatchedFiles = Pick<Transport, "readFile" | "list" | "writeFile" | "readFrom">;

/**
 * How long a task whose runner requeued it counts as pending although Slurm
 * shows it ended: the attempt that was requeued may show so for a moment.
 * The next attempt's start rewrites the state; one that never starts (its
 * launch failed) ends with Slurm's state after this.
 */
const REQUEUE_GRACE_MS = 60_000;

/**
 * Whether the task's runner requeued it (its last state `s` says REQUEUED) less
 * than REQUEUE_GRACE_MS ago, timed by this process's clock from when it
 * first saw that record (the node's clock may differ).
 */
export async function requeuedRecently(s: StateFile | undefined, t: Tracked): Promise<boolean> {
  if (s?.state !== "REQUEUED") return false;
  if (t.requeueSeen?.at !== s.at) t.requeueSeen = { at: s.at, since: Date.now() };
  return Date.now() - t.requeueSeen.since < REQUEUE_GRACE_MS;
}

/**
 * A pooled task settled without a result of its own: write one that says how
 * it ended, so that tasks that run after it (checked on the node) can tell.
 */
export async function recordEnd(files: WatchedFiles, t: Tracked, state: JobState, message: string): Promise<void> {
  if (!t.pool || state === "COMPLETED") return;
  const ended = state === "PENDING" || state === "RUNNING" ? "UNKNOWN" : state;
  const result = failedResult({ name: "WorkerEnded", message }, { host: "", jobId: t.job.id, startedAt: 0 }, ended);
  await files.writeFile(t.job.paths.result, packr.pack(result)).catch(unlessUnreachable(undefined));
}

/**
 * The task's stderr (a packed task's from its worker's log stream); for a packed task that wrote none, its element's (a
 * failed setup, say). A task that ended CANCELLED with no log at all (not by
 * this client), in a submission where an element found no usable Node.js,
 * was cancelled for it: that element's line.
 */
export async function readStderr(files: WatchedFiles, t: Tracked, state?: JobState): Promise<string> {
  const streamed = t.pool ? String(await readTaskLog(files, t.folder, t.job.taskIndex, "err", t.worker)) : "";
  const own = streamed || (await files.readFile(t.job.paths.stderr).then(String, unlessUnreachable("")));
  if (own) return own;
  const element = t.elementStderr === undefined ? "" : await files.readFile(t.elementStderr).then(String, unlessUnreachable(""));
  if (element || state !== "CANCELLED" || t.cancelled) return element;
  const unusable = await files.readFile(t.folder.nodeUnusable).then(String, unlessUnreachable(""));
  return unusable ? `${unusable.trimEnd()} (cancelled before it started)\n` : "";
}
