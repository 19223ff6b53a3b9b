import { containerProblems, containerRecord, type ContainerRecord } from "../protocol/container.js";
import { mkdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { checkBundleOptions, type CodeOptions } from "../code/options.js";
import { snapshotRecords } from "../code/snapshot.js";
import { writeFileAtomic } from "../protocol/atomic.js";
import { ParameterError } from "../base/errors.js";
import { type Job, newJob, type JobBackend } from "../core/job.js";
import { setOrigin } from "../engine/origin.js";
import { countTasks, type Executor, MAP_ARRAY_OPTIONS, type SubmissionPreview, type MapArrayOptions } from "../engine/executor.js";
import { accepts, checkOptions, type OptionShape, showValue } from "../base/options.js";
import { z } from "zod";
import { Watcher, type JobWatcher } from "../engine/watcher.js";
import { encodeManifest, MANIFEST_VERSION, type Manifest } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { LocalTransport } from "../transport/local.js";
import { parseDurationSeconds } from "../slurm/units.js";
import { LocalScheduler, type LocalSchedulerCalls } from "./scheduler.js";
import { specParts } from "../protocol/spec-file.js";
import { newSubmissionDir, taskRecords } from "../core/submission.js";
import type { ResultOf, TaskSpec } from "../core/tasks.js";

/**
 * Options of LocalExecutor's submit() and mapArray(): those of every executor.
 * `after` waits for those jobs; `workers`, `slots` and `tasksPerElement` are
 * accepted and ignored, since local tasks cost no scheduling round.
 */
export type LocalSubmitOptions = MapArrayOptions;

/** Options of LocalExecutor. */
/** What LocalExecutor's options accept, checked at run time. */
const LOCAL_OPTIONS: OptionShape<LocalExecutorOptions> = {
  folder: accepts.string,
  maxParallel: accepts.positiveInteger,
  nodeBinary: accepts.string,
  time: accepts.or(z.union([z.number().positive(), z.string().min(1)]), 'minutes (a positive number) or a Slurm time such as "01:30:00"'),
  container: accepts.object,
  bundle: accepts.boolean,
  external: accepts.strings,
};

export interface LocalExecutorOptions extends CodeOptions {
  /** The folder for submissions; the same layout as SlurmExecutor's. */
  readonly folder: string;
  /** At most this many tasks run at once. @default the number of CPUs */
  readonly maxParallel?: number;
  /** The Node.js binary for the runner. @default the one running this process */
  readonly nodeBinary?: string;
  /**
   * Each task's time limit, as SlurmExecutor's `time` (a number of minutes, or
   * "HH:MM:SS", "D-HH:MM:SS"...): a task still running then gets SIGTERM,
   * SIGKILL 30 s later, and ends TIMEOUT. @default no limit
   */
  readonly time?: number | string;
  /** The container command tasks run in (as container()'s, without runnerInside); a command's own replaces it. */
  readonly container?: ContainerRecord;
}

/**
 * Runs tasks as local processes with the same runner and run-folder layout as
 * SlurmExecutor: for laptops, tests, and scripts run without `--slurm`. Its
 * scheduler is a LocalScheduler, and a watcher settles its futures by the
 * same rules as Slurm jobs'.
 */
export class LocalExecutor implements Executor {
  readonly folder: string;
  readonly maxParallel: number;
  readonly nodeBinary: string;
  /** Each task's time limit in seconds; undefined for none. */
  readonly timeSeconds: number | undefined;
  readonly #bundle: boolean;
  readonly #external: readonly string[];
  readonly #scheduler: LocalScheduler;
  readonly #watcher: Watcher<LocalSchedulerCalls>;
  readonly #transport = new LocalTransport();
  /** What the futures call: not part of the executor's own API. */
  readonly #backend: JobBackend = {
    acquire: () => this.#watcher.acquire(),
    release: () => this.#watcher.release(),
    cancel: async (job) => {
      await this.#scheduler.cancel(job.id);
      this.#watcher.markCancelled(job);
    },
    readText: (path) => this.#transport.readFile(path).then(String, () => ""),
  };

  constructor(options: LocalExecutorOptions) {
    if (typeof options !== "object" || options === null) throw new ParameterError("LocalExecutor options", [`Expected an options object with at least \`folder\`, got ${showValue(options)}`]);
    checkOptions("LocalExecutor options", options, LOCAL_OPTIONS);
    if (options.folder === undefined) throw new ParameterError("LocalExecutor options", ["`folder` is required: the folder for submissions"]);
    const max = options.maxParallel ?? availableParallelism();
    this.folder = resolve(options.folder);
    this.maxParallel = max;
    this.nodeBinary = options.nodeBinary ?? process.execPath;
    this.#bundle = checkBundleOptions(options.bundle, options.external);
    this.#external = options.external ?? [];
    const timeSeconds = options.time === undefined ? undefined : parseDurationSeconds(options.time);
    if (options.time !== undefined && timeSeconds === undefined) {
      throw new ParameterError("executor options", [`Expected \`time\` to be minutes (a positive number) or a Slurm time such as "01:30:00" or "1-00:00:00", got \`${String(options.time)}\``]);
    }
    this.timeSeconds = timeSeconds;
    if (options.container !== undefined) {
      const problems = containerProblems(options.container, "container.");
      if ((options.container as { runnerInside?: unknown }).runnerInside !== undefined)
        problems.push("`container.runnerInside` needs a scheduler's job script; local processes run the runner on this machine");
      if (problems.length) throw new ParameterError("executor options", problems);
    }
    const container = options.container === undefined ? undefined : containerRecord(options.container);
    this.#scheduler = new LocalScheduler({ maxParallel: max, nodeBinary: this.nodeBinary, timeSeconds, container, changed: () => void this.#watcher.pollNow() });
    this.#watcher = new Watcher(this.#scheduler, this.#transport);
  }

  /** The watcher of this executor's tasks: `stats()` counts its polls and its scheduler's calls. */
  get watcher(): JobWatcher<LocalSchedulerCalls> {
    return this.#watcher;
  }

  /** Nothing to let go: its processes end with their tasks. Here so that every Executor can be closed alike. */
  close(): void {}

  /** Runs one task. */
  async submit<T extends TaskSpec<unknown>>(task: T, options: LocalSubmitOptions = {}): Promise<Job<ResultOf<T>>> {
    const [job] = await this.mapArray([task], checkOptions("submit options", options, MAP_ARRAY_OPTIONS));
    return job as Job<ResultOf<T>>;
  }

  /** What `mapArray(tasks)` would run: the tasks, with no scripts (local processes need none). Nothing is written or started. */
  async plan(tasks: readonly TaskSpec<unknown>[], options: LocalSubmitOptions = {}): Promise<SubmissionPreview> {
    checkOptions("mapArray options", options, MAP_ARRAY_OPTIONS);
    const records = taskRecords(tasks);
    return { folder: newSubmissionDir(this.folder), taskCount: records.length, tasks: countTasks(records), scripts: [], workers: undefined, request: undefined };
  }

  /** Runs all tasks, at most `maxParallel` at once; one future per task, in order. */
  async mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options: LocalSubmitOptions = {}): Promise<Job<ResultOf<T>>[]> {
    const after = checkOptions("mapArray options", options, MAP_ARRAY_OPTIONS).after ?? [];
    const snapshot = this.#bundle ? await snapshotRecords(taskRecords(tasks), join(this.folder, "code"), this.#external) : { records: taskRecords(tasks), files: [] };
    const records = snapshot.records;
    if (records.length === 0) return [];
    const folder = new RunFolder(newSubmissionDir(this.folder));
    await Promise.all([folder.logsDir, folder.resultsDir, folder.stateDir].map((d) => mkdir(d, { recursive: true })));
    for (const file of snapshot.files) {
      await mkdir(dirname(file.path), { recursive: true });
      if (!existsSync(file.path)) await writeFileAtomic(file.path, file.data);
    }
    await writeFileAtomic(folder.spec, specParts(records));
    const manifest: Manifest = { version: MANIFEST_VERSION, kind: "local", createdAt: new Date().toISOString(), taskCount: records.length, jobId: null, array: true, ranks: 1 };
    await writeFileAtomic(folder.manifest, encodeManifest(manifest));
    setOrigin({ kind: "local", folder, transport: this.#transport });
    const jobs = records.map((_, i) => {
      const job = newJob(this.#backend, `local-${basename(folder.dir)}_${i}`, i, folder);
      this.#watcher.track(job, folder, job.id, undefined);
      return job;
    });
    this.#scheduler.submit(
      jobs.map((job) => ({ id: job.id, folder, index: job.taskIndex })),
      after.length ? afterAll(after) : undefined,
    );
    return jobs as Job<ResultOf<T>>[];
  }
}

/**
 * Resolves once every job in `after` completed, or with why not once the
 * first of them ended otherwise (as Slurm's --kill-on-invalid-dep).
 */
function afterAll(after: readonly Job<unknown>[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    let left = after.length;
    for (const j of after) {
      void j.wait().then((state) => {
        if (state !== "COMPLETED") resolve(`slurmkit: not started: job ${j.id}, which it runs after, ended ${state}`);
        else if (--left === 0) resolve(undefined);
      });
    }
  });
}
