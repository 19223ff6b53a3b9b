import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, open, readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { checkBundleOptions, type CodeOptions } from "../code/options.js";
import { snapshotRecords } from "../code/snapshot.js";
import { writeFileAtomic } from "../protocol/atomic.js";
import { ParameterError } from "../base/errors.js";
import { Job, newJob, setJobState, settleJob, type JobBackend } from "../api/job.js";
import { outcomeFromResult, outcomeWithoutResult } from "../api/outcome.js";
import { decodeResult, encodeManifest, MANIFEST_VERSION, type Manifest } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { runnerPath } from "../protocol/runner-path.js";
import { encodeSpec } from "../protocol/spec-file.js";
import { newSubmissionDir, taskRecords } from "../api/submission.js";
import type { ResultOf, TaskSpec } from "../api/tasks.js";

/** Options of LocalExecutor's submit() and mapArray(). */
export interface LocalSubmitOptions {
  /** Jobs that must all complete successfully before these tasks start; if one does not, these end CANCELLED without running. */
  readonly after?: readonly Job<unknown>[];
  /** Accepted for the same calls as SlurmExecutor's, and ignored: local tasks cost no scheduling round. */
  readonly tasksPerElement?: number | "auto";
  /** Accepted for the same calls as SlurmExecutor's, and ignored. */
  readonly workers?: number | "auto";
  /** Accepted for the same calls as SlurmExecutor's, and ignored. */
  readonly slots?: number;
}

/** Options of LocalExecutor. */
export interface LocalExecutorOptions extends CodeOptions {
  /** The folder for submissions; the same layout as SlurmExecutor's. */
  readonly folder: string;
  /** At most this many tasks run at once. @default the number of CPUs */
  readonly maxParallel?: number;
  /** The Node.js binary for the runner. @default the one running this process */
  readonly nodeBinary?: string;
}

interface LocalTask {
  readonly job: Job<unknown>;
  readonly folder: RunFolder;
  child?: ChildProcess;
  cancelled: boolean;
  /** Waits for the jobs in `after` before it is queued. */
  waiting: boolean;
}

async function readText(path: string): Promise<string> {
  return readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "";
    throw e;
  });
}

/**
 * Runs tasks as local processes with the same runner and run-folder layout as
 * SlurmExecutor: for laptops, tests, and scripts run without `--slurm`.
 */
export class LocalExecutor {
  readonly folder: string;
  readonly maxParallel: number;
  readonly nodeBinary: string;
  readonly #queue: LocalTask[] = [];
  readonly #byJob = new Map<Job<unknown>, LocalTask>();
  #running = 0;
  readonly #bundle: boolean;
  readonly #external: readonly string[];
  /** What the futures call: not part of the executor's own API. */
  readonly #backend: JobBackend = {
    acquire: () => undefined,
    release: () => undefined,
    cancel: (job) => this.#cancel(job),
    readText,
  };

  constructor(options: LocalExecutorOptions) {
    if (typeof options !== "object" || options === null) throw new ParameterError("executor options", [`Expected an options object with at least \`folder\`, got \`${String(options)}\``]);
    if (typeof options.folder !== "string" || options.folder === "") {
      throw new ParameterError("executor options", [`Expected \`folder\` to be a non-empty path, got \`${String(options.folder)}\``]);
    }
    const max = options.maxParallel ?? availableParallelism();
    if (!Number.isInteger(max) || max < 1) throw new ParameterError("executor options", [`Expected \`maxParallel\` to be a positive integer, got \`${String(max)}\``]);
    this.folder = resolve(options.folder);
    this.maxParallel = max;
    this.nodeBinary = options.nodeBinary ?? process.execPath;
    this.#bundle = checkBundleOptions(options.bundle, options.external);
    this.#external = options.external ?? [];
  }

  /** Runs one task. */
  async submit<T extends TaskSpec<unknown>>(task: T, options: LocalSubmitOptions = {}): Promise<Job<ResultOf<T>>> {
    const [job] = await this.mapArray([task], options);
    return job as Job<ResultOf<T>>;
  }

  /** Runs all tasks, at most `maxParallel` at once; one future per task, in order. */
  async mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options: LocalSubmitOptions = {}): Promise<Job<ResultOf<T>>[]> {
    const after = options.after ?? [];
    if (!Array.isArray(after) || after.some((j) => !(j instanceof Job))) {
      throw new ParameterError("submit options", [`Expected \`after\` to be an array of job futures, got \`${String(after)}\``]);
    }
    const snapshot = this.#bundle ? await snapshotRecords(taskRecords(tasks), join(this.folder, "code"), this.#external) : { records: taskRecords(tasks), files: [] };
    const records = snapshot.records;
    if (records.length === 0) return [];
    const folder = new RunFolder(newSubmissionDir(this.folder));
    await Promise.all([folder.logsDir, folder.resultsDir, folder.stateDir].map((d) => mkdir(d, { recursive: true })));
    for (const file of snapshot.files) {
      await mkdir(dirname(file.path), { recursive: true });
      if (!existsSync(file.path)) await writeFileAtomic(file.path, file.data);
    }
    await writeFileAtomic(folder.spec, encodeSpec(records));
    const manifest: Manifest = { version: MANIFEST_VERSION, kind: "local", createdAt: new Date().toISOString(), taskCount: records.length, jobId: null, array: true, ranks: 1 };
    await writeFileAtomic(folder.manifest, encodeManifest(manifest));
    const jobs = records.map((_, i) => {
      const job = newJob(this.#backend, `local-${basename(folder.dir)}_${i}`, i, folder.task(i));
      const task: LocalTask = { job, folder, cancelled: false, waiting: after.length > 0 };
      this.#byJob.set(job, task);
      return task;
    });
    if (after.length === 0) this.#enqueue(jobs);
    else void this.#after(after, jobs);
    return jobs.map((t) => t.job) as Job<ResultOf<T>>[];
  }

  /** Queues the tasks once every job in `after` completed; cancels them if one did not. */
  async #after(after: readonly Job<unknown>[], tasks: LocalTask[]): Promise<void> {
    // As Slurm's --kill-on-invalid-dep: the first job that does not complete cancels these.
    const states: (string | undefined)[] = after.map(() => undefined);
    await new Promise<void>((resolve) => {
      let left = after.length;
      after.forEach(
        (j, i) =>
          void j.wait().then((state) => {
            states[i] = state;
            if (state !== "COMPLETED" || --left === 0) resolve();
          }),
      );
    });
    const bad = states.findIndex((s) => s !== undefined && s !== "COMPLETED");
    const live = tasks.filter((t) => !t.cancelled);
    for (const t of live) t.waiting = false;
    if (bad < 0) return this.#enqueue(live);
    for (const t of live) {
      this.#byJob.delete(t.job);
      settleJob(t.job, outcomeWithoutResult(t.job, "CANCELLED", `slurmkit: not started: job ${after[bad]!.id}, which it runs after, ended ${states[bad]}`));
    }
  }

  #enqueue(tasks: LocalTask[]): void {
    this.#queue.push(...tasks);
    this.#drain();
  }

  #drain(): void {
    while (this.#running < this.maxParallel && this.#queue.length) {
      const task = this.#queue.shift()!;
      if (task.cancelled) continue;
      this.#running++;
      setJobState(task.job, "RUNNING");
      void this.#run(task).finally(() => {
        this.#running--;
        this.#byJob.delete(task.job);
        this.#drain();
      });
    }
  }

  /** Runs one task's runner; always settles the job, whatever fails. */
  async #run(task: LocalTask): Promise<void> {
    const { job } = task;
    try {
      await this.#spawn(task);
      const bytes = await readFile(job.paths.result).catch(() => undefined);
      if (bytes) settleJob(job, outcomeFromResult(job, decodeResult(bytes, job.paths.result)));
      else settleJob(job, outcomeWithoutResult(job, task.cancelled ? "CANCELLED" : "FAILED", await readText(job.paths.stderr)));
    } catch (error) {
      const stderr = await readText(job.paths.stderr).catch(() => "");
      settleJob(job, outcomeWithoutResult(job, task.cancelled ? "CANCELLED" : "UNKNOWN", `${stderr}\nslurmkit: ${(error as Error).message}`));
    }
  }

  async #spawn(task: LocalTask): Promise<void> {
    const { job, folder } = task;
    const out = await open(job.paths.stdout, "w");
    const err = await open(job.paths.stderr, "w").catch(async (e: unknown) => {
      await out.close();
      throw e;
    });
    try {
      // cancel() may have come while the log files were opened.
      if (task.cancelled) return;
      const child = spawn(this.nodeBinary, [runnerPath(), folder.dir], {
        stdio: ["ignore", out.fd, err.fd],
        env: { ...process.env, SLURMKIT_TASK_INDEX: String(job.taskIndex), SLURMKIT_JOB_ID: job.id },
      });
      task.child = child;
      const spawnError = await new Promise<Error | undefined>((done) => {
        child.once("error", done);
        child.once("close", () => done(undefined));
      });
      if (spawnError) await err.write(`slurmkit: could not start the runner: ${spawnError.message}\n`);
    } finally {
      await out.close();
      await err.close();
    }
  }

  /** Cancels a queued task, or sends SIGTERM to a running one. */
  async #cancel(job: Job<unknown>): Promise<void> {
    const task = this.#byJob.get(job);
    if (!task || job.done()) return;
    task.cancelled = true;
    if (task.child) task.child.kill("SIGTERM");
    else if (task.waiting || this.#queue.includes(task)) {
      if (!task.waiting) this.#queue.splice(this.#queue.indexOf(task), 1);
      this.#byJob.delete(job);
      settleJob(job, outcomeWithoutResult(job, "CANCELLED", ""));
    }
    // Otherwise it is starting: #run sees `cancelled` and settles it.
  }
}
