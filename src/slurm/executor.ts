import { posix, resolve } from "node:path";
import { ParameterError } from "../base/errors.js";
import type { Job } from "../core/job.js";
import type { ResultOf, TaskSpec } from "../core/tasks.js";
import { RunFolder } from "../protocol/run-folder.js";
import { runnerPath } from "../protocol/runner-path.js";
import { checkBundleOptions } from "../code/options.js";
import { bundleRunner } from "../code/bundle.js";
import { codeFiles, snapshotRecords, type CodeFile } from "../code/snapshot.js";
import { newSubmissionDir, taskRecords } from "../core/submission.js";
import { LocalTransport } from "../transport/local.js";
import { sshTransport } from "../transport/ssh-target.js";
import { OpenSshTransport } from "../transport/openssh.js";
import { SshTransport } from "../transport/ssh.js";
import { checkCluster, type CheckOptions, type CheckReport } from "./doctor.js";
import type { Transport } from "../transport/transport.js";
import { dependencyOf } from "./backend.js";
import { launch, prepareLaunch, previewOf, type Launch } from "./launch.js";
import { mergeParameters, parseParameters, type SlurmParameters, type SlurmParametersInput } from "./parameters.js";
import { checkPathMap, mapPath, mapRecords, type PathMap } from "./path-map.js";
import { splitOptions, type ExecutorSettings } from "./options.js";
import { sharedScheduler, type ClusterLimits, type Scheduler, type SchedulerCallCounts } from "./scheduler.js";
import { type Executor, MAP_ARRAY_OPTIONS, type SubmissionPreview, type MapArrayOptions, SUBMIT_OPTIONS, type SubmitOptions } from "../engine/executor.js";
import { checkOptions } from "../base/options.js";
import type { JobWatcher } from "../engine/watcher.js";
import { slurmWatcher, releaseSlurmWatcher } from "./watch.js";

/** Options of SlurmExecutor: the Slurm parameters, and the settings it takes (all but `maxParallel`). */
export interface SlurmExecutorOptions extends SlurmParametersInput, Omit<ExecutorSettings, "maxParallel"> {}

/**
 * Submits tasks to Slurm: one sbatch call per `mapArray`, one spec file per
 * submission, and futures that a shared watcher keeps up to date.
 *
 * @example
 * const executor = new SlurmExecutor({ folder: "runs/sweep", time: "01:00:00", mem: "4G" });
 * const jobs = await executor.mapArray(configs.map((c) => train.with(c)));
 * for (const job of jobs) console.log(job.id, await job.result());
 */
export class SlurmExecutor implements Executor {
  readonly folder: string;
  readonly nodeBinary: string;
  readonly transport: Transport;
  readonly #pathMap: PathMap | undefined;
  readonly #bundle: boolean;
  readonly #external: readonly string[];
  /** The parameters as given (update() merges into them), and their validated value. */
  #input: SlurmParametersInput;
  #parameters: SlurmParameters;
  #limits: Promise<ClusterLimits> | undefined;

  constructor(options: SlurmExecutorOptions) {
    const { settings, input } = splitOptions("SlurmExecutor options", options, ["maxParallel"]);
    const { folder, nodeBinary, transport, ssh, pathMap, bundle, external } = settings;
    if (typeof folder !== "string" || folder === "" || /[%\n\\]/.test(folder)) {
      // sbatch expands % in log paths (%j, %u...), so such a folder would scatter the logs.
      throw new ParameterError("executor options", [`Expected \`folder\` to be a non-empty path without %, \\ or newlines, got \`${String(folder)}\``]);
    }
    if (ssh !== undefined && transport !== undefined) throw new ParameterError("executor options", ["Expected either `ssh` or `transport`, not both"]);
    if (ssh !== undefined && !folder.startsWith("/")) {
      throw new ParameterError("executor options", [`Expected \`folder\` to be an absolute path on the cluster when \`ssh\` is given, got \`${folder}\``]);
    }
    if (pathMap !== undefined) checkPathMap(pathMap);
    this.#parameters = parseParameters(input);
    this.#input = input;
    this.folder = ssh ? posix.normalize(folder) : resolve(folder);
    this.nodeBinary = nodeBinary ?? (ssh ? "node" : process.execPath);
    this.transport = transport ?? (ssh !== undefined ? sshTransport(ssh) : new LocalTransport());
    this.#pathMap = pathMap;
    this.#bundle = checkBundleOptions(bundle, external);
    this.#external = external ?? [];
  }

  /**
   * Closes the transport's connection, if it has one (SSH), and lets go of
   * the watcher that served it (now, or once its last job settles); a later
   * call opens new ones.
   */
  close(): void {
    releaseSlurmWatcher(this.transport);
    this.transport.close?.();
  }

  /**
   * Checks what this cluster allows before a first sweep, as `slurmkit
   * doctor` does: Slurm's commands and version, accounting, limits,
   * partitions, preemption, an `sbatch --test-only` of these parameters,
   * then one small job with the executor's setup that reports from a node
   * (the folder at the same path, Node.js, scratch, python3, module, GPUs).
   */
  check(options: CheckOptions = {}): Promise<CheckReport> {
    const where =
      this.transport instanceof LocalTransport
        ? "this machine (sbatch runs here)"
        : this.transport instanceof OpenSshTransport
          ? `${this.transport.destination}, through the system's ssh`
          : this.transport instanceof SshTransport
            ? `${this.transport.destination}, through the built-in ssh client`
            : this.transport.key;
    return checkCluster({ transport: this.transport, scheduler: this.#scheduler, folder: this.folder, nodeBinary: this.nodeBinary, parameters: this.#parameters, where }, options);
  }

  /** The validated parameters (time in seconds, memory in megabytes). */
  get parameters(): SlurmParameters {
    return this.#parameters;
  }

  /**
   * The watcher shared by every job on this executor's transport: `stats()`
   * counts scheduler calls and polls, and `setIntervals` tunes polling.
   */
  get watcher(): JobWatcher<SchedulerCallCounts> {
    return slurmWatcher(this.transport);
  }

  get #scheduler(): Scheduler {
    return sharedScheduler(this.transport);
  }

  /**
   * Merges parameters into the current ones: each key replaces the current
   * value, except `sbatch`, whose options merge key by key. Throws (and
   * changes nothing) if the result is invalid.
   */
  update(parameters: SlurmParametersInput): void {
    const merged = mergeParameters(this.#input, parameters);
    this.#parameters = parseParameters(merged);
    this.#input = merged;
  }

  /** Submits one task as one (non-array) job. */
  async submit<T extends TaskSpec<unknown>>(task: T, options: SubmitOptions = {}): Promise<Job<ResultOf<T>>> {
    const [job] = await this.#submit([task], false, checkOptions("submit options", options, SUBMIT_OPTIONS));
    return job as Job<ResultOf<T>>;
  }

  /**
   * Submits all tasks as one sbatch array job (`--array=0-(N-1)[%P]`), or,
   * packed, as workers that claim tasks, split over as many array
   * jobs as MaxArraySize needs; one future per task, in order.
   */
  async mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options: MapArrayOptions = {}): Promise<Job<ResultOf<T>>[]> {
    return (await this.#submit(tasks, true, checkOptions("mapArray options", options, MAP_ARRAY_OPTIONS))) as Job<ResultOf<T>>[];
  }

  /** The cluster's limits, read once per executor. */
  limits(): Promise<ClusterLimits> {
    this.#limits ??= this.#scheduler.limits().catch((error: unknown) => {
      this.#limits = undefined;
      throw error;
    });
    return this.#limits;
  }

  /**
   * What `mapArray(tasks, options)` would submit: the sbatch scripts, the
   * tasks, and the packing. Nothing is written or submitted (the cluster's
   * limits are read, as for a submission).
   *
   * @example
   * console.log(formatPreview(await executor.plan(tasks, { workers: "auto" })));
   */
  async plan(tasks: readonly TaskSpec<unknown>[], options: MapArrayOptions = {}): Promise<SubmissionPreview> {
    const prepared = await this.#prepare(tasks, true, checkOptions("mapArray options", options, MAP_ARRAY_OPTIONS));
    const folder = prepared.folder.dir;
    if (!prepared.planned) return { folder, taskCount: 0, tasks: {}, scripts: [], workers: undefined, request: undefined };
    return previewOf(prepared.planned);
  }

  async #submit(tasks: readonly TaskSpec<unknown>[], array: boolean, options: MapArrayOptions): Promise<Job<unknown>[]> {
    const { planned, files } = await this.#prepare(tasks, array, options);
    if (!planned) return [];
    await this.#writeCode(files);
    return (await launch(planned)).jobs;
  }

  /** Everything up to the first write: the code bundled (not written), the tasks checked, the submission planned. */
  async #prepare(tasks: readonly TaskSpec<unknown>[], array: boolean, options: MapArrayOptions): Promise<{ planned: Launch | undefined; files: CodeFile[]; folder: RunFolder }> {
    const codeDir = posix.join(this.folder, "code");
    const snapshot = this.#bundle ? await snapshotRecords(taskRecords(tasks), codeDir, this.#external) : { records: mapRecords(taskRecords(tasks), this.#pathMap), files: [] };
    // Bundled, the runner travels too: the nodes need plain Node. Otherwise the installed one, through pathMap.
    const runnerBundle = this.#bundle ? await bundleRunner(runnerPath("slurm")) : undefined;
    const runner = runnerBundle ? posix.join(codeDir, runnerBundle.name) : mapPath(runnerPath("slurm"), this.#pathMap);
    if (runnerBundle) snapshot.files.push(...codeFiles(runnerBundle, codeDir));
    const records = snapshot.records;
    const request = {
      parameters: this.#input,
      array,
      packing: { tasksPerElement: options.tasksPerElement, workers: options.workers, slots: options.slots },
      runner: [this.nodeBinary, runner] as const,
    };
    const after = dependencyOf(options.after);
    const folder = new RunFolder(newSubmissionDir(this.folder));
    // Planned before anything is written: bad packing options or an oversized request write nothing.
    const planned = await prepareLaunch({ transport: this.transport, folder, records, parameters: this.parameters, request, limits: () => this.limits(), after });
    return { planned, files: snapshot.files, folder };
  }

  /** Writes code snapshots that are not there yet (they are named by content). */
  async #writeCode(files: readonly CodeFile[]): Promise<void> {
    if (files.length === 0) return;
    const dir = posix.dirname(files[0]!.path);
    await this.transport.mkdir(dir);
    const present = new Set(await this.transport.list(dir));
    await Promise.all(files.filter((f) => !present.has(posix.basename(f.path))).map((f) => this.transport.writeFile(f.path, f.data)));
  }
}
