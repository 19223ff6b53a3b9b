import { isTerminal, parseJobState, type JobState } from "./job-state.js";
import type { Job } from "./job.js";
import { outcomeFromResult, outcomeWithoutResult } from "./outcome.js";
import { RunFolder, type ResultFile, type StateFile } from "./run-folder.js";
import { Scheduler, type QueueEntry, type SchedulerCallCounts } from "./scheduler.js";
import { packr } from "./spec-file.js";
import type { Transport } from "./transport.js";

/** What the watcher knows about one tracked Slurm job. */
interface Tracked {
  readonly job: Job<unknown>;
  readonly folder: RunFolder;
  /** The id squeue and sacct know the job by (the array's id for elements). */
  readonly schedulerId: string;
  /** The array index, or undefined for a job that is not an array. */
  readonly arrayIndex: number | undefined;
  /** Polls in a row that saw the job ended (or gone) without a result. */
  endedPolls: number;
  /** scancel succeeded for it: if it vanishes, it was cancelled. */
  cancelled: boolean;
}

/** Polling intervals of the watcher. */
export interface WatcherIntervals {
  /** The floor: no two polls closer than this. @default 1000 */
  readonly minMs: number;
  /** The ceiling the interval backs off to while nothing changes. @default 15000 */
  readonly maxMs: number;
}

/** Counts that tests and users can read. */
export interface WatcherStats {
  /** Polls made. */
  polls: number;
  /** Folder listings made to look for results. */
  listings: number;
  /** The last error a poll hit (a poll error never fails the jobs; the next poll retries). */
  lastError: Error | undefined;
}

/** The floor below which the interval cannot be set. */
export const MIN_POLL_INTERVAL_MS = 200;

/**
 * One watcher per transport per process, shared by every Slurm job: each poll
 * makes one squeue call for all tracked jobs, at most one sacct call for those
 * squeue no longer lists, and one listing per results folder.
 */
export class Watcher {
  static readonly #byKey = new Map<string, Watcher>();

  /** The watcher for a transport (one per transport key). */
  static for(transport: Transport): Watcher {
    let w = Watcher.#byKey.get(transport.key);
    if (!w) {
      w = new Watcher(new Scheduler(transport));
      Watcher.#byKey.set(transport.key, w);
    }
    return w;
  }

  readonly stats: WatcherStats = { polls: 0, listings: 0, lastError: undefined };
  #intervals: WatcherIntervals = { minMs: 1000, maxMs: 15_000 };
  #intervalMs = 1000;
  readonly #tracked = new Map<Job<unknown>, Tracked>();
  #waiters = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #pollAgain = false;

  private constructor(readonly scheduler: Scheduler) {}

  /** Scheduler calls made so far by this watcher and its executors. */
  get calls(): Readonly<SchedulerCallCounts> {
    return this.scheduler.calls;
  }

  /** Number of jobs tracked and not yet settled. */
  get trackedCount(): number {
    return this.#tracked.size;
  }

  /** Sets the polling floor and ceiling; the floor cannot go below MIN_POLL_INTERVAL_MS. */
  setIntervals(intervals: Partial<WatcherIntervals>): void {
    const minMs = Math.max(MIN_POLL_INTERVAL_MS, intervals.minMs ?? this.#intervals.minMs);
    const maxMs = Math.max(minMs, intervals.maxMs ?? this.#intervals.maxMs);
    this.#intervals = { minMs, maxMs };
    this.#intervalMs = minMs;
  }

  /** Starts tracking a job. */
  track(job: Job<unknown>, folder: RunFolder, schedulerId: string, arrayIndex: number | undefined): void {
    this.#tracked.set(job, { job, folder, schedulerId, arrayIndex, endedPolls: 0, cancelled: false });
    this.#schedule();
  }

  /**
   * Records that scancel succeeded for a job. Slurm drops a cancelled pending
   * array element from squeue at once and sacct never lists it, so a
   * cancelled job that vanishes is CANCELLED, not UNKNOWN.
   */
  markCancelled(job: Job<unknown>): void {
    const t = this.#tracked.get(job);
    if (t) t.cancelled = true;
  }

  /** Someone waits: poll now, and keep the process alive until the wait ends. */
  acquire(): void {
    this.#waiters++;
    this.#timer?.ref();
    this.#pollSoon();
  }

  release(): void {
    this.#waiters = Math.max(0, this.#waiters - 1);
    if (this.#waiters === 0) this.#timer?.unref();
  }

  /** Polls now (after any poll in progress). */
  pollNow(): Promise<void> {
    if (this.#polling) {
      this.#pollAgain = true;
      return this.#polling;
    }
    this.#polling = this.#poll().finally(() => {
      this.#polling = undefined;
      if (this.#pollAgain) {
        this.#pollAgain = false;
        void this.pollNow();
      }
      this.#schedule();
    });
    return this.#polling;
  }

  #pollSoon(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.pollNow();
  }

  #schedule(): void {
    if (this.#timer || this.#polling || this.#tracked.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.pollNow();
    }, this.#intervalMs);
    if (this.#waiters === 0) this.#timer.unref();
  }

  async #poll(): Promise<void> {
    const tracked = [...this.#tracked.values()].filter((t) => !t.job.done());
    for (const [job, t] of this.#tracked) if (t.job.done()) this.#tracked.delete(job);
    if (tracked.length === 0) return;
    this.stats.polls++;
    let changed = false;
    try {
      const ids = [...new Set(tracked.map((t) => t.schedulerId))];
      const queue = indexEntries(await this.scheduler.queue(ids));
      const results = await this.#listResults(tracked);
      const absent: Tracked[] = [];
      for (const t of tracked) {
        if (await this.#settleFromResult(t, results)) {
          changed = true;
          continue;
        }
        const state = lookup(queue, t);
        if (state === undefined) absent.push(t);
        else changed = (await this.#observe(t, state)) || changed;
      }
      if (absent.length) {
        const acct = await this.scheduler.accounting([...new Set(absent.map((t) => t.schedulerId))]);
        const byKey = acct ? indexEntries(acct) : new Map<string, JobState>();
        for (const t of absent) {
          const state = lookup(byKey, t);
          if (state !== undefined) changed = (await this.#observe(t, state)) || changed;
          else changed = (await this.#gone(t)) || changed;
        }
      }
      this.stats.lastError = undefined;
    } catch (error) {
      this.stats.lastError = error as Error;
    }
    this.#intervalMs = changed ? this.#intervals.minMs : Math.min(this.#intervals.maxMs, Math.round(this.#intervalMs * 1.5));
  }

  async #listResults(tracked: readonly Tracked[]): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    const dirs = [...new Set(tracked.map((t) => t.folder.resultsDir))];
    await Promise.all(
      dirs.map(async (dir) => {
        this.stats.listings++;
        out.set(dir, new Set(await this.scheduler.transport.list(dir)));
      }),
    );
    return out;
  }

  async #settleFromResult(t: Tracked, results: Map<string, Set<string>>): Promise<boolean> {
    if (!results.get(t.folder.resultsDir)?.has(RunFolder.resultName(t.job.taskIndex))) return false;
    const bytes = await this.scheduler.transport.readFile(t.job.paths.result);
    t.job.settle(outcomeFromResult(t.job, packr.unpack(bytes) as ResultFile));
    this.#tracked.delete(t.job);
    return true;
  }

  async #observe(t: Tracked, state: JobState): Promise<boolean> {
    if (!isTerminal(state)) {
      t.endedPolls = 0;
      return t.job.setState(state);
    }
    // Ended without a result: confirm on a second poll, so a result that is
    // still on its way through a shared file system is not missed.
    if (++t.endedPolls < 2) return false;
    await this.#fail(t, state);
    return true;
  }

  async #gone(t: Tracked): Promise<boolean> {
    if (++t.endedPolls < 2) return false;
    let state: JobState = t.cancelled ? "CANCELLED" : "UNKNOWN";
    const file = await this.scheduler.transport.readFile(t.job.paths.state).catch(() => undefined);
    if (file && !t.cancelled) {
      const s = packr.unpack(file) as StateFile;
      state = s.state === "RUNNING" ? "FAILED" : parseJobState(s.state);
    }
    await this.#fail(t, state);
    return true;
  }

  async #fail(t: Tracked, state: JobState): Promise<void> {
    const stderr = await this.scheduler.transport.readFile(t.job.paths.stderr).then(String, () => "");
    t.job.settle(outcomeWithoutResult(t.job, state, stderr));
    this.#tracked.delete(t.job);
  }
}

/**
 * A tracked job's state in an id-to-state map. sacct lists array elements that
 * never started under the array's own id ("123|CANCELLED"), so that id stands
 * for any element not listed by itself.
 */
function lookup(states: ReadonlyMap<string, JobState>, t: Tracked): JobState | undefined {
  if (t.arrayIndex === undefined) return states.get(t.schedulerId);
  return states.get(`${t.schedulerId}_${t.arrayIndex}`) ?? states.get(t.schedulerId);
}

/** Expands squeue/sacct entries (array ranges included) into a map from `id` or `id_i` to state. */
export function indexEntries(entries: readonly QueueEntry[]): Map<string, JobState> {
  const out = new Map<string, JobState>();
  for (const e of entries) {
    if (e.indices === undefined) out.set(e.jobId, e.state);
    else for (const i of e.indices) out.set(`${e.jobId}_${i}`, e.state);
  }
  return out;
}
