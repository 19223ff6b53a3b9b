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
import type { Transport } from "../transport/transport.js";
import { type DependencyWords, dependencyOf } from "./backend.js";
import { launch, prepareLaunch, previewOf, type Launch } from "./launch.js";
import type { SlurmParameters } from "./parameters.js";
import { checkPathMap, mapPath, mapRecords, type PathMap } from "./path-map.js";
import { splitOptions, type ExecutorSettings } from "./options.js";
import type { ClusterLimits } from "./scheduler.js";
import type { BatchScheduler, BatchSystem } from "./batch.js";
import { type Executor, MAP_ARRAY_OPTIONS, type SubmissionPreview, type MapArrayOptions, SUBMIT_OPTIONS, type SubmitOptions } from "../engine/executor.js";
import { checkOptions } from "../base/options.js";
import type { JobWatcher } from "../engine/watcher.js";
import { Watcher } from "../engine/watcher.js";

/** What a batch scheduler's executor is made of: its system, its runner entry, and its parameters' parser. */
export interface BatchExecutorKind<Input> {
  /** For messages: "SlurmExecutor". */
  readonly name: string;
  readonly system: BatchSystem;
  /** Its runner entry (`src/<runner>/runner.ts`). */
  readonly runner: string;
  /** Every parameter name it accepts, for "did you mean". */
  readonly parameterNames: readonly string[];
  /** Validates parameters (a ParameterError naming every bad key). */
  parse(input: Input): SlurmParameters;
  /** Merges `over` into `base`, as update() does. */
  merge(base: Input, over: Input): Input;
  /** Characters a folder may not have, and why (they would scatter its logs). */
  readonly folderForbids: { readonly pattern: RegExp; readonly what: string; readonly why: string };
  /** How an `after` dependency names what it waits for. @default Slurm's: an array by its id, and single elements */
  readonly dependencies?: DependencyWords;
}

/**
 * What Slurm's and PBS's executors share: one scheduler call per script, one
 * spec file per submission, futures that the system's shared watcher keeps
 * up to date, and code snapshots.
 */
export abstract class BatchExecutor<Input extends object> implements Executor {
  readonly folder: string;
  readonly nodeBinary: string;
  readonly transport: Transport;
  readonly #pathMap: PathMap | undefined;
  readonly #bundle: boolean;
  readonly #external: readonly string[];
  readonly #kind: BatchExecutorKind<Input>;
  /** The parameters as given (update() merges into them), and their validated value. */
  #input: Input;
  #parameters: SlurmParameters;
  #limits: Promise<ClusterLimits> | undefined;

  protected constructor(options: Input & Omit<ExecutorSettings, "maxParallel">, kind: BatchExecutorKind<Input>) {
    const { settings, input } = splitOptions(`${kind.name} options`, options, ["maxParallel"], kind.parameterNames);
    const { folder, nodeBinary, transport, ssh, pathMap, bundle, external } = settings;
    const forbids = kind.folderForbids;
    if (typeof folder !== "string" || folder === "" || forbids.pattern.test(folder)) {
      throw new ParameterError("executor options", [`Expected \`folder\` to be a non-empty path without ${forbids.what}, got \`${String(folder)}\`${forbids.why}`]);
    }
    if (ssh !== undefined && transport !== undefined) throw new ParameterError("executor options", ["Expected either `ssh` or `transport`, not both"]);
    if (ssh !== undefined && !folder.startsWith("/")) {
      throw new ParameterError("executor options", [`Expected \`folder\` to be an absolute path on the cluster when \`ssh\` is given, got \`${folder}\``]);
    }
    if (pathMap !== undefined) checkPathMap(pathMap);
    this.#kind = kind;
    this.#parameters = kind.parse(input as Input);
    this.#input = input as Input;
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
    Watcher.release(`${this.#kind.system.kind}:${this.transport.key}`);
    this.transport.close?.();
  }

  /** Where the scheduler's commands run, for reports. */
  protected get where(): string {
    const name = this.#kind.system.name;
    return this.transport instanceof LocalTransport
      ? `this machine (${name}'s commands run here)`
      : this.transport instanceof OpenSshTransport
        ? `${this.transport.destination}, through the system's ssh`
        : this.transport instanceof SshTransport
          ? `${this.transport.destination}, through the built-in ssh client`
          : this.transport.key;
  }

  /** The validated parameters (time in seconds, memory in megabytes). */
  get parameters(): SlurmParameters {
    return this.#parameters;
  }

  /**
   * The watcher shared by every job on this executor's transport: `stats()`
   * counts scheduler calls and polls, and `setIntervals` tunes polling.
   */
  get watcher(): JobWatcher<object> {
    return this.#kind.system.watcher(this.transport);
  }

  /** The scheduler shared by every executor on this transport. */
  protected get scheduler(): BatchScheduler {
    return this.#kind.system.scheduler(this.transport);
  }

  /**
   * Merges parameters into the current ones: each key replaces the current
   * value, except the raw options (`sbatch`, `pbs`), which merge key by key.
   * Throws (and changes nothing) if the result is invalid.
   */
  update(parameters: Input): void {
    const merged = this.#kind.merge(this.#input, parameters);
    this.#parameters = this.#kind.parse(merged);
    this.#input = merged;
  }

  /** Submits one task as one (non-array) job. */
  async submit<T extends TaskSpec<unknown>>(task: T, options: SubmitOptions = {}): Promise<Job<ResultOf<T>>> {
    const [job] = await this.#submit([task], false, checkOptions("submit options", options, SUBMIT_OPTIONS));
    return job as Job<ResultOf<T>>;
  }

  /**
   * Submits all tasks as one array job (sbatch `--array=0-(N-1)[%P]`, qsub `-J`), or,
   * packed, as workers that claim tasks, split over as many array
   * jobs as MaxArraySize needs; one future per task, in order.
   */
  async mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options: MapArrayOptions = {}): Promise<Job<ResultOf<T>>[]> {
    return (await this.#submit(tasks, true, checkOptions("mapArray options", options, MAP_ARRAY_OPTIONS))) as Job<ResultOf<T>>[];
  }

  /** The cluster's limits, read once per executor. */
  limits(): Promise<ClusterLimits> {
    this.#limits ??= this.scheduler.limits().catch((error: unknown) => {
      this.#limits = undefined;
      throw error;
    });
    return this.#limits;
  }

  /**
   * What `mapArray(tasks, options)` would submit: the batch scripts, the
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
    const runnerBundle = this.#bundle ? await bundleRunner(runnerPath(this.#kind.runner)) : undefined;
    const runner = runnerBundle ? posix.join(codeDir, runnerBundle.name) : mapPath(runnerPath(this.#kind.runner), this.#pathMap);
    if (runnerBundle) snapshot.files.push(...codeFiles(runnerBundle, codeDir));
    const records = snapshot.records;
    const request = {
      parameters: this.#input,
      array,
      packing: { tasksPerElement: options.tasksPerElement, workers: options.workers, slots: options.slots },
      runner: [this.nodeBinary, runner] as const,
    };
    const after = dependencyOf(options.after, this.#kind.dependencies);
    const folder = new RunFolder(newSubmissionDir(this.folder));
    // Planned before anything is written: bad packing options or an oversized request write nothing.
    const planned = await prepareLaunch({ system: this.#kind.system, transport: this.transport, folder, records, parameters: this.parameters, request, limits: () => this.limits(), after });
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
