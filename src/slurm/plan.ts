import { basename } from "node:path";
import { ParameterError } from "../base/errors.js";
import { MANIFEST_VERSION, type Manifest, type WorkersRecord } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { DEFAULT_MAX_REQUEUES } from "../protocol/task-record.js";
import { isSetupStep } from "../setup/index.js";
import { gpusPerTask, ranksPerJob, scaleForSlots, toSbatchOptions, type SlurmParameters } from "./parameters.js";
import { SLOT_MARGIN_MB, WORKER_NODE_FLAGS, WORKER_OVERHEAD_MB } from "../protocol/worker-memory.js";
import { DEFAULT_PARTITION, type DefaultMemory, type NodeCpus } from "./parse.js";
import type { ClusterLimits } from "./scheduler.js";
import { renderScript } from "./script.js";
import { formatSlurmTime, parseMemoryMegabytes } from "./units.js";

// Planning a submission is pure: tasks, parameters and the cluster's limits in,
// sbatch scripts and a manifest out. The executor writes and submits the plan.

/** How a submission's tasks are run, as mapArray's options ask. */
export interface PackingOptions {
  /** Old spelling: k means ceil(N / k) workers; "auto" as `workers: "auto"`. */
  readonly tasksPerElement?: unknown;
  readonly workers?: unknown;
  readonly slots?: unknown;
}

/** What checkSubmission found: one task per element, or workers (a count, or "auto") with slots. */
export type Packing = { readonly workers: undefined } | { readonly workers: number | "auto"; readonly slots: number | undefined };

const positive = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;

/** Checks what can be checked before the cluster's limits are read. */
export function checkSubmission(parameters: SlurmParameters, options: PackingOptions & { readonly dependency: string | undefined; readonly taskCount?: number }): Packing {
  const raw = parameters.dependency ?? parameters.sbatch?.dependency;
  if (options.dependency !== undefined && raw !== undefined) {
    throw new ParameterError("submit options", [`Expected either \`after\` or the \`dependency\` parameter, not both (dependency is \`${String(raw)}\`)`]);
  }
  const { tasksPerElement: per, workers, slots } = options;
  if (per !== undefined && per !== "auto" && !positive(per)) {
    throw new ParameterError("mapArray options", [`Expected \`tasksPerElement\` to be a positive integer or "auto", got \`${String(per)}\``]);
  }
  if (workers !== undefined && workers !== "auto" && !positive(workers)) {
    throw new ParameterError("mapArray options", [`Expected \`workers\` to be a positive integer or "auto", got \`${String(workers)}\``]);
  }
  if (slots !== undefined && !positive(slots)) throw new ParameterError("mapArray options", [`Expected \`slots\` to be a positive integer, got \`${String(slots)}\``]);
  if (per !== undefined && workers !== undefined) throw new ParameterError("mapArray options", ["Expected either `workers` or `tasksPerElement`, not both"]);
  const ranks = ranksPerJob(parameters);
  const asked = per === "auto" ? "auto" : positive(per) && per > 1 ? Math.ceil((options.taskCount ?? per) / per) : (workers as number | "auto" | undefined);
  const packing: Packing = asked === undefined && slots === undefined ? { workers: undefined } : { workers: asked ?? "auto", slots: slots as number | undefined };
  if (ranks > 1 && packing.workers !== undefined && packing.workers !== "auto") {
    const [name, value] = per !== undefined ? ["tasksPerElement", per] : workers !== undefined ? ["workers", workers] : ["slots", slots];
    throw new ParameterError("mapArray options", [
      `Expected \`${name}\` to be ${name === "tasksPerElement" ? "1" : "left out"} for jobs with several ranks (nodes × ntasksPerNode = ${ranks}), got \`${String(value)}\``,
    ]);
  }
  return ranks > 1 ? { workers: undefined } : packing;
}

/** The partition's usable nodes (the default partition's without one; a comma list means any of them). */
function partitionNodes(nodes: readonly NodeCpus[], partition: string | undefined): NodeCpus[] {
  const wanted = partition?.split(",").map((p) => p.trim());
  return nodes.filter((n) => n.usable !== false && (wanted ? n.partitions.some((p) => wanted.includes(p)) : n.inDefaultPartition));
}

/** One task's resources, as far as placing it goes. */
type TaskShape = Pick<SlurmParameters, "cpusPerTask" | "gres" | "gpusPerNode" | "mem" | "memPerCpu" | "sbatch" | "partition">;

/** Raw sbatch options that set a task's memory: a worker asks for its own `--mem` instead. */
const RAW_MEMORY = ["mem", "mem-per-cpu", "mem-per-gpu"] as const;

/**
 * One task's memory in MiB, as Slurm would give it in an element of its own:
 * `mem`, or `memPerCpu` × its CPUs, or the same raw sbatch options
 * (`mem-per-gpu` × its GPUs too), or its partition's default (DefMemPerCPU ×
 * CPUs, or DefMemPerNode; the smallest of a comma list of partitions), or
 * the cluster's. Undefined when nothing limits it, or a raw option says
 * what cannot be counted (`mem: 0`, a node's whole memory).
 */
export function taskMemoryMb(p: TaskShape, limits?: Pick<ClusterLimits, "defaultMemory" | "partitionMemory">): number | undefined {
  const cpus = p.cpusPerTask ?? 1;
  if (p.mem !== undefined) return p.mem;
  if (p.memPerCpu !== undefined) return p.memPerCpu * cpus;
  const raw = RAW_MEMORY.find((key) => p.sbatch?.[key] !== undefined);
  if (raw !== undefined) {
    const mb = parseMemoryMegabytes(String(p.sbatch![raw]));
    const per = raw === "mem" ? 1 : raw === "mem-per-cpu" ? cpus : gpusPerTask(p);
    return mb === undefined || per === 0 ? undefined : mb * per;
  }
  const byDefault = (d: DefaultMemory | undefined) => (d === undefined ? undefined : "perCpuMb" in d ? d.perCpuMb * cpus : d.perNodeMb);
  const partitions = p.partition?.split(",").map((name) => name.trim()) ?? [DEFAULT_PARTITION];
  const each = partitions.map((name) => byDefault(limits?.partitionMemory?.get(name)) ?? byDefault(limits?.defaultMemory));
  return each.some((mb) => mb === undefined) ? undefined : Math.min(...(each as number[]));
}

/**
 * How many one-node tasks (of `cpusPerTask` CPUs, or of a task's CPUs, GPUs
 * and memory) fit on the partition's usable nodes at once, each in an element
 * of its own (the default partition without one; a comma list means any of
 * them). Undefined when no node is known.
 */
export function concurrentSlots(nodes: readonly NodeCpus[], partition: string | undefined, task: number | TaskShape = 1): number | undefined {
  const shape = typeof task === "number" ? { cpusPerTask: task } : task;
  const inPartition = partitionNodes(nodes, partition);
  if (inPartition.length === 0) return undefined;
  return inPartition.reduce((sum, n) => sum + tasksOnNode(n, shape, taskMemoryMb(shape)), 0);
}

/**
 * How many of one task's CPUs, GPUs and memory a node holds at once: in
 * elements of their own, or (`worker`) in workers of one slot each, every one
 * with WORKER_OVERHEAD_MB of its own, or (`largest`) in one worker, whose
 * overhead is counted once. In a worker each slot also has SLOT_MARGIN_MB.
 */
function tasksOnNode(n: NodeCpus, p: TaskShape, memMb: number | undefined, how: "alone" | "worker" | "largest" = "alone"): number {
  const cpus = p.cpusPerTask ?? 1;
  const gpus = gpusPerTask(p);
  const slot = memMb === undefined ? 0 : how === "alone" ? memMb : memMb + SLOT_MARGIN_MB;
  const room =
    n.memoryMb === undefined || memMb === undefined ? Infinity : how === "largest" ? (n.memoryMb - WORKER_OVERHEAD_MB) / slot : n.memoryMb / (slot + (how === "worker" ? WORKER_OVERHEAD_MB : 0));
  return Math.max(0, Math.min(Math.floor(n.cpus / cpus), gpus > 0 && n.gpus !== undefined ? Math.floor(n.gpus / gpus) : Infinity, Math.floor(room)));
}

/**
 * Workers and slots for "auto": as many tasks at once as the partition holds
 * (capped by arrayParallelism, 64 without it), in as many workers as
 * MaxSubmitJobs allows, each no bigger than a node. Each worker's own memory
 * (WORKER_OVERHEAD_MB) is counted where it fits workers on nodes. Undefined
 * when packing cannot help: every task can have its own element at once.
 */
export function autoPacking(tasks: number, p: SlurmParameters, limits: ClusterLimits): { workers: number; slots: number } | undefined {
  const nodes = partitionNodes(limits.nodes, p.partition);
  const mem = taskMemoryMb(p, limits);
  const cap = Math.min(p.arrayParallelism ?? 64, tasks);
  const sum = (how: "alone" | "worker") => (nodes.length ? nodes.reduce((s, n) => s + tasksOnNode(n, p, mem, how), 0) : Infinity);
  if (tasks <= Math.max(1, Math.min(sum("alone"), cap))) return undefined;
  const concurrent = Math.max(1, Math.min(sum("worker"), cap));
  const workers = Math.min(concurrent, limits.maxSubmitJobs ?? Infinity);
  const biggest = nodes.length ? Math.max(...nodes.map((n) => tasksOnNode(n, p, mem, "largest"))) : Infinity;
  // A task that fits a node alone but not beside a worker's own memory: one per element.
  if (biggest < 1) return undefined;
  return { workers, slots: Math.min(Math.ceil(concurrent / workers), biggest) };
}

/** What planSubmission needs. */
export interface PlanInput {
  readonly taskCount: number;
  /** mapArray (true) or submit (false). */
  readonly array: boolean;
  readonly parameters: SlurmParameters;
  /** The cluster's limits; needed for arrays. */
  readonly limits: ClusterLimits | undefined;
  /** From checkSubmission. */
  readonly packing: Packing;
  /** The `afterok` dependency, if any. */
  readonly dependency: string | undefined;
  readonly folder: RunFolder;
  /** The node binary and the runner's path on the nodes. */
  readonly runner: readonly [string, string];
  /**
   * Whether the tasks want Slurm's warning: some can checkpoint or requeue, or
   * are function tasks (`ctx.signal`), or `signal` was set. Without it the
   * script asks for no signal, and commands run as they always did.
   */
  readonly warned?: boolean;
}

/** One sbatch script of a plan: an array job over elements firstElement .. firstElement + count - 1. */
export interface PlannedScript {
  readonly path: string;
  /** The comment that finds its job in squeue (submissionTag). */
  readonly tag: string;
  readonly text: string;
  readonly firstElement: number;
  readonly count: number;
}

/** What to write and submit. */
export interface SubmissionPlan {
  /** Tasks per element: 1, or undefined for workers that claim tasks. */
  readonly perElement: number | undefined;
  /** Several array jobs, or workers: the elements' own logs go to logs/elements/. */
  readonly packed: boolean;
  /** Folders to make before anything is written. */
  readonly dirs: readonly string[];
  readonly scripts: readonly PlannedScript[];
  /** Workers: the script of later workers (no dependency), submitted with `--array` when tasks are left. */
  readonly topUp?: PlannedScript;
  /** The manifest, before sbatch returns (jobId null). */
  readonly manifest: Manifest;
}

/** Room in a worker's walltime for its start and its setup, on top of its tasks' time. */
export const WORKER_MARGIN_SECONDS = 60;

/** The shape of the workers, or undefined for one task per element. */
function planWorkers(input: PlanInput): WorkersRecord | undefined {
  const { taskCount, array, parameters, limits, packing } = input;
  if (!array || packing.workers === undefined) return undefined;
  const auto = packing.workers === "auto";
  const taskTime = parameters.time;
  // A worker enforces each task's time limit and fits tasks in its walltime: without `time` it could do neither.
  if (taskTime === undefined) {
    if (auto) return undefined;
    throw new ParameterError("mapArray options", ["Expected the `time` parameter with `workers` or `slots`: a worker runs each task within its own time limit, and needs to know it"]);
  }
  const listed = parameters.partition?.split(",").map((p) => p.trim()) ?? [DEFAULT_PARTITION];
  const limitsOf = listed.map((p) => limits?.maxTimes?.get(p)).filter((t): t is number => t !== undefined);
  const maxTime = limitsOf.length ? Math.min(...limitsOf) : undefined;
  if (maxTime !== undefined && taskTime > maxTime) {
    throw new ParameterError("Slurm parameters", [`Expected \`time\` (${formatSlurmTime(taskTime)}) to be at most the partition's MaxTime (${formatSlurmTime(maxTime)}): no worker could run a task`]);
  }
  if (maxTime !== undefined && taskTime + WORKER_MARGIN_SECONDS > maxTime) {
    // A worker needs its start and setup on top of one task's time.
    if (auto) return undefined;
    throw new ParameterError("mapArray options", [
      `Expected \`time\` (${formatSlurmTime(taskTime)}) plus ${WORKER_MARGIN_SECONDS} s for a worker's start to fit the partition's MaxTime (${formatSlurmTime(maxTime)}); run these tasks one per element`,
    ]);
  }
  const chosen = auto ? autoPacking(taskCount, parameters, limits!) : { workers: packing.workers as number, slots: packing.slots ?? 1 };
  if (!chosen) return undefined;
  const slots = packing.slots ?? chosen.slots;
  const taskMemMb = taskMemoryMb(parameters, limits);
  const fits = partitionNodes(limits?.nodes ?? [], parameters.partition).map((n) => tasksOnNode(n, parameters, taskMemMb, "largest"));
  if (fits.length && slots > Math.max(...fits)) {
    throw new ParameterError("mapArray options", [
      `Expected \`slots\` to be at most ${Math.max(...fits)}: a worker asks for slots × one task's CPUs, memory and GPUs${taskMemMb !== undefined ? ` (and ${SLOT_MARGIN_MB} MiB more per slot), plus ${WORKER_OVERHEAD_MB} MiB for its own processes` : ""}, and no node of the partition holds ${slots} tasks`,
    ]);
  }
  const workers = Math.min(chosen.workers, Math.ceil(taskCount / slots));
  let walltime = taskTime * Math.ceil(taskCount / (workers * slots)) + WORKER_MARGIN_SECONDS;
  if (maxTime !== undefined) walltime = Math.min(walltime, maxTime);
  return {
    count: workers,
    slots,
    taskTimeSeconds: taskTime,
    walltimeSeconds: walltime,
    ...(taskMemMb !== undefined ? { taskMemMb, memMb: slots * (taskMemMb + SLOT_MARGIN_MB) + WORKER_OVERHEAD_MB } : {}),
    ...(parameters.arrayParallelism !== undefined ? { parallelism: parameters.arrayParallelism } : {}),
  };
}

/** Packs into workers or splits at MaxArraySize, and renders the scripts of one submission. */
export function planSubmission(input: PlanInput): SubmissionPlan {
  const { taskCount, array, parameters, limits, folder } = input;
  const workers = planWorkers(input);
  const elements = workers?.count ?? taskCount;
  if (limits?.maxSubmitJobs !== undefined && elements > limits.maxSubmitJobs) {
    throw new ParameterError("mapArray options", [
      `${taskCount} tasks make ${elements} array elements, more than this cluster's MaxSubmitJobs (${limits.maxSubmitJobs}); use workers: ${limits.maxSubmitJobs} or fewer, or "auto"`,
    ]);
  }
  const arraySize = limits?.maxArraySize ?? 1;
  const arrayCount = array ? Math.ceil(elements / arraySize) : 1;
  const packed = array && (workers !== undefined || arrayCount > 1);
  const ranks = ranksPerJob(parameters);

  const setup = parameters.setup ?? [];
  const exitMarkers = setup.some((s) => isSetupStep(s) && s.exit.length > 0);
  const warning = input.warned === false && parameters.signal === undefined ? undefined : warningOf(parameters.signal);
  const sized = workers ? workerElement(parameters, workers) : parameters;
  const element = warning ? { ...sized, signal: warning.option } : sized;
  const base = [...toSbatchOptions(element, workers?.walltimeSeconds), ...attemptOptions(parameters)];
  const common = input.dependency === undefined ? base : [...base, ["dependency", input.dependency] as [string, string], ["kill-on-invalid-dep", "yes"] as [string, string]];
  const limit = parameters.arrayParallelism === undefined ? "" : `%${parameters.arrayParallelism}`;
  const render = (firstElement: number | "from-env", count: number, path: string, common: ReadonlyArray<[string, string | true]>, tag: string): PlannedScript => {
    const options: Array<[string, string | true]> = [];
    if (array) options.push(["array", `0-${count - 1}${limit}`]);
    if (packed) options.push(["output", `${folder.elementLogsDir}/%A_%a.out`], ["error", `${folder.elementLogsDir}/%A_%a.err`]);
    else options.push(["output", `${folder.logsDir}/${array ? "%a" : "0"}.out`], ["error", `${folder.logsDir}/${array ? "%a" : "0"}.err`]);
    // The tag that finds this job in squeue when the client never learned its id; the user's own comment follows it.
    const own = common.find(([name]) => name === "comment")?.[1];
    options.push(...common.filter(([name]) => name !== "comment"), ["comment", typeof own === "string" ? `${tag} ${own}` : tag]);
    // A worker's own Node process keeps its memory flat (WORKER_NODE_FLAGS); its slots run as a task's runner would.
    const [node, runnerFile] = input.runner;
    const runner = [
      ...(workers ? [node, ...WORKER_NODE_FLAGS, runnerFile] : input.runner),
      folder.dir,
      ...runnerOptions(workers, firstElement === "from-env" ? 0 : firstElement, packed, parameters, limits?.usesPss === true),
      ...(warning
        ? [
            "--warning",
            warning.name,
            ...(workers ? ["--warn-seconds", String(warning.seconds)] : []),
            "--max-requeues",
            String(parameters.maxRequeues ?? DEFAULT_MAX_REQUEUES),
            // A signal the user asked for reaches every command, as it always did; the default one only commands with `requeue`.
            ...(parameters.signal !== undefined ? ["--forward-warning"] : []),
          ]
        : []),
    ];
    const text = renderScript({
      options,
      setup,
      runner,
      ranks,
      ...(workers ? { recordStart: true } : {}),
      ...(exitMarkers ? { exitMarkerDir: folder.resultsDir, exitMarkerOffset: firstElement } : {}),
    });
    return { path, tag, text, firstElement: firstElement === "from-env" ? 0 : firstElement, count };
  };
  const scripts = Array.from({ length: arrayCount }, (_, j) => {
    const firstElement = j * arraySize;
    return render(firstElement, Math.min(arraySize, elements - firstElement), folder.script(j), common, submissionTag(folder, j));
  });
  // More workers, submitted later when tasks are left: the same script without the dependency, which has passed by then.
  const topUp = workers ? render("from-env", 1, folder.workersScript, base, submissionTag(folder, "workers")) : undefined;
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    kind: "slurm",
    createdAt: new Date().toISOString(),
    taskCount,
    jobId: null,
    array,
    ranks,
    ...(exitMarkers ? { exitMarkers } : {}),
    ...(workers ? { workers } : packed ? { tasksPerElement: 1 } : {}),
  };
  const dirs = [folder.logsDir, folder.resultsDir, folder.stateDir, ...(packed ? [folder.elementLogsDir] : []), ...(workers ? [folder.claimsDir, folder.cancelsDir] : [])];
  return { perElement: workers ? undefined : 1, packed, dirs, scripts, ...(topUp ? { topUp } : {}), manifest };
}

/**
 * The comment every sbatch script of a submission carries: `slurmkit:<folder
 * name>:<script>` (`:0`, `:1` for a split array's scripts, `:workers` for
 * workers added later), so that its jobs can be found in squeue when sbatch's
 * answer was lost.
 */
export function submissionTag(folder: RunFolder, script: number | "workers"): string {
  return `slurmkit:${basename(folder.dir)}:${script}`;
}

/**
 * Slurm's warning signal and its sbatch option: `signal` (USR2 90 s before
 * the time limit by default), sent to the batch shell (`B:`), which passes it
 * on to the runner or to srun's ranks; and how many seconds before the limit
 * it comes (Slurm's default is 60), which a worker uses for each task's.
 */
export function warningOf(signal: string | undefined): { name: string; option: string; seconds: number } {
  const text = signal ?? "USR2@90";
  const m = /^(?:(B|R):)?([A-Z0-9]+)(?:@(\d+))?$/.exec(text)!;
  return { name: m[2]!, option: `${m[1] === "R" ? "R:" : "B:"}${m[2]}${m[3] !== undefined ? `@${m[3]}` : ""}`, seconds: m[3] !== undefined ? Number(m[3]) : 60 };
}

/**
 * sbatch options that keep every attempt of a task right: Slurm never reruns
 * a task by itself (`--no-requeue`; the runner requeues a task that
 * checkpointed), and a requeued task's logs are appended to, not truncated.
 * An option the raw `sbatch` map sets wins.
 */
function attemptOptions(p: SlurmParameters): Array<[string, string | true]> {
  const raw = p.sbatch ?? {};
  const out: Array<[string, string | true]> = [];
  if (!("requeue" in raw) && !("no-requeue" in raw)) out.push(["no-requeue", true]);
  if (!("open-mode" in raw)) out.push(["open-mode", "append"]);
  return out;
}

/**
 * A worker element's resources: `slots` × one task's CPUs and GPUs, and
 * `slots` × one task's memory plus WORKER_OVERHEAD_MB for the worker's own
 * processes (as `mem`, also when the task's is `memPerCpu` or the cluster's
 * default), so that every slot has a whole task's memory. Its time limit is
 * its walltime (`WorkersRecord.walltimeSeconds`), rendered in place of the
 * task's `time`, which stays the task's.
 */
function workerElement(p: SlurmParameters, workers: WorkersRecord): SlurmParameters {
  const scaled = scaleForSlots(p, workers.slots);
  if (workers.memMb === undefined) return scaled;
  // memPerCpu and the raw memory options are a task's memory (memMb counts it): the element asks for all of its own as `mem`.
  const { memPerCpu: _perTask, sbatch, ...rest } = scaled;
  const raw = Object.fromEntries(Object.entries(sbatch ?? {}).filter(([key]) => !(RAW_MEMORY as readonly string[]).includes(key)));
  return { ...rest, ...(Object.keys(raw).length ? { sbatch: raw } : {}), mem: workers.memMb };
}

/** The runner's options after the run folder: a worker's shape, or a split array's element offset. */
function runnerOptions(workers: WorkersRecord | undefined, firstElement: number, packed: boolean, p: SlurmParameters, usesPss: boolean): string[] {
  if (workers) {
    return [
      "--worker",
      String(firstElement),
      "--workers",
      String(workers.count),
      "--slots",
      String(workers.slots),
      "--cpus-per-task",
      String(p.cpusPerTask ?? 1),
      ...(workers.taskTimeSeconds !== undefined ? ["--task-time", String(workers.taskTimeSeconds)] : []),
      ...(workers.walltimeSeconds !== undefined ? ["--walltime", String(workers.walltimeSeconds)] : []),
      ...(workers.taskMemMb !== undefined ? ["--task-mem", String(workers.taskMemMb), ...(usesPss ? ["--task-mem-pss"] : [])] : []),
    ];
  }
  return packed ? ["--element-offset", String(firstElement)] : [];
}
