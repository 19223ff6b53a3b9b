// Local processes as a scheduler behind the engine's seam: it starts each
// task's runner, at most `maxParallel` at once, and answers the watcher's
// queue calls with each task's state, as squeue would.
import type { ContainerRecord } from "../protocol/container.js";
import { encodeRunnerArgs } from "../protocol/runner-args.js";
import { spawn, type ChildProcess } from "node:child_process";
import { appendFile, open, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import type { JobState } from "../base/job-state.js";
import type { QueueEntry, WatchedScheduler } from "../engine/scheduler.js";
import { decodeState } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { runnerPath } from "../protocol/runner-path.js";

/** How long a task past its time limit has between SIGTERM and SIGKILL (Slurm's KillWait default). */
const KILL_WAIT_MS = 30_000;

/** What a LocalScheduler counts. */
export interface LocalSchedulerCalls {
  /** Tasks handed to it. */
  submit: number;
  /** Queue calls from its watcher. */
  queue: number;
  /** Cancel requests. */
  cancel: number;
}

/** One task to run: its id, its submission folder and its index there. */
export interface LocalTaskSpec {
  readonly id: string;
  readonly folder: RunFolder;
  readonly index: number;
}

interface Entry extends LocalTaskSpec {
  state: JobState;
  child?: ChildProcess | undefined;
  cancelled: boolean;
}

/**
 * Runs tasks as local processes of the runner, with the run-folder layout
 * SlurmExecutor uses. A task is PENDING until a place is free (and, when it
 * waits on other jobs, until they completed), RUNNING while its runner runs,
 * then COMPLETED, FAILED or CANCELLED by how the runner exited: the watcher
 * reads its result as it reads a Slurm job's. Tasks of an earlier process are
 * followed through their state files (`adopt`).
 */
export class LocalScheduler implements WatchedScheduler<LocalSchedulerCalls> {
  readonly calls: LocalSchedulerCalls = { submit: 0, queue: 0, cancel: 0 };
  readonly #entries = new Map<string, Entry>();
  /** Tasks of an earlier process: their state files. */
  readonly #adopted = new Map<string, string>();
  readonly #queue: Entry[] = [];
  #running = 0;

  /** `changed` runs when a task starts or ends, so that its watcher polls soon. */
  constructor(
    private readonly options: {
      readonly maxParallel: number;
      readonly nodeBinary: string;
      readonly timeSeconds?: number | undefined;
      /** The container command tasks run in (the runner's --container). */
      readonly container?: ContainerRecord | undefined;
      readonly changed: () => void;
    },
  ) {}

  /**
   * Queues tasks. With `hold`, they wait until it resolves: to nothing, and
   * they are queued; to a reason, and they end CANCELLED without running,
   * with the reason in their stderr log.
   */
  submit(tasks: readonly LocalTaskSpec[], hold?: Promise<string | undefined>): void {
    this.calls.submit += tasks.length;
    const entries = tasks.map((t): Entry => ({ ...t, state: "PENDING", cancelled: false }));
    for (const e of entries) this.#entries.set(e.id, e);
    if (!hold) {
      this.#enqueue(entries);
      return;
    }
    void hold.then(async (reason) => {
      const live = entries.filter((e) => !e.cancelled);
      if (reason === undefined) {
        this.#enqueue(live);
        return;
      }
      await Promise.all(live.map((e) => appendFile(e.folder.task(e.index).stderr, `${reason}\n`).catch(() => undefined)));
      for (const e of live) this.#end(e, "CANCELLED");
    });
  }

  /** Follows a task an earlier process started, through its state file: RUNNING while its runner lives on this host. */
  adopt(id: string, statePath: string): void {
    this.#adopted.set(id, statePath);
  }

  async queue(jobIds: readonly string[]): Promise<QueueEntry[]> {
    this.calls.queue++;
    const out: QueueEntry[] = [];
    for (const id of jobIds) {
      const e = this.#entries.get(id);
      const state = e ? e.state : (await this.#adoptedRunning(id)) ? "RUNNING" : undefined;
      if (state) out.push({ jobId: id, state, rawState: state });
    }
    return out;
  }

  /** No accounting: a task this process did not start and whose runner is gone is decided by its state file. */
  async accounting(): Promise<undefined> {
    return undefined;
  }

  /** Cancels a queued task, or sends SIGTERM to a running one (its runner then exits without a result). */
  async cancel(id: string): Promise<void> {
    this.calls.cancel++;
    const e = this.#entries.get(id);
    if (!e) {
      const state = await this.#adoptedState(id);
      if (state && (await this.#adoptedRunning(id))) process.kill(state.pid, "SIGTERM");
      return;
    }
    if (e.cancelled || (e.state !== "PENDING" && e.state !== "RUNNING")) return;
    e.cancelled = true;
    if (e.child) e.child.kill("SIGTERM");
    else if (e.state === "PENDING") {
      const at = this.#queue.indexOf(e);
      if (at >= 0) this.#queue.splice(at, 1);
      this.#end(e, "CANCELLED");
    }
    // Otherwise its runner is starting: #run sees `cancelled`.
  }

  #enqueue(entries: Entry[]): void {
    this.#queue.push(...entries);
    this.#drain();
  }

  #drain(): void {
    while (this.#running < this.options.maxParallel && this.#queue.length) {
      const e = this.#queue.shift()!;
      if (e.cancelled) continue;
      this.#running++;
      e.state = "RUNNING";
      this.options.changed();
      void this.#run(e).then(
        (state) => this.#end(e, state),
        () => this.#end(e, "FAILED"),
      );
    }
  }

  #end(e: Entry, state: JobState): void {
    if (e.state === "RUNNING") this.#running--;
    e.state = e.cancelled ? "CANCELLED" : state;
    e.child = undefined;
    this.options.changed();
    this.#drain();
  }

  /** Runs one task's runner with its log files; resolves how it ended. */
  async #run(e: Entry): Promise<JobState> {
    const paths = e.folder.task(e.index);
    const out = await open(paths.stdout, "w");
    const err = await open(paths.stderr, "w").catch(async (error: unknown) => {
      await out.close();
      throw error;
    });
    try {
      // cancel() may have come while the log files were opened.
      if (e.cancelled) return "CANCELLED";
      const boxed = this.options.container ? encodeRunnerArgs({ mode: "task", container: this.options.container }) : [];
      const child = spawn(this.options.nodeBinary, [runnerPath("local"), e.folder.dir, ...boxed], {
        stdio: ["ignore", out.fd, err.fd],
        env: { ...process.env, SLURMKIT_TASK_INDEX: String(e.index), SLURMKIT_JOB_ID: e.id },
      });
      e.child = child;
      // As Slurm at a time limit: SIGTERM, then SIGKILL after KILL_WAIT_MS; the runner then writes no result.
      let timedOut = false;
      const limit = this.options.timeSeconds;
      const timers: NodeJS.Timeout[] = [];
      if (limit !== undefined) {
        timers.push(
          setTimeout(() => {
            timedOut = true;
            child.kill("SIGTERM");
            timers.push(setTimeout(() => child.kill("SIGKILL"), KILL_WAIT_MS));
          }, limit * 1000),
        );
      }
      const ended = await new Promise<{ error?: Error; code?: number | null }>((done) => {
        child.once("error", (error) => done({ error }));
        child.once("close", (code) => done({ code }));
      });
      for (const t of timers) clearTimeout(t);
      if (ended.error) {
        await err.write(`slurmkit: could not start the runner: ${ended.error.message}\n`);
        return "FAILED";
      }
      if (timedOut && !e.cancelled) {
        await err.write(`slurmkit: task ${e.index} ran past its time limit of ${limit} s and was stopped\n`);
        return "TIMEOUT";
      }
      return ended.code === 0 ? "COMPLETED" : "FAILED";
    } finally {
      await out.close();
      await err.close();
    }
  }

  async #adoptedState(id: string): Promise<{ state: string; host: string; pid: number } | undefined> {
    const path = this.#adopted.get(id);
    if (!path) return undefined;
    const bytes = await readFile(path).catch(() => undefined);
    return bytes && decodeState(bytes, path);
  }

  async #adoptedRunning(id: string): Promise<boolean> {
    const state = await this.#adoptedState(id).catch(() => undefined);
    return state !== undefined && state.state === "RUNNING" && state.host === hostname() && alive(state.pid);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
