// What users see of a watcher (`executor.watcher`), and how it reports its health.
import type { WatcherIntervals } from "./poll-loop.js";
import type { SchedulerCalls } from "./scheduler.js";

/** Polls in a row that fail (squeue, or the cluster out of reach) before the watcher reports it; it reports again when a poll works. */
export const FAILING_POLLS = 5;

/** What the watcher reports about its polls: failing (with the last error), or working again. */
export type WatcherHealth = { readonly kind: "failing"; readonly error: Error; readonly failedPolls: number } | { readonly kind: "recovered"; readonly failedPolls: number };

/** What `watcher.stats()` tells: scheduler calls, polls and listings, and the last error. */
export interface WatcherStats<Calls extends SchedulerCalls = SchedulerCalls> {
  /** Scheduler calls made so far by this watcher and the executors that share it (for Slurm: sbatch, squeue, sacct, scancel, limits). */
  calls: Calls;
  /** Polls made. */
  polls: number;
  /** Folder listings made to look for results. */
  listings: number;
  /** The last error a poll hit (a poll error never fails the jobs; the next poll retries). */
  lastError: Error | undefined;
  /** Polls in a row that failed as a whole (squeue failed, or the cluster was out of reach); 0 after one that worked. */
  failedPolls: number;
}

/**
 * What `executor.watcher` shows of the watcher that serves its jobs: scheduler
 * call counts, poll statistics, and the polling interval.
 */
export interface JobWatcher<Calls extends SchedulerCalls = SchedulerCalls> {
  /** A copy of the counts so far: scheduler calls, polls and listings, and the last error a poll hit. */
  stats(): WatcherStats<Calls>;
  /** Jobs tracked and not yet settled. */
  readonly trackedCount: number;
  /** The current interval between polls. */
  readonly intervalMs: number;
  /** The intervals in force. */
  readonly intervals: WatcherIntervals;
  /** Sets the polling floor and ceiling; the floor cannot go below MIN_POLL_INTERVAL_MS. */
  setIntervals(intervals: Partial<WatcherIntervals>): void;
  /** Polls now, ignoring the floor: resolves after a poll that started after this call. */
  pollNow(): Promise<void>;
  /**
   * Hears when polls keep failing (FAILING_POLLS in a row, with the error) and
   * when one works again. Jobs keep waiting meanwhile. Without a listener the
   * watcher writes one line to stderr for each. Returns a function that
   * removes the listener.
   */
  onHealth(listener: (event: WatcherHealth) => void): () => void;
}

/** The listeners of a watcher's health; without one, a line on stderr per event. */
export class HealthReport {
  readonly #listeners = new Set<(event: WatcherHealth) => void>();

  /** Adds a listener; returns a function that removes it. */
  listen(listener: (event: WatcherHealth) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells every listener; a listener's own error stops neither the polls nor the other listeners. */
  report(event: WatcherHealth): void {
    if (this.#listeners.size === 0) {
      process.stderr.write(
        event.kind === "failing"
          ? `slurmkit: ${event.failedPolls} polls in a row failed; jobs keep waiting and polls go on. Last error: ${event.error.message.split("\n")[0]}\n`
          : `slurmkit: polls work again after ${event.failedPolls} failed\n`,
      );
    }
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        process.stderr.write(`slurmkit: a watcher health listener threw: ${(error as Error).stack ?? String(error)}\n`);
      }
    }
  }
}
