import type { Job } from "../core/job.js";
import type { Manifest } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { Watcher } from "./watcher.js";

/**
 * How a scheduler rebuilds the futures of its submissions from their run
 * folders (loadJobs, the bin), by the manifest's `kind`, and follows them.
 */
export interface SchedulerReload {
  /** A manifest whose job ids never reached it, completed from the scheduler; the same manifest when there is nothing to find. */
  recover(dir: string, manifest: Manifest): Promise<Manifest>;
  /**
   * The futures of one submission, tracked on `watcher`; none when nothing
   * was submitted. A packed submission's tasks for which `settled` says true
   * (completed in their workers' streams, counted by the caller) get none:
   * the futures are then fewer than its tasks. Others ignore `settled`.
   */
  jobs(folder: RunFolder, manifest: Manifest, settled?: (index: number) => boolean): Job<unknown>[];
  /** The watcher that follows them. */
  readonly watcher: Watcher<object>;
}
