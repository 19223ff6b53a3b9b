import { resolve } from "node:path";
import { ParameterError } from "./errors.js";
import { Job, type JobBackend } from "./job.js";
import { parseParameters, ranksPerJob, toSbatchOptions, type SlurmParameters, type SlurmParametersInput } from "./parameters.js";
import { RunFolder, type Manifest } from "./run-folder.js";
import { runnerPath } from "./runner-path.js";
import { renderScript } from "./script.js";
import { isSetupStep } from "./setup-steps.js";
import { encodeSpec } from "./spec-file.js";
import { newSubmissionDir, taskRecords } from "./submission.js";
import type { ResultOf, TaskSpec } from "./tasks.js";
import { LocalTransport, type Transport } from "./transport.js";
import { Watcher } from "./watcher.js";

/** Options of SlurmExecutor besides the Slurm parameters. */
export interface SlurmExecutorOptions extends SlurmParametersInput {
  /** The folder for submissions, on a file system the compute nodes share. */
  readonly folder: string;
  /** The Node.js binary on the compute nodes. @default the one running this process */
  readonly nodeBinary?: string;
  /** Where sbatch runs and files are written. @default this machine */
  readonly transport?: Transport;
}

/** Options of submit() and mapArray(). */
export interface SubmitOptions {
  /**
   * Jobs that must all complete successfully before these tasks start
   * (Slurm's `afterok`). If one of them fails, these jobs end CANCELLED
   * without running (`--kill-on-invalid-dep=yes`), rather than pending forever.
   */
  readonly after?: readonly Job<unknown>[];
}

/** Where each Slurm job future sits in Slurm: its submission's id, its array index, and the submission's size. */
const slurmIds = new WeakMap<Job<unknown>, { readonly jobId: string; readonly index: number | undefined; readonly size: number }>();

/**
 * The `afterok` dependency on `jobs`: a whole array as `A` when every one of
 * its futures is listed, else each element as `A_i`.
 */
export function afterOk(jobs: readonly Job<unknown>[]): string {
  const problems: string[] = [];
  const byJob = new Map<string, { size: number; indices: Set<number> | undefined }>();
  for (const [i, job] of jobs.entries()) {
    const id = slurmIds.get(job);
    if (!id) {
      problems.push(`Expected \`after[${i}]\` to be a job future from SlurmExecutor or loadJobs, got \`${String((job as { id?: unknown } | null)?.id ?? job)}\``);
      continue;
    }
    const entry = byJob.get(id.jobId) ?? { size: id.size, indices: id.index === undefined ? undefined : new Set<number>() };
    if (id.index !== undefined) entry.indices?.add(id.index);
    byJob.set(id.jobId, entry);
  }
  if (problems.length) throw new ParameterError("submit options", problems);
  const ids = [...byJob].flatMap(([jobId, { size, indices }]) =>
    indices === undefined || indices.size === size ? [jobId] : [...indices].sort((a, b) => a - b).map((i) => `${jobId}_${i}`),
  );
  return `afterok:${ids.join(":")}`;
}

/** The JobBackend of Slurm jobs: the shared watcher, scancel, and log reads. */
export class SlurmBackend implements JobBackend {
  constructor(readonly watcher: Watcher) {}
  acquire(): void {
    this.watcher.acquire();
  }
  release(): void {
    this.watcher.release();
  }
  async cancel(job: Job<unknown>): Promise<void> {
    if (job.done()) return;
    await this.watcher.scheduler.cancel(job.id);
    this.watcher.markCancelled(job);
  }
  readText(path: string): Promise<string> {
    return this.watcher.scheduler.transport.readFile(path).then(String, (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || /no such file/i.test(e.message)) return "";
      throw e;
    });
  }
}

/** Rebuilds Job objects for a Slurm submission and tracks them. */
export function slurmJobs(backend: SlurmBackend, folder: RunFolder, manifest: Manifest & { jobId: string }): Job<unknown>[] {
  return Array.from({ length: manifest.taskCount }, (_, i) => {
    const id = manifest.array ? `${manifest.jobId}_${i}` : manifest.jobId;
    const job = new Job<unknown>(backend, id, i, folder.task(i));
    slurmIds.set(job, { jobId: manifest.jobId, index: manifest.array ? i : undefined, size: manifest.taskCount });
    backend.watcher.track(job, folder, manifest.jobId, manifest.array ? i : undefined, manifest.exitMarkers ? i : undefined);
    return job;
  });
}

/**
 * Submits tasks to Slurm: one sbatch call per `mapArray`, one spec file per
 * submission, and futures that a shared watcher keeps up to date.
 *
 * @example
 * const executor = new SlurmExecutor({ folder: "runs/sweep", time: "01:00:00", mem: "4G" });
 * const jobs = await executor.mapArray(configs.map((c) => train.with(c)));
 * for (const job of jobs) console.log(job.id, await job.result());
 */
export class SlurmExecutor {
  readonly folder: string;
  readonly nodeBinary: string;
  readonly transport: Transport;
  #parameters: SlurmParametersInput;

  constructor(options: SlurmExecutorOptions) {
    const { folder, nodeBinary, transport, ...parameters } = options;
    if (typeof folder !== "string" || folder === "" || /[%\n\\]/.test(folder)) {
      // sbatch expands % in log paths (%j, %u...), so such a folder would scatter the logs.
      throw new ParameterError("executor options", [`Expected \`folder\` to be a non-empty path without %, \\ or newlines, got \`${String(folder)}\``]);
    }
    parseParameters(parameters);
    this.folder = resolve(folder);
    this.nodeBinary = nodeBinary ?? process.execPath;
    this.transport = transport ?? new LocalTransport();
    this.#parameters = parameters;
  }

  /** The validated parameters (time in seconds, memory in megabytes). */
  get parameters(): SlurmParameters {
    return parseParameters(this.#parameters);
  }

  /** The watcher shared by every job on this executor's transport; its `calls` count scheduler calls. */
  get watcher(): Watcher {
    return Watcher.for(this.transport);
  }

  /** Merges parameters into the current ones; throws (and changes nothing) if the result is invalid. */
  update(parameters: SlurmParametersInput): void {
    const merged = { ...this.#parameters, ...parameters };
    parseParameters(merged);
    this.#parameters = merged;
  }

  /** Submits one task as one (non-array) job. */
  async submit<T extends TaskSpec<unknown>>(task: T, options: SubmitOptions = {}): Promise<Job<ResultOf<T>>> {
    const [job] = await this.#submit([task], false, options);
    return job as Job<ResultOf<T>>;
  }

  /** Submits all tasks as one sbatch array job (`--array=0-(N-1)[%P]`); one future per task, in order. */
  async mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options: SubmitOptions = {}): Promise<Job<ResultOf<T>>[]> {
    return (await this.#submit(tasks, true, options)) as Job<ResultOf<T>>[];
  }

  async #submit(tasks: readonly TaskSpec<unknown>[], array: boolean, submitOptions: SubmitOptions): Promise<Job<unknown>[]> {
    const records = taskRecords(tasks);
    const parameters = this.parameters;
    const after = submitOptions.after?.length ? afterOk(submitOptions.after) : undefined;
    if (after !== undefined && parameters.dependency !== undefined) {
      throw new ParameterError("submit options", [`Expected either \`after\` or the \`dependency\` parameter, not both (dependency is \`${parameters.dependency}\`)`]);
    }
    if (records.length === 0) return [];
    const folder = new RunFolder(newSubmissionDir(this.folder));
    const t = this.transport;
    await Promise.all([t.mkdir(folder.logsDir), t.mkdir(folder.resultsDir), t.mkdir(folder.stateDir)]);
    await t.writeFile(folder.spec, encodeSpec(records));

    const ranks = ranksPerJob(parameters);
    const options: Array<[string, string | true]> = [];
    if (array) {
      const limit = parameters.arrayParallelism === undefined ? "" : `%${parameters.arrayParallelism}`;
      options.push(["array", `0-${records.length - 1}${limit}`]);
    }
    options.push(["output", `${folder.logsDir}/${array ? "%a" : "0"}.out`], ["error", `${folder.logsDir}/${array ? "%a" : "0"}.err`]);
    options.push(...toSbatchOptions(parameters));
    if (after !== undefined) options.push(["dependency", after], ["kill-on-invalid-dep", "yes"]);
    const setup = parameters.setup ?? [];
    const exitMarkers = setup.some((s) => isSetupStep(s) && s.exit.length > 0);
    const script = renderScript({ options, setup, runner: [this.nodeBinary, runnerPath(), folder.dir], ranks, ...(exitMarkers ? { exitMarkerDir: folder.resultsDir } : {}) });
    await t.writeFile(folder.script, script);

    const manifest: Manifest = { version: 1, kind: "slurm", createdAt: new Date().toISOString(), taskCount: records.length, jobId: null, array, ranks, ...(exitMarkers ? { exitMarkers } : {}) };
    await t.writeFile(folder.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    const jobId = await this.watcher.scheduler.submit(folder.script);
    const submitted = { ...manifest, jobId };
    await t.writeFile(folder.manifest, `${JSON.stringify(submitted, null, 2)}\n`);
    return slurmJobs(new SlurmBackend(this.watcher), folder, submitted);
  }
}
