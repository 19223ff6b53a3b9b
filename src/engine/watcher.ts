// The watcher: one class of about 400 lines, since the poll, the guard on
// reads and the end-state machine share its tracked jobs, the poll's failures
// and its loop. What needs none of that lives beside it: the tracked record
// (tracked.ts), a job's other files (job-files.ts), and what users see of it
// (job-watcher.ts).
import { inChunks } from "../base/in-chunks.js";
import { isTerminal, type JobState } from "../base/job-state.js";
import { setJobId, setJobState, settleJob, type Job, type TaskRun } from "../core/job.js";
import { outcomeFromResult, outcomeWithoutResult, runOfResult } from "../core/outcome.js";
import { decodeClaim, decodeResult, decodeState, stateFileEnd, type ResultFile, type StateFile } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { isUnreachable, unlessUnreachable } from "../transport/transport.js";
import { PollLoop, type WatcherIntervals } from "./poll-loop.js";
import { FAILING_POLLS, HealthReport, type JobWatcher, type WatcherHealth, type WatcherStats } from "./job-watcher.js";
import { indexEntries, type SchedulerCalls, type TaskPool, type WatchedScheduler } from "./scheduler.js";
import { handBackUnstarted } from "./releases.js";
import { learnWorker, listing, lookup, newTracked, type TrackOptions, type Tracked } from "./tracked.js";
import { readStderr, recordEnd, requeuedRecently, type WatchedFiles } from "./job-files.js";
import { taskRecords, type TaskRecords } from "./task-records.js";
import { PooledUnit } from "./pooled-unit.js";

export { MIN_POLL_INTERVAL_MS, type WatcherIntervals } from "./poll-loop.js";
export { FAILING_POLLS, type JobWatcher, type WatcherHealth, type WatcherStats } from "./job-watcher.js";

/** Polls in a row that fail to read a job's files (its results folder, result or state) before it settles UNKNOWN with the error. */
export const READ_ATTEMPTS = 3;

export type { WatchedFiles } from "./job-files.js";

/**
 * Follows jobs of one scheduler through its queue and the run folders, and
 * settles their futures. Each poll makes one queue call for all tracked jobs,
 * at most one accounting call for those the queue no longer lists, and one
 * listing per results folder. One watcher serves each scheduler and
 * transport per process (`Watcher.shared`).
 */
export class Watcher<Calls extends SchedulerCalls = SchedulerCalls> implements JobWatcher<Calls> {
  static readonly #byKey = new Map<string, Watcher<SchedulerCalls>>();

  /** The watcher kept under `key`, made by `make` on first use; `forget` runs when it is let go. */
  static shared<C extends SchedulerCalls>(key: string, make: () => Watcher<C>): Watcher<C> {
    let w = Watcher.#byKey.get(key) as Watcher<C> | undefined;
    if (!w) {
      w = make();
      w.#key = key;
      Watcher.#byKey.set(key, w as unknown as Watcher<SchedulerCalls>);
    }
    return w;
  }

  /**
   * The transport's executor closed: its watcher (and scheduler) are let go
   * now if no job is tracked, else once the last one settles. A later use of
   * the transport makes new ones.
   */
  static release(key: string): void {
    const w = Watcher.#byKey.get(key);
    if (!w) return;
    w.#closing = true;
    w.#dropIfIdle();
  }

  /** How many watchers this process keeps (one per transport key in use). */
  static get count(): number {
    return Watcher.#byKey.size;
  }

  /** Its key in the map of shared watchers; undefined for a watcher of its own. */
  #key: string | undefined;
  /** Its executor closed: let go of it once nothing is tracked. */
  #closing = false;

  #dropIfIdle(): void {
    if (!this.#closing || this.trackedCount > 0 || this.#key === undefined) return;
    if (Watcher.#byKey.get(this.#key) === (this as unknown as Watcher<SchedulerCalls>)) Watcher.#byKey.delete(this.#key);
    this.onIdle?.();
  }

  readonly #stats: Omit<WatcherStats, "calls"> = { polls: 0, listings: 0, lastError: undefined, failedPolls: 0 };
  readonly #health = new HealthReport();
  /** Jobs whose reads failed in the poll under way. */
  readonly #failedThisPoll = new Set<Tracked>();
  /** A unit's folder could not be read in the poll under way. */
  #unitFailed = false;
  readonly #tracked = new Map<Job<unknown>, Tracked>();
  /** Packed submissions' futures that no worker has taken up yet, one unit per submission. */
  readonly #units = new Map<TaskPool, PooledUnit>();
  readonly #loop = new PollLoop(
    () => this.#poll(),
    () => this.trackedCount > 0,
  );

  /** A watcher of `scheduler`'s jobs, reading their files through `files`; `onIdle` runs when a shared one is let go. */
  constructor(
    private readonly scheduler: WatchedScheduler<Calls>,
    private readonly files: WatchedFiles,
    private readonly onIdle?: () => void,
  ) {}

  /** A copy of the counts so far (see JobWatcher). */
  stats(): WatcherStats<Calls> {
    return { ...this.#stats, calls: { ...this.scheduler.calls } };
  }

  /** Number of jobs tracked and not yet settled. */
  get trackedCount(): number {
    let n = this.#tracked.size;
    for (const unit of this.#units.values()) n += unit.waiting;
    return n;
  }

  /** The current interval between polls: the floor after a change, growing by 1.5× while nothing changes. */
  get intervalMs(): number {
    return this.#loop.intervalMs;
  }

  /** The intervals in force. */
  get intervals(): WatcherIntervals {
    return this.#loop.intervals;
  }

  /** Sets the polling floor and ceiling; the floor cannot go below MIN_POLL_INTERVAL_MS. */
  setIntervals(intervals: Partial<WatcherIntervals>): void {
    this.#loop.setIntervals(intervals);
  }

  /** Hears when polls keep failing and when they work again (see JobWatcher). */
  onHealth(listener: (event: WatcherHealth) => void): () => void {
    return this.#health.listen(listener);
  }

  /** Stops tracking a job that will not be waited on (a rerun replaced it). */
  forget(job: Job<unknown>): void {
    if (this.#tracked.delete(job)) return;
    for (const unit of this.#units.values()) if (unit.holds(job)) unit.take(job.taskIndex);
  }

  /** Starts tracking a job. */
  track(job: Job<unknown>, folder: RunFolder, schedulerId: string, arrayIndex: number | undefined, options: TrackOptions = {}): void {
    this.#closing = false;
    this.#tracked.set(job, newTracked(job, folder, schedulerId, arrayIndex, options));
    this.#loop.schedule();
  }

  /**
   * Starts tracking the futures of a packed submission, whose workers claim
   * its tasks. They are followed as one unit until a task shows a sign of
   * life, so a poll costs what changed, however many futures wait.
   */
  trackPool(jobs: readonly Job<unknown>[], pool: TaskPool, exitMarkers: boolean): void {
    this.#closing = false;
    const unit = this.#units.get(pool);
    // Room for every task's records at once: a million tasks' arrays are not grown by doubling.
    taskRecords(this.files, pool.folder).reserve(jobs.reduce((n, job) => Math.max(n, job.taskIndex + 1), 0));
    if (unit) for (const job of jobs) unit.putBack(job);
    else this.#units.set(pool, new PooledUnit(pool, pool.folder, exitMarkers, jobs));
    this.#loop.schedule();
  }

  /**
   * Records that scancel succeeded for a job, and polls soon. Slurm drops a
   * cancelled pending array element from squeue at once and sacct never lists
   * it, so a cancelled job that vanishes is CANCELLED, not UNKNOWN.
   */
  markCancelled(job: Job<unknown>): void {
    const t = this.#tracked.get(job);
    if (t) t.cancelled = true;
    for (const unit of this.#units.values()) if (unit.holds(job)) unit.cancelled.add(job.taskIndex);
    this.#loop.schedule(0);
  }

  /** Someone waits: poll soon (never before the floor), and keep the process alive until the wait ends. */
  acquire(): void {
    this.#loop.acquire();
  }

  /** That wait ended. */
  release(): void {
    this.#loop.release();
  }

  /** Polls now, ignoring the floor: a poll that starts after this call. For tests and explicit refreshes. */
  pollNow(): Promise<void> {
    return this.#loop.pollNow();
  }

  /** One poll; resolves whether any job changed, or undefined when none is tracked. */
  async #poll(): Promise<boolean | undefined> {
    for (const [job, t] of this.#tracked) if (t.job.done()) this.#tracked.delete(job);
    for (const [pool, unit] of this.#units) if (unit.waiting === 0) this.#units.delete(pool);
    const tracked = [...this.#tracked.values()];
    const units = [...this.#units.values()];
    if (tracked.length === 0 && units.length === 0) {
      this.#dropIfIdle();
      return undefined;
    }
    this.#stats.polls++;
    let changed = false;
    this.#failedThisPoll.clear();
    this.#unitFailed = false;
    try {
      const pools = new Set([...tracked.flatMap((t) => (t.pool ? [t.pool] : [])), ...units.map((u) => u.pool)]);
      const ids = new Set(tracked.map((t) => t.schedulerId));
      for (const pool of pools) for (const id of pool.jobIds) ids.add(id);
      // Without an answer from the scheduler (its controller restarts, say), tasks with a result still settle; nothing else is judged.
      let queueError: Error | undefined;
      const queue = await this.scheduler.queue([...ids]).then(indexEntries, (error: Error) => {
        if (isUnreachable(error)) throw error;
        queueError = error;
        return new Map<string, JobState>();
      });
      if (!queueError) {
        // squeue answers again: say so before any job settles.
        const failed = this.#stats.failedPolls;
        this.#stats.failedPolls = 0;
        if (failed >= FAILING_POLLS) this.#health.report({ kind: "recovered", failedPolls: failed });
      }
      const results = await this.#list([...tracked.map((t) => t.folder.resultsDir), ...units.map((u) => u.folder.resultsDir)]);
      // Packed submissions: what their workers' streams gained since the last poll.
      const streams = await this.#follow([...tracked.flatMap((t) => (t.pool ? [t.folder] : [])), ...units.map((u) => u.folder)]);
      // Packed tasks of a running element, and pooled tasks (version 1 folders): RUNNING once their own state file exists.
      const started = await this.#list([
        ...tracked.filter((t) => (t.elementStderr !== undefined && lookup(queue, t) === "RUNNING") || (t.pool && t.worker === undefined)).map((t) => t.folder.stateDir),
        ...units.map((u) => u.folder.stateDir),
      ]);
      // Waiting packed tasks that show a sign of life are followed alone from now on; those that completed settle at once.
      for (const unit of units) {
        const taken = this.#takeIn(unit, results, streams, started);
        tracked.push(...taken.tracked);
        // A change like any other: the next poll comes at the floor, not backed off.
        if (taken.settled > 0) changed = true;
      }
      const absent: Tracked[] = [];
      // Jobs are judged JUDGED_AT_ONCE at a time: the reads of many ended jobs go out together (over ssh, in one command: read-batch.ts).
      const judged = await inChunks(tracked, JUDGED_AT_ONCE, (t) =>
        this.#guard(t, async () => {
          const unlisted = results.get(t.folder.resultsDir);
          if (unlisted instanceof Error && !t.pool) {
            // Slurm says the job has not ended: its result cannot be there yet, so a folder that cannot be listed is no failure now.
            const now = lookup(queue, t);
            if (now !== undefined && !isTerminal(now)) return this.#observe(t, now);
            // Without the queue it cannot be told: no failure is counted.
            if (queueError) return false;
          }
          const listed = listing(results, t.folder.resultsDir);
          const streamed = t.pool ? followed(streams, t) : undefined;
          const hasResult = listed?.has(RunFolder.resultName(t.job.taskIndex)) || streamed?.hasResult(t.job.taskIndex) === true;
          if (t.pool && t.worker === undefined) {
            if (hasResult && !t.exitMarkers) return this.#settleFromResult(t);
            const streamedState = streamed?.state(t.job.taskIndex);
            if (hasResult) {
              // Its submission stages out: the result counts once its worker's exit marker is listed (below).
              const fromStream = streamed?.hasResult(t.job.taskIndex) ? streamed.resultJobId(t.job.taskIndex) : undefined;
              await learnWorker(t, fromStream ?? decodeResult(await this.files.readFile(t.job.paths.result), t.job.paths.result).jobId);
            } else if (!streamedState && !listing(started, t.folder.stateDir)?.has(RunFolder.stateName(t.job.taskIndex))) {
              // Nothing of it yet after all: it waits with its submission's other tasks.
              this.#tracked.delete(t.job);
              const unit = this.#unitOf(t);
              unit.putBack(t.job);
              if (t.cancelled) unit.cancelled.add(t.job.taskIndex);
              return false;
            } else {
              await learnWorker(t, (streamedState ?? decodeState(await this.files.readFile(t.job.paths.state), t.job.paths.state)).jobId);
            }
          }
          const state = lookup(queue, t);
          if (hasResult) {
            const staging = t.exitElement !== undefined && !listed?.has(RunFolder.exitedName(t.exitElement)) && (queueError !== undefined || (state !== undefined && !isTerminal(state)));
            if (staging && queueError) return false;
            // The task is done but its exit steps (stage-out) still run: wait for them, polling at the floor.
            if (!staging) return this.#settleFromResult(t);
            setJobState(t.job, "RUNNING");
            return true;
          }
          if (queueError) return false;
          if (state === undefined) {
            absent.push(t);
            return false;
          }
          if (state === "RUNNING" && t.elementStderr !== undefined && !t.pool && !listing(started, t.folder.stateDir)?.has(RunFolder.stateName(t.job.taskIndex))) {
            return this.#observe(t, "PENDING");
          }
          return this.#observe(t, state);
        }),
      );
      changed = judged.includes(true) || changed;
      if (absent.length) {
        const acct = await this.scheduler.accounting([...new Set(absent.map((t) => t.schedulerId))]);
        const byKey = acct ? indexEntries(acct) : new Map<string, JobState>();
        const gone = await inChunks(absent, JUDGED_AT_ONCE, (t) => {
          const state = lookup(byKey, t);
          return this.#guard(t, () => (state !== undefined ? this.#observe(t, state) : this.#gone(t)));
        });
        changed = gone.includes(true) || changed;
      }
      for (const unit of this.#units.values()) {
        // A unit whose folder could not be read this poll is not judged on what it showed before; nor one tracked
        // while this poll ran (a submission made meanwhile), whose workers squeue was not asked about.
        if (queueError || !pools.has(unit.pool) || unit.waiting === 0 || unit.readFailures > 0 || unit.pool.alive(queue)) continue;
        try {
          changed = (await this.#poolEnded(unit, queue)) || changed;
        } catch (error) {
          // This pool's claims could not be read: the next poll tries again, and the other submissions go on.
          if (isUnreachable(error)) throw error;
          this.#stats.lastError = error as Error;
        }
      }
      // A job's read failures count polls in a row: a poll where all its reads worked starts the count again.
      for (const t of tracked) if (!this.#failedThisPoll.has(t)) t.readFailures = 0;
      if (this.#failedThisPoll.size === 0 && !this.#unitFailed) this.#stats.lastError = undefined;
      if (queueError) throw queueError;
    } catch (error) {
      this.#stats.lastError = error as Error;
      this.#stats.failedPolls++;
      if (this.#stats.failedPolls === FAILING_POLLS) this.#health.report({ kind: "failing", error: error as Error, failedPolls: FAILING_POLLS });
    }
    this.#dropIfIdle();
    return changed;
  }

  /**
   * Runs one job's step. An error there (a result that cannot be read, a
   * results folder that cannot be listed) touches that job only: it is tried
   * again on the next polls, and the job settles UNKNOWN, with the error as
   * the cause, once READ_ATTEMPTS polls in a row failed.
   */
  async #guard(t: Tracked, step: () => Promise<boolean>): Promise<boolean> {
    try {
      return await step();
    } catch (error) {
      // The cluster is out of reach: end this poll, settle nothing, try again later.
      if (isUnreachable(error)) throw error;
      const e = error as Error;
      this.#stats.lastError = e;
      if (!this.#failedThisPoll.has(t)) t.readFailures++;
      this.#failedThisPoll.add(t);
      if (t.readFailures < READ_ATTEMPTS) return false;
      const stderr = await readStderr(this.files, t).catch(() => "");
      const why = `slurmkit: could not read the result of ${t.job.id} on ${READ_ATTEMPTS} polls in a row: ${e.message}`;
      settleJob(t.job, outcomeWithoutResult(t.job, "UNKNOWN", `${stderr}\n${why}`, e));
      this.#tracked.delete(t.job);
      return true;
    }
  }

  /**
   * Lists each folder once: the results folders, or the state folders of
   * packed tasks. A folder that cannot be listed maps to its error, which
   * fails only the jobs in it; an unreachable cluster fails the poll.
   */
  async #list(dirs: readonly string[]): Promise<Map<string, Set<string> | Error>> {
    const out = new Map<string, Set<string> | Error>();
    await Promise.all(
      [...new Set(dirs)].map(async (dir) => {
        this.#stats.listings++;
        try {
          out.set(dir, new Set(await this.files.list(dir)));
        } catch (error) {
          if (isUnreachable(error)) throw error;
          out.set(dir, error as Error);
        }
      }),
    );
    return out;
  }

  /**
   * Reads each packed submission's streams once. A folder whose streams
   * cannot be read maps to its error, which fails only the jobs in it; an
   * unreachable cluster fails the poll.
   */
  async #follow(pooled: readonly RunFolder[]): Promise<Map<string, TaskRecords | Error>> {
    const out = new Map<string, TaskRecords | Error>();
    const folders = new Map(pooled.map((f) => [f.dir, f]));
    await Promise.all(
      [...folders.values()].map(async (folder) => {
        const records = taskRecords(this.files, folder);
        this.#stats.listings++;
        try {
          await records.refresh();
          out.set(folder.dir, records);
        } catch (error) {
          if (isUnreachable(error)) throw error;
          out.set(folder.dir, error as Error);
        }
      }),
    );
    return out;
  }

  /** A packed task's records in its workers' streams (as read so far). */
  #streamed(t: Tracked): TaskRecords | undefined {
    return t.pool ? taskRecords(this.files, t.folder) : undefined;
  }

  async #settleFromResult(t: Tracked): Promise<boolean> {
    const records = this.#streamed(t);
    if (records?.hasResult(t.job.taskIndex)) {
      if (!settleCompleted(t.job, records)) await this.#settleWith(t, records.result(t.job.taskIndex)!);
      this.#tracked.delete(t.job);
      return true;
    }
    await this.#settleWith(t, decodeResult(await this.files.readFile(t.job.paths.result), t.job.paths.result));
    return true;
  }

  /** The task's result from its worker's stream, or its result file read by path (past any stale directory cache); false if there is none. */
  async #tryResult(t: Tracked): Promise<boolean> {
    const streamed = this.#streamed(t);
    if (streamed) await streamed.refresh();
    const result = streamed?.result(t.job.taskIndex);
    if (result) {
      await this.#settleWith(t, result);
      return true;
    }
    const bytes = await this.files.readFile(t.job.paths.result).catch(unlessUnreachable(undefined));
    if (!bytes) return false;
    await this.#settleWith(t, decodeResult(bytes, t.job.paths.result));
    return true;
  }

  /** Settles a job from its result; a worker's TIMEOUT or CANCELLED is that state, as if Slurm had ended the task. */
  async #settleWith(t: Tracked, result: ResultFile): Promise<void> {
    if (t.pool) setJobId(t.job, result.jobId);
    if (!result.ok && result.state) {
      const ran = runOfResult(result);
      settleJob(t.job, { ...outcomeWithoutResult(t.job, result.state, `${await readStderr(this.files, t)}\nslurmkit: ${result.error.message}`), ...(result.host ? { ran } : {}) });
    } else {
      settleJob(t.job, outcomeFromResult(t.job, result));
    }
    this.#tracked.delete(t.job);
  }

  /**
   * Every worker of a pool has ended and the unit's tasks never started.
   * Those its workers claimed and never started are handed back (version 2:
   * they follow the worker that claimed them). The unclaimed ones get more
   * workers, unless the last workers took nothing: then they fail, with the
   * workers' log.
   */
  async #poolEnded(unit: PooledUnit, states: ReadonlyMap<string, JobState>): Promise<boolean> {
    const { pool } = unit;
    // A round a worker submitted, not known here yet: its workers may hold claims, so nothing is handed back.
    if (pool.blocks && (await pool.moreWorkers())) return false;
    const { progress, changed } = pool.blocks ? await this.#handBack(unit, pool.blocks) : await this.#taskClaims(unit);
    if (unit.waiting === 0) return changed;
    const outcome = await pool.topUp(unit.waiting, progress, states);
    if (outcome === "submitted") return false;
    const last = pool.arrays.at(-1);
    const logPath = last ? pool.folder.elementLog(last.jobId, 0, "err") : undefined;
    const log = logPath ? await this.files.readFile(logPath).then(String, unlessUnreachable("")) : "";
    const state: JobState = outcome === "cancelled" ? "CANCELLED" : "FAILED";
    for (const job of unit.takeAll()) {
      const i = job.taskIndex;
      const why =
        outcome === "cancelled"
          ? `slurmkit: task ${i} never started: its workers were cancelled`
          : outcome === "stalled"
            ? `slurmkit: every worker of this submission ended, and the last ones took no task; task ${i} never started. The first worker's log is ${logPath ?? "missing"}.`
            : `slurmkit: task ${i} never started: its workers ended, and more could not be submitted: ${outcome.message}`;
      await recordEnd(this.files, this.#alone(unit, job, false), state, why);
      settleJob(job, outcomeWithoutResult(job, state, `${log}\n${why}`));
    }
    return true;
  }

  /** A waiting task's own record, as it leaves its unit; `follow` keeps it tracked. */
  #alone(unit: PooledUnit, job: Job<unknown>, follow = true): Tracked {
    const t = newTracked(job, unit.folder, job.id, undefined, { pool: unit.pool, exitMarkers: unit.exitMarkers });
    t.cancelled = unit.cancelled.has(job.taskIndex);
    if (follow) this.#tracked.set(job, t);
    return t;
  }

  /** The unit of a pooled task's submission (made again if it had emptied). */
  #unitOf(t: Tracked): PooledUnit {
    const pool = t.pool!;
    const unit = this.#units.get(pool) ?? new PooledUnit(pool, t.folder, t.exitMarkers);
    this.#units.set(pool, unit);
    return unit;
  }

  /**
   * The unit's tasks that show a sign of life in this poll's reads leave it,
   * to be followed alone. When its folder cannot be read, READ_ATTEMPTS polls
   * in a row, every task leaves, and fails as a task alone would.
   */
  #takeIn(
    unit: PooledUnit,
    results: ReadonlyMap<string, Set<string> | Error>,
    streams: ReadonlyMap<string, TaskRecords | Error>,
    started: ReadonlyMap<string, Set<string> | Error>,
  ): { tracked: Tracked[]; settled: number } {
    const records = streams.get(unit.folder.dir);
    const listed = [results.get(unit.folder.resultsDir), started.get(unit.folder.stateDir)];
    const error = [records, ...listed].find((r): r is Error => r instanceof Error);
    if (!error) {
      unit.readFailures = 0;
      const streamed = records as TaskRecords | undefined;
      const tracked: Tracked[] = [];
      let settled = 0;
      unit.takeChanged(streamed, listed as (Set<string> | undefined)[], (job) => {
        // A completed task settles here (with no stage-out to wait for): a million finished tasks cost no tracking each.
        if (!unit.exitMarkers && streamed && settleCompleted(job, streamed)) settled++;
        else tracked.push(this.#alone(unit, job));
      });
      return { tracked, settled };
    }
    this.#stats.lastError = error;
    this.#unitFailed = true;
    if (++unit.readFailures < READ_ATTEMPTS) return { tracked: [], settled: 0 };
    const tracked = unit.takeAll().map((job) => {
      const t = this.#alone(unit, job);
      t.readFailures = READ_ATTEMPTS - 1;
      return t;
    });
    return { tracked, settled: 0 };
  }

  /**
   * Blocks (manifest version 3): every worker ended, so what they claimed and
   * never started is handed back (releases.ts) and counts as unclaimed. A
   * task cancelled before it started ends CANCELLED. Tasks of a worker whose
   * stream is corrupt follow that worker.
   */
  async #handBack(unit: PooledUnit, starts: Uint32Array): Promise<{ progress: number; changed: boolean }> {
    const { pool } = unit;
    const records = taskRecords(this.files, pool.folder);
    const cancels = new Set((await this.files.list(pool.folder.cancelsDir)).map(Number));
    const { kept } = await handBackUnstarted(this.files, pool.folder, starts, pool.slots, records, cancels);
    let changed = false;
    for (const [i, holder] of kept) {
      const job = unit.take(i);
      if (!job) continue;
      const t = this.#alone(unit, job);
      await this.#guard(t, () => learnWorker(t, holder).then(() => false));
    }
    for (const i of new Set([...unit.cancelled, ...cancels])) {
      const job = unit.take(i);
      if (!job) continue;
      const why = `Task ${i} was cancelled before it started`;
      await recordEnd(this.files, this.#alone(unit, job, false), "CANCELLED", why);
      settleJob(job, outcomeWithoutResult(job, "CANCELLED", `slurmkit: ${why}`));
      changed = true;
    }
    // Workers that claimed tasks made progress, though they died before their records: the release bounds how often (MAX_DEATHS).
    const claims = (await this.files.list(pool.folder.claimsDir)).length;
    return { progress: records.recorded + claims, changed };
  }

  /** Claims per task (manifest version 2): a task a worker claimed follows that worker (it died before the task began). */
  async #taskClaims(unit: PooledUnit): Promise<{ progress: number; changed: boolean }> {
    const { pool } = unit;
    const claims = await this.files.list(pool.folder.claimsDir);
    for (const name of claims) {
      const job = /^\d+$/.test(name) ? unit.take(Number(name)) : undefined;
      if (!job) continue;
      const t = this.#alone(unit, job);
      await this.#guard(t, async () => {
        await learnWorker(t, decodeClaim(await this.files.readFile(pool.folder.claim(job.taskIndex)), pool.folder.claim(job.taskIndex)).worker);
        return false;
      });
    }
    return { progress: claims.length, changed: false };
  }

  async #observe(t: Tracked, state: JobState): Promise<boolean> {
    if (!isTerminal(state)) {
      t.endedPolls = 0;
      t.endedSince = undefined;
      return setJobState(t.job, state);
    }
    return this.#endedWithoutListedResult(t, state);
  }

  async #gone(t: Tracked): Promise<boolean> {
    let state: JobState = t.cancelled ? "CANCELLED" : "UNKNOWN";
    const last = t.cancelled ? undefined : await this.#lastState(t);
    if (last) state = stateFileEnd(last);
    return this.#endedWithoutListedResult(t, state);
  }

  /** The task's last state record: from its worker's stream, or its state file. */
  async #lastState(t: Tracked): Promise<StateFile | undefined> {
    const streamed = this.#streamed(t)?.state(t.job.taskIndex);
    if (streamed) return streamed;
    const file = await this.files.readFile(t.job.paths.state).catch(unlessUnreachable(undefined));
    return file ? decodeState(file, t.job.paths.state) : undefined;
  }

  /**
   * The job has ended (or left Slurm) and no result was listed. Read the
   * result by path first; then fail on the second poll in a row, except that a
   * COMPLETED job gets `resultGraceMs` for its file to show up.
   */
  async #endedWithoutListedResult(t: Tracked, state: JobState): Promise<boolean> {
    if (await this.#tryResult(t)) return true;
    if (await requeuedRecently(await this.#lastState(t), t)) {
      // The runner requeued the task: Slurm may show the attempt that ended (REQUEUED, PREEMPTED, TIMEOUT) for a moment.
      t.endedPolls = 0;
      t.endedSince = undefined;
      return setJobState(t.job, "PENDING");
    }
    t.endedPolls++;
    t.endedSince ??= Date.now();
    if (t.endedPolls < 2) return false;
    if (state === "COMPLETED" && Date.now() - t.endedSince < this.#loop.intervals.resultGraceMs) return false;
    // A worker that finished without a result for a task it took lost that task: it failed.
    const ended = t.pool && state === "COMPLETED" ? "FAILED" : state;
    // A worker stream that is corrupt may have held this task's result: say so, rather than only that the task did not finish.
    const problems = (this.#streamed(t)?.problems ?? [])
      .filter((p) => t.worker === undefined || p.stream.startsWith(`${t.worker}.`))
      .map((p) => `slurmkit: ${p.message}; task ${t.job.taskIndex}'s records may have been lost there\n`)
      .join("");
    const outcome = outcomeWithoutResult(t.job, ended, `${await readStderr(this.files, t, ended)}${problems}`);
    await recordEnd(this.files, t, outcome.state, `Task ${t.job.taskIndex}'s worker ${t.worker ?? ""} ended ${outcome.state} while the task ran`);
    settleJob(t.job, outcome);
    this.#tracked.delete(t.job);
    return true;
  }
}

/**
 * Settles a pooled job whose stream holds its result, if the task completed:
 * COMPLETED at once, its value decoded from the record when first asked for
 * (a million results cost their summaries, not their values). False for a
 * failed task's result, which the caller decodes whole.
 */
function settleCompleted(job: Job<unknown>, records: TaskRecords): boolean {
  if (records.resultOk(job.taskIndex) !== true) return false;
  setJobId(job, records.resultJobId(job.taskIndex));
  settleJob(job, new StreamedOutcome(records, job.taskIndex));
  return true;
}

const UNREAD: unique symbol = Symbol("unread");

/** Jobs judged at once in a poll: enough that the reads of many ended jobs share a command over ssh, few enough not to queue thousands of reads. */
const JUDGED_AT_ONCE = 256;

/** A completed task's outcome whose value stays in its stream record until asked for. */
class StreamedOutcome {
  readonly state = "COMPLETED" as const;
  /** The value once decoded (UNREAD until then): a field, not an object per task. */
  #value: unknown = UNREAD;

  constructor(
    private readonly records: TaskRecords,
    private readonly index: number,
  ) {}

  get ran(): TaskRun {
    const { host, jobId, startedAt, endedAt } = this.records.resultSummary(this.index)!;
    const usage = this.records.usage(this.index);
    return { host, jobId, startedAt, endedAt, ...(usage ? { usage } : {}) };
  }

  get value(): unknown {
    if (this.#value === UNREAD) this.#value = this.records.resultValue(this.index);
    return this.#value;
  }
}

/** A packed task's stream records from this poll, or the error reading them threw (inside the job's guard). */
function followed(streams: ReadonlyMap<string, TaskRecords | Error>, t: Tracked): TaskRecords | undefined {
  const r = streams.get(t.folder.dir);
  if (r instanceof Error) throw r;
  return r;
}
