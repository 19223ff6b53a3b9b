import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { whenAborted } from "../base/abort.js";
import { TaskFailedError, WaitTimeoutError } from "../base/errors.js";
import { isTerminal, type JobState } from "../base/job-state.js";
import type { AttemptFile, ResultFile, TaskRequest, UsageRecord } from "../protocol/records.js";
import { taskUsage, type AccountedUsage, type TaskUsage } from "./usage.js";
import type { RunFolder, TaskPaths } from "../protocol/run-folder.js";

/** Where and when a task ran, from its result file (ms since epoch), and what it used when the result says. */
export interface TaskRun {
  readonly host: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** The job that ran it (its element, or its worker), when known. */
  readonly jobId?: string;
  readonly usage?: UsageRecord;
}

/** What a job ended with: a value, or the error `result()` rejects with; and where it ran, when a result file says. */
export type JobOutcome = ({ readonly state: "COMPLETED"; readonly value: unknown } | { readonly state: JobState; readonly error: Error }) & { readonly ran?: TaskRun };

/** The part of an executor that watches and controls its jobs (internal). */
export interface JobBackend {
  /** Someone waits on `job`: observe it until it settles (and keep the process alive meanwhile). */
  acquire(job: Job<unknown>): void;
  /** That wait ended. */
  release(job: Job<unknown>): void;
  cancel(job: Job<unknown>): Promise<void>;
  readText(path: string): Promise<string>;
  /** The task's stdout or stderr bytes, where they are not its own files (a packed task's, in its worker's log streams). */
  readLog?(job: Job<unknown>, which: "out" | "err"): Promise<Buffer>;
  /** The records of the task's attempts that ended in a requeue, in order; none where tasks are never requeued. */
  readAttempts?(job: Job<unknown>): Promise<AttemptFile[]>;
  /** The results of a job's ranks above 0, in rank order (undefined where a rank wrote none); none for a job of one rank. */
  readRankResults?(job: Job<unknown>): Promise<Array<ResultFile | undefined>>;
  /** What an ended task used, where it is not in its result file (a packed task's, beside its result in its worker's stream). */
  readUsage?(job: Job<unknown>): Promise<UsageRecord | undefined>;
  /** What one task of the job's submission asked for. */
  readRequest?(job: Job<unknown>): Promise<TaskRequest | undefined>;
  /** What the scheduler's accounting says the job's element used, where the task had one of its own. */
  readAccounting?(job: Job<unknown>): Promise<AccountedUsage | undefined>;
}

/** One run of a task: a requeued task has several, and one future. */
export interface Attempt {
  /** From 0. */
  readonly attempt: number;
  /**
   * How it ended: TIMEOUT or PREEMPTED for an attempt that was requeued; for
   * the last attempt the job's final state once it settled, and undefined
   * while it waits or runs.
   */
  readonly ended: JobState | undefined;
  /** Whether a requeue followed it. */
  readonly requeued: boolean;
  /** Requeued attempts: where and when it ran (ms since epoch). */
  readonly host?: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
}

/** Options for the waiting methods. */
/** What wait() and result() take, checked at run time. */
const WAIT_OPTIONS: OptionShape<WaitOptions> = {
  signal: accepts.signal,
  // setTimeout fires at once for more than 2^31 - 1 ms (about 24.8 days).
  timeoutMs: accepts.or(z.number().min(0).max(2_147_483_647), "milliseconds from 0 to 2147483647 (about 24 days)"),
};

export interface WaitOptions {
  /** Stops the wait (not the job); the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
  /** Waits at most this long (ms), then rejects with a WaitTimeoutError; the job goes on. @default no limit */
  readonly timeoutMs?: number;
}

/**
 * Calls `listener` once when the job settles (in a microtask if it has
 * already), and keeps its watcher polling meanwhile, as a wait does, without
 * a promise or an abort listener per job. The function it returns stops
 * listening (while the job has not settled) and lets the watcher go; call it
 * once the listener ran, or to give up.
 */
export let onSettled: (job: Job<unknown>, listener: () => void) => () => void;
/** Makes a job future; executors and loadJobs use it, users get jobs from them. */
export let newJob: (backend: JobBackend, id: string, taskIndex: number, folder: RunFolder) => Job<unknown>;
/** Sets a job's non-final state; false when nothing changed (same state, or already settled). */
export let setJobState: (job: Job<unknown>, state: JobState) => boolean;
/** Where a rerun's task is in its sweep (the original task's index); the engine's origins answer it, so that a future carries no field for it. */
let sweepIndexOf: ((job: Job<unknown>) => number | undefined) | undefined;
/** Sets how `job.index` finds a rerun's original index (src/engine/origin.ts). */
export function answerSweepIndex(answer: (job: Job<unknown>) => number | undefined): void {
  sweepIndexOf = answer;
}
/** Changes a job's id: a packed task takes its worker's once a worker claims it. */
export let setJobId: (job: Job<unknown>, id: string) => void;
/** Settles a job future; later calls are ignored. */
export let settleJob: (job: Job<unknown>, outcome: JobOutcome) => void;
/** Where and when a settled job's task ran, if its result file said. */
export let runOf: (job: Job<unknown>) => TaskRun | undefined;
/** A settled job's outcome, without waiting; undefined until it settles. */
export let outcomeOf: (job: Job<unknown>) => JobOutcome | undefined;
/** The submission folder a job was made with (one object per submission, shared by its futures); undefined for anything that is not a Job. */
export let folderOf: (job: Job<unknown>) => RunFolder | undefined;
/** A job's stdout or stderr as bytes, wherever its backend keeps them ("" when there is none yet). */
export let readJobLog: (job: Job<unknown>, which: "out" | "err") => Promise<Buffer>;

/**
 * The future of one task: its scheduler id, state, result and logs.
 * `R` is the task's result type. Executors and loadJobs make them.
 */
export class Job<R> {
  static {
    newJob = (backend, id, taskIndex, folder) => new Job(backend, id, taskIndex, folder);
    setJobState = (job, state) => job.#setState(state);
    settleJob = (job, outcome) => job.#settle(outcome);
    runOf = (job) => job.#outcome?.ran;
    outcomeOf = (job) => job.#outcome;
    readJobLog = (job, which) => job.#log(which);
    folderOf = (job) => (job !== null && typeof job === "object" && #folder in job ? job.#folder : undefined);
    onSettled = (job, listener) => job.#onSettled(listener);
    setJobId = (job, id) => {
      if (!job.#outcome) job.#id = id;
    };
  }

  // A future is small (a million of them fit in well under 1 GiB): its paths are made when asked, and its
  // promise only once someone waits.
  #state: JobState = "PENDING";
  #outcome: JobOutcome | undefined;
  #settled: Promise<JobOutcome> | undefined;
  #resolve: ((outcome: JobOutcome) => void) | undefined;
  #listeners: (() => void)[] | undefined;
  readonly #backend: JobBackend;
  readonly #folder: RunFolder;

  #id: string;

  private constructor(
    backend: JobBackend,
    id: string,
    /** The task's index in its own submission folder, where its files are (a rerun's own: the rerun submission holds only the tasks it runs again; `index` is the original's). */
    readonly taskIndex: number,
    folder: RunFolder,
  ) {
    this.#backend = backend;
    this.#id = id;
    this.#folder = folder;
  }

  /**
   * The task's index in its original submission, as `slurmkit status --tasks`
   * shows it (TASK) and `slurmkit results` writes it (`task`): for a rerun,
   * the index of the original task it runs again; otherwise `taskIndex`.
   */
  get index(): number {
    return sweepIndexOf?.(this as Job<unknown>) ?? this.taskIndex;
  }

  /** The task's log, result and state files. */
  get paths(): TaskPaths {
    return this.#folder.task(this.taskIndex);
  }

  /**
   * Slurm's id: `A_i` for array elements, `A` for a single job, `local-...`
   * for local jobs. A packed task has its worker's id `A_w` once a worker
   * took it, and the worker array's id `A` until then.
   */
  get id(): string {
    return this.#id;
  }

  /** The last known state; terminal states never change. */
  get state(): JobState {
    return this.#state;
  }

  /** Whether the job has ended (its result or failure is known). */
  done(): boolean {
    return this.#outcome !== undefined;
  }

  /** Waits until the job ends and returns its final state; never rejects because the task failed. */
  async wait(options: WaitOptions = {}): Promise<JobState> {
    return (await this.#waitOutcome(options)).state;
  }

  /**
   * Waits for the task's result. Rejects with TaskFailedError when the task
   * threw or its command exited non-zero, and with JobEndedWithoutResultError
   * when the job ended without a result (killed, cancelled, timed out).
   */
  async result(options: WaitOptions = {}): Promise<R> {
    const outcome = await this.#waitOutcome(options);
    if ("error" in outcome) throw outcome.error;
    return outcome.value as R;
  }

  /**
   * Waits for the job and returns every rank's result, in rank order: rank
   * 0's, which `result()` returns, first. A job of one rank gives one.
   * Rejects as `result()` does, and with TaskFailedError when another rank
   * failed or wrote no result.
   *
   * @example
   * const [leader, ...others] = await job.results(); // nodes: 2, ntasksPerNode: 4 gives 8
   */
  async results(options: WaitOptions = {}): Promise<R[]> {
    const first = await this.result(options);
    const others = (await this.#backend.readRankResults?.(this as Job<unknown>)) ?? [];
    return [
      first,
      ...others.map((result, k) => {
        if (result?.ok) return result.value as R;
        const rank = k + 1;
        const remote = result ? result.error : { name: "RankWithoutResult", message: `Rank ${rank} wrote no result`, stack: `Rank ${rank} wrote no result` };
        const command = result
          ? { ...(result.error.exitCode !== undefined ? { exitCode: result.error.exitCode } : {}), ...(result.error.signal !== undefined ? { signal: result.error.signal } : {}) }
          : {};
        throw new TaskFailedError({ jobId: this.#id, taskIndex: this.taskIndex, logPath: this.paths.stderr, host: result?.host ?? "" }, remote, command);
      }),
    ];
  }

  /** Cancels the job in the scheduler (or kills the local process). */
  cancel(): Promise<void> {
    return this.#backend.cancel(this as Job<unknown>);
  }

  /**
   * How many times the task ran, and how each run ended. A task that was
   * never requeued has one attempt; each requeue (after Slurm's warning of
   * the time limit, or a preemption) adds one. Reads the run folder.
   */
  async attempts(): Promise<Attempt[]> {
    const records = (await this.#backend.readAttempts?.(this as Job<unknown>)) ?? [];
    const past: Attempt[] = records.map((r) => ({ attempt: r.attempt, ended: r.ended, requeued: true, host: r.host, startedAt: r.startedAt, endedAt: r.endedAt }));
    return [...past, { attempt: past.length, ended: this.#outcome?.state, requeued: false }];
  }

  /**
   * What the task used, measured on its node: wall and CPU time, peak
   * memory, its node, worker and slot, and its GPUs; against what it asked
   * for, and (one per element, with accounting on) what sacct says. Undefined
   * until it ended, or when it never ran. Reads the run folder.
   *
   * @example
   * const u = await job.usage();
   * console.log(`${u?.cpuSeconds} s CPU, ${u?.memPeakMb} MiB at most`);
   */
  async usage(): Promise<TaskUsage | undefined> {
    const ran = this.#outcome?.ran;
    if (!ran || ran.host === "") return undefined;
    const job = this as Job<unknown>;
    const [record, requested, accounting] = await Promise.all([ran.usage ?? this.#backend.readUsage?.(job), this.#backend.readRequest?.(job), this.#backend.readAccounting?.(job)]);
    return taskUsage({ host: ran.host, jobId: ran.jobId ?? this.#id, startedAt: ran.startedAt, endedAt: ran.endedAt }, record, requested, accounting);
  }

  /** The task's stdout so far ("" if there is none yet). */
  stdout(): Promise<string> {
    return this.#backend.readLog ? this.#log("out").then(String) : this.#backend.readText(this.paths.stdout);
  }

  /** The task's stderr so far ("" if there is none yet). */
  stderr(): Promise<string> {
    return this.#backend.readLog ? this.#log("err").then(String) : this.#backend.readText(this.paths.stderr);
  }

  async #log(which: "out" | "err"): Promise<Buffer> {
    if (this.#backend.readLog) return this.#backend.readLog(this as Job<unknown>, which);
    return Buffer.from(await this.#backend.readText(which === "out" ? this.paths.stdout : this.paths.stderr));
  }

  #setState(state: JobState): boolean {
    if (this.#outcome || isTerminal(state) || state === this.#state) return false;
    this.#state = state;
    return true;
  }

  #settle(outcome: JobOutcome): void {
    if (this.#outcome) return;
    this.#outcome = outcome;
    this.#state = outcome.state;
    this.#resolve?.(outcome);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        // One listener's failure stops neither the others nor the settling.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #onSettled(listener: () => void): () => void {
    if (this.#outcome) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.#listeners ??= [];
    this.#listeners.push(listener);
    this.#backend.acquire(this as Job<unknown>);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      const at = this.#listeners?.indexOf(listener) ?? -1;
      if (at >= 0) this.#listeners!.splice(at, 1);
      this.#backend.release(this as Job<unknown>);
    };
  }

  async #waitOutcome(options: WaitOptions): Promise<JobOutcome> {
    const { signal, timeoutMs } = checkOptions("wait options", options, WAIT_OPTIONS);
    if (this.#outcome) return this.#outcome;
    signal?.throwIfAborted();
    this.#settled ??= new Promise((resolve) => (this.#resolve = resolve));
    const settled = this.#settled;
    this.#backend.acquire(this as Job<unknown>);
    let unlisten: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const stops: Promise<never>[] = [];
      if (signal) stops.push(new Promise<never>((_, reject) => (unlisten = whenAborted(signal, () => reject(signal.reason)))));
      if (timeoutMs !== undefined) stops.push(new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new WaitTimeoutError(this.#id, this.#state, timeoutMs)), timeoutMs))));
      return await (stops.length ? Promise.race([settled, ...stops]) : settled);
    } finally {
      clearTimeout(timer);
      unlisten?.();
      this.#backend.release(this as Job<unknown>);
    }
  }
}
