import { join, posix, resolve } from "node:path";
import { ParameterError } from "./errors.js";
import { Job, type JobBackend } from "./job.js";
import { parseParameters, ranksPerJob, toSbatchOptions, type SlurmParameters, type SlurmParametersInput } from "./parameters.js";
import { RunFolder, type Manifest, type SubmittedArray } from "./run-folder.js";
import { concurrentSlots, type ClusterLimits } from "./scheduler.js";
import { runnerPath } from "./runner-path.js";
import { renderScript } from "./script.js";
import { isSetupStep } from "./setup-steps.js";
import { encodeSpec } from "./spec-file.js";
import { checkPathMap, mapPath, mapRecords, type PathMap } from "./path-map.js";
import { SshTransport, type SshOptions } from "./ssh-transport.js";
import { newSubmissionDir, taskRecords } from "./submission.js";
import type { ResultOf, TaskSpec } from "./tasks.js";
import { LocalTransport, type Transport } from "./transport.js";
import { Watcher } from "./watcher.js";

/** Options of SlurmExecutor besides the Slurm parameters. */
export interface SlurmExecutorOptions extends SlurmParametersInput {
  /** The folder for submissions, on a file system the compute nodes share (with `ssh`: an absolute path on the cluster). */
  readonly folder: string;
  /** The Node.js binary on the compute nodes. @default the one running this process; with `ssh`, `node` from the nodes' PATH */
  readonly nodeBinary?: string;
  /** Where sbatch runs and files are written. @default this machine, or the `ssh` login node */
  readonly transport?: Transport;
  /** Submit from another machine (a laptop): run sbatch and keep the folder on this login node, over SSH. */
  readonly ssh?: SshOptions;
  /**
   * Where this machine's files are on the cluster, by path prefix, for function
   * task modules and slurmkit's runner: `{ "/Users/ada/sweep": "/home/ada/sweep" }`.
   * @default the same paths on the cluster
   */
  readonly pathMap?: PathMap;
}

/** Options of mapArray(). */
export interface MapArrayOptions extends SubmitOptions {
  /**
   * Tasks each array element runs, one after another or up to `cpusPerTask`
   * at once; each keeps its own result, state and logs. "auto" picks it from
   * the task count, `arrayParallelism` and the cluster's limits. Submissions
   * with more elements than MaxArraySize are split into several array jobs.
   * @default 1
   */
  readonly tasksPerElement?: number | "auto";
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
  if (!Array.isArray(jobs) || jobs.length === 0) {
    throw new ParameterError("submit options", [`Expected \`after\` to be a non-empty array of job futures, got \`${String(jobs)}\``]);
  }
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
  const perElement = manifest.tasksPerElement ?? 1;
  const arrays = manifest.arrays ?? (manifest.array ? [{ jobId: manifest.jobId, firstElement: 0, elements: manifest.taskCount }] : undefined);
  const packed = manifest.arrays !== undefined;
  let j = 0;
  return Array.from({ length: manifest.taskCount }, (_, i) => {
    const element = Math.floor(i / perElement);
    let schedulerId = manifest.jobId;
    let arrayIndex: number | undefined;
    let size = 1;
    if (arrays) {
      while (element >= arrays[j]!.firstElement + arrays[j]!.elements) j++;
      const a = arrays[j]!;
      schedulerId = a.jobId;
      arrayIndex = element - a.firstElement;
      size = a.elements;
    }
    const id = arrayIndex === undefined ? schedulerId : `${schedulerId}_${arrayIndex}`;
    const job = new Job<unknown>(backend, id, i, folder.task(i));
    slurmIds.set(job, { jobId: schedulerId, index: arrayIndex, size });
    backend.watcher.track(job, folder, schedulerId, arrayIndex, {
      ...(manifest.exitMarkers ? { exitElement: element } : {}),
      ...(packed && arrayIndex !== undefined ? { elementStderr: join(folder.elementLogsDir, `${schedulerId}_${arrayIndex}.err`) } : {}),
    });
    return job;
  });
}

/**
 * The dependency for `after`: undefined when every job already completed.
 * A job that already failed is an error now, as its dependents could never run.
 */
function dependencyOf(after: readonly Job<unknown>[] | undefined): string | undefined {
  if (after === undefined) return undefined;
  if (!Array.isArray(after) || after.some((j) => !(j instanceof Job))) {
    throw new ParameterError("submit options", [`Expected \`after\` to be an array of job futures, got \`${String(after)}\``]);
  }
  const ended = after.find((j) => j.done() && j.state !== "COMPLETED");
  if (ended) throw new ParameterError("submit options", [`Job ${ended.id} in \`after\` already ended ${ended.state}, so these tasks could never start`]);
  const waiting = after.filter((j) => !j.done());
  return waiting.length ? afterOk(waiting) : undefined;
}

/**
 * Tasks per element for "auto": as many elements as can run at once, and no
 * more, since each element pays a scheduling round and a runner start. That is
 * arrayParallelism (64 without it), capped by the jobs of this size the
 * partition's CPUs hold at once and by MaxSubmitJobs.
 */
export function autoTasksPerElement(
  tasks: number,
  parameters: { readonly arrayParallelism?: number | undefined; readonly partition?: string | undefined; readonly cpusPerTask?: number | undefined },
  limits: ClusterLimits,
): number {
  const slots = concurrentSlots(limits.nodes, parameters.partition, parameters.cpusPerTask) || Infinity;
  const elements = Math.max(1, Math.min(parameters.arrayParallelism ?? 64, slots, limits.maxSubmitJobs ?? Infinity, tasks));
  return Math.ceil(tasks / elements);
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
  readonly #pathMap: PathMap | undefined;
  #parameters: SlurmParametersInput;
  #limits: Promise<ClusterLimits> | undefined;

  constructor(options: SlurmExecutorOptions) {
    const { folder, nodeBinary, transport, ssh, pathMap, ...parameters } = options;
    if (typeof folder !== "string" || folder === "" || /[%\n\\]/.test(folder)) {
      // sbatch expands % in log paths (%j, %u...), so such a folder would scatter the logs.
      throw new ParameterError("executor options", [`Expected \`folder\` to be a non-empty path without %, \\ or newlines, got \`${String(folder)}\``]);
    }
    if (ssh !== undefined && transport !== undefined) throw new ParameterError("executor options", ["Expected either `ssh` or `transport`, not both"]);
    if (ssh !== undefined && !folder.startsWith("/")) {
      throw new ParameterError("executor options", [`Expected \`folder\` to be an absolute path on the cluster when \`ssh\` is given, got \`${folder}\``]);
    }
    if (pathMap !== undefined) checkPathMap(pathMap);
    parseParameters(parameters);
    this.folder = ssh ? posix.normalize(folder) : resolve(folder);
    this.nodeBinary = nodeBinary ?? (ssh ? "node" : process.execPath);
    this.transport = transport ?? (ssh ? new SshTransport(ssh) : new LocalTransport());
    this.#pathMap = pathMap;
    this.#parameters = parameters;
  }

  /** Closes the transport's connection, if it has one (SSH); a later call opens a new one. */
  close(): void {
    this.transport.close?.();
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

  /**
   * Submits all tasks as one sbatch array job (`--array=0-(N-1)[%P]`), or,
   * packed, as ceil(N / tasksPerElement) elements split over as many array
   * jobs as MaxArraySize needs; one future per task, in order.
   */
  async mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options: MapArrayOptions = {}): Promise<Job<ResultOf<T>>[]> {
    return (await this.#submit(tasks, true, options)) as Job<ResultOf<T>>[];
  }

  /** The cluster's limits, read once per executor. */
  limits(): Promise<ClusterLimits> {
    this.#limits ??= this.watcher.scheduler.limits().catch((error: unknown) => {
      this.#limits = undefined;
      throw error;
    });
    return this.#limits;
  }

  async #submit(tasks: readonly TaskSpec<unknown>[], array: boolean, submitOptions: MapArrayOptions): Promise<Job<unknown>[]> {
    const records = mapRecords(taskRecords(tasks), this.#pathMap);
    const parameters = this.parameters;
    const after = dependencyOf(submitOptions.after);
    const raw = parameters.dependency ?? parameters.sbatch?.dependency;
    if (after !== undefined && raw !== undefined) {
      throw new ParameterError("submit options", [`Expected either \`after\` or the \`dependency\` parameter, not both (dependency is \`${String(raw)}\`)`]);
    }
    const per = submitOptions.tasksPerElement ?? 1;
    if (per !== "auto" && !(Number.isInteger(per) && per > 0)) {
      throw new ParameterError("mapArray options", [`Expected \`tasksPerElement\` to be a positive integer or "auto", got \`${String(per)}\``]);
    }
    if (records.length === 0) return [];
    const ranks = ranksPerJob(parameters);
    if (per !== 1 && ranks > 1) {
      throw new ParameterError("mapArray options", [`Expected \`tasksPerElement\` to be 1 for jobs with several ranks (nodes × ntasksPerNode = ${ranks}), got \`${String(per)}\``]);
    }
    const limits = array ? await this.limits() : undefined;
    const perElement = per === "auto" ? autoTasksPerElement(records.length, parameters, limits!) : per;
    const elements = Math.ceil(records.length / perElement);
    if (limits?.maxSubmitJobs !== undefined && elements > limits.maxSubmitJobs) {
      throw new ParameterError("mapArray options", [
        `${records.length} tasks at ${perElement} per element make ${elements} array elements, more than this cluster's MaxSubmitJobs (${limits.maxSubmitJobs}); use tasksPerElement: ${Math.ceil(records.length / limits.maxSubmitJobs)} or more, or "auto"`,
      ]);
    }
    const arraySize = limits?.maxArraySize ?? 1;
    const arrayCount = array ? Math.ceil(elements / arraySize) : 1;
    const packed = array && (perElement > 1 || arrayCount > 1);

    const folder = new RunFolder(newSubmissionDir(this.folder));
    const t = this.transport;
    await Promise.all([t.mkdir(folder.logsDir), t.mkdir(folder.resultsDir), t.mkdir(folder.stateDir), ...(packed ? [t.mkdir(folder.elementLogsDir)] : [])]);
    await t.writeFile(folder.spec, encodeSpec(records));

    const setup = parameters.setup ?? [];
    const exitMarkers = setup.some((s) => isSetupStep(s) && s.exit.length > 0);
    const common = toSbatchOptions(parameters);
    if (after !== undefined) common.push(["dependency", after], ["kill-on-invalid-dep", "yes"]);
    const limit = parameters.arrayParallelism === undefined ? "" : `%${parameters.arrayParallelism}`;
    const scripts = Array.from({ length: arrayCount }, (_, j) => {
      const firstElement = j * arraySize;
      const count = Math.min(arraySize, elements - firstElement);
      const options: Array<[string, string | true]> = [];
      if (array) options.push(["array", `0-${count - 1}${limit}`]);
      if (packed) options.push(["output", `${folder.elementLogsDir}/%A_%a.out`], ["error", `${folder.elementLogsDir}/%A_%a.err`]);
      else options.push(["output", `${folder.logsDir}/${array ? "%a" : "0"}.out`], ["error", `${folder.logsDir}/${array ? "%a" : "0"}.err`]);
      options.push(...common);
      const runner = [this.nodeBinary, mapPath(runnerPath(), this.#pathMap), folder.dir, ...(packed ? ["--per-element", String(perElement), "--element-offset", String(firstElement)] : [])];
      const text = renderScript({
        options,
        setup,
        runner,
        ranks,
        ...(exitMarkers ? { exitMarkerDir: folder.resultsDir, exitMarkerOffset: firstElement } : {}),
      });
      return { path: j === 0 ? folder.script : join(folder.dir, `job-${j}.sbatch`), text, firstElement, count };
    });
    await Promise.all(scripts.map((s) => t.writeFile(s.path, s.text)));

    const manifest: Manifest = {
      version: 1,
      kind: "slurm",
      createdAt: new Date().toISOString(),
      taskCount: records.length,
      jobId: null,
      array,
      ranks,
      ...(exitMarkers ? { exitMarkers } : {}),
      ...(packed ? { tasksPerElement: perElement } : {}),
    };
    await t.writeFile(folder.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    const submittedArrays: SubmittedArray[] = [];
    for (const s of scripts) {
      try {
        submittedArrays.push({ jobId: await this.watcher.scheduler.submit(s.path), firstElement: s.firstElement, elements: s.count });
      } catch (error) {
        // Nothing half-submitted stays behind: cancel the arrays that went through.
        await Promise.all(submittedArrays.map((a) => this.watcher.scheduler.cancel(a.jobId).catch(() => undefined)));
        throw error;
      }
    }
    const submitted = { ...manifest, jobId: submittedArrays[0]!.jobId, ...(packed ? { arrays: submittedArrays } : {}) };
    await t.writeFile(folder.manifest, `${JSON.stringify(submitted, null, 2)}\n`);
    return slurmJobs(new SlurmBackend(this.watcher), folder, submitted);
  }
}
