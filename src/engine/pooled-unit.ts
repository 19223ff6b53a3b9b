// The futures of a packed submission that no worker has taken up yet. The
// watcher follows them as one unit: a poll looks at the tasks whose records
// or files are new, never at every task, so a million waiting futures cost
// what changed. A task leaves the unit once something is seen of it, and is
// then followed alone (tracked.ts) until it settles.
import type { Job } from "../core/job.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { TaskPool } from "./scheduler.js";
import type { TaskRecords } from "./task-records.js";

/** The task of a result or state file, from its name (`<i>.result`, `<i>.state`); undefined for any other name (ranks, exit markers). */
export function taskOfFile(name: string): number | undefined {
  const m = /^(\d+)\.(?:result|state)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Waiting futures of one packed submission, by task index. */
export class PooledUnit {
  /** Futures by task index: undefined once taken out (followed alone, settled, or forgotten). */
  readonly #jobs: (Job<unknown> | undefined)[];
  #waiting: number;
  /** How far this unit has looked at the submission's stream records (TaskRecords.changedSince). */
  #cursor = 0;
  /** Tasks whose cancel succeeded while they waited here. */
  readonly cancelled = new Set<number>();
  /** Polls in a row whose reads of this submission's folder failed. */
  readFailures = 0;

  constructor(
    readonly pool: TaskPool,
    readonly folder: RunFolder,
    /** Its submission stages out (exit markers per worker). */
    readonly exitMarkers: boolean,
    jobs: readonly Job<unknown>[] = [],
  ) {
    // Usually every task's future, in order: a copy. Otherwise by task index.
    if (jobs.every((job, i) => job.taskIndex === i)) this.#jobs = jobs.slice();
    else {
      this.#jobs = [];
      for (const job of jobs) this.#jobs[job.taskIndex] = job;
    }
    this.#waiting = jobs.length;
  }

  /** How many futures wait here. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Whether `job` waits here. */
  holds(job: Job<unknown>): boolean {
    return this.#jobs[job.taskIndex] === job;
  }

  /** Takes task `index`'s future out, if it waits here. */
  take(index: number): Job<unknown> | undefined {
    const job = this.#jobs[index];
    if (!job) return undefined;
    this.#jobs[index] = undefined;
    this.#waiting--;
    return job;
  }

  /** Puts back a future taken out that had not started after all. */
  putBack(job: Job<unknown>): void {
    if (this.#jobs[job.taskIndex]) return;
    this.#jobs[job.taskIndex] = job;
    this.#waiting++;
  }

  /** Takes out every future that waits here. */
  takeAll(): Job<unknown>[] {
    const out: Job<unknown>[] = [];
    for (let i = 0; i < this.#jobs.length; i++) {
      const job = this.take(i);
      if (job) out.push(job);
    }
    return out;
  }

  /**
   * Takes out the futures of tasks that show a sign of life since the last
   * call, handing each to `each`: a record in the workers' streams, or a
   * file of their own in `listed` (result files; state files of version 1
   * folders).
   */
  takeChanged(records: TaskRecords | undefined, listed: readonly (ReadonlySet<string> | undefined)[], each: (job: Job<unknown>) => void): void {
    if (records) {
      const { tasks, cursor } = records.changedSince(this.#cursor);
      this.#cursor = cursor;
      for (let k = 0; k < tasks.length; k++) {
        const job = this.take(tasks[k]!);
        if (job) each(job);
      }
    }
    for (const names of listed) {
      if (!names) continue;
      for (const name of names) {
        const i = taskOfFile(name);
        const job = i === undefined ? undefined : this.take(i);
        if (job) each(job);
      }
    }
  }
}
