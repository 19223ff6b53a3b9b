import { basename, posix } from "node:path";
import { ParameterError } from "../base/errors.js";
import { MANIFEST_VERSION, type Manifest, type TaskRequest, type WorkersRecord } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { TaskRecord } from "../protocol/task-record.js";
import { encodeRunnerArgs, RUNNER_DEFAULTS } from "../protocol/runner-args.js";
import { isSetupStep, type SetupStep } from "../setup/index.js";
import { gpusPerTask, ranksPerJob, scaleForSlots, toSbatchOptions, type SlurmParameters } from "./parameters.js";
import { SLOT_MARGIN_MB, WORKER_NODE_FLAGS, WORKER_OVERHEAD_MB } from "../protocol/worker-memory.js";
import { DEFAULT_PARTITION } from "./parse.js";
import type { ClusterLimits } from "./scheduler.js";
import { autoPacking, partitionNodes, RAW_MEMORY, taskMemoryMb, tasksOnNode, type Packing } from "./packing.js";
import { renderScript, SLURM_SCRIPT, type ScriptDialect } from "./script.js";
import { formatSlurmTime, parseDurationSeconds } from "./units.js";

// Planning a submission is pure: tasks, parameters and the cluster's limits in,
// sbatch scripts and a manifest out. The executor writes and submits the plan.

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
  /** The job's name when `jobName` is not set (defaultJobName). */
  readonly defaultName?: string | undefined;
  /** The scheduler: its manifests' kind and its scripts' words. @default Slurm's */
  readonly scheduler?: { readonly kind: string; readonly script: ScriptDialect };
}

/**
 * A readable job name for squeue and sacct, from the tasks: a function task's
 * name, or a command's program (its file name), as submitit names jobs after
 * the function; `+N` when the tasks have N other names. Undefined when none
 * can be read (a program that is a runtime value).
 */
export function defaultJobName(records: readonly TaskRecord[]): string | undefined {
  const names = new Set<string>();
  for (const r of records) {
    const name = r.kind === "function" ? r.name : typeof r.program === "string" ? posix.basename(r.program) : undefined;
    if (name) names.add(name.replace(/[^\w.+-]/g, "_").slice(0, 64));
    if (names.size > 50) break;
  }
  const [first] = names;
  if (first === undefined || first === "") return undefined;
  return names.size > 1 ? `${first}+${names.size - 1}` : first;
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

/**
 * A task that no partition it names could ever run is refused here, not left
 * pending for ever (PartitionTimeLimit) or refused by sbatch after its folder
 * was written: a `time` over every listed partition's MaxTime, or a `mem`
 * over every node's memory. Unknown limits check nothing.
 */
function checkFits(p: SlurmParameters, limits: ClusterLimits): void {
  const listed = p.partition?.split(",").map((name) => name.trim()) ?? [DEFAULT_PARTITION];
  const times = listed.map((name) => (limits.maxTimes?.has(name) ? (limits.maxTimes.get(name) ?? Infinity) : undefined));
  const longest = times.some((t) => t === undefined) ? undefined : Math.max(...(times as number[]));
  const problems: string[] = [];
  if (p.time !== undefined && longest !== undefined && longest !== Infinity && p.time > longest) {
    problems.push(
      `Expected \`time\` (${formatSlurmTime(p.time)}) to be at most the partition's MaxTime (${formatSlurmTime(longest)}): Slurm would leave the job pending for ever (PartitionTimeLimit)`,
    );
  }
  const nodes = partitionNodes(limits.nodes, p.partition);
  const biggest = nodes.length && nodes.every((n) => n.memoryMb !== undefined) ? Math.max(...nodes.map((n) => n.memoryMb!)) : undefined;
  if (p.mem !== undefined && p.mem > 0 && biggest !== undefined && p.mem > biggest) {
    problems.push(`Expected \`mem\` (${p.mem} MiB) to be at most the largest node's memory in the partition (${biggest} MiB): no node could run a task`);
  }
  if (problems.length) throw new ParameterError("Slurm parameters", problems);
}

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
  if (array && input.limits) checkFits(parameters, input.limits);
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
  // The container the runner starts command tasks in (a container step without runnerInside).
  const container = setup.find((s) => isSetupStep(s) && s.container !== undefined) as SetupStep | undefined;
  const exitMarkers = setup.some((s) => isSetupStep(s) && s.exit.length > 0);
  const wanted = input.warned !== false || parameters.signal !== undefined;
  const elementSeconds = workers?.walltimeSeconds ?? timeLimitOf(parameters);
  const dialect = input.scheduler?.script ?? SLURM_SCRIPT;
  const warning = wanted ? warningOf(parameters.signal, elementSeconds, workers ? parameters.time : undefined, !dialect.warnsBeforeLimit) : undefined;
  const lead = warning ? Number(/@(\d+)$/.exec(warning.option)?.[1] ?? 60) : undefined;
  // A scheduler with no warning of its own (PBS): the script sends it, as long before the limit as Slurm would.
  const selfWarning = !dialect.warnsBeforeLimit && lead !== undefined && elementSeconds !== undefined ? { afterSeconds: elementSeconds - lead } : undefined;
  const sized = workers ? workerElement(parameters, workers) : parameters;
  const element = warning ? { ...sized, signal: warning.option } : sized;
  const named = element.jobName === undefined && input.defaultName !== undefined ? { ...element, jobName: input.defaultName } : element;
  const base = [...toSbatchOptions(named, workers?.walltimeSeconds), ...attemptOptions(parameters)];
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
      ...runnerArgs(workers, firstElement === "from-env" ? 0 : firstElement, packed, parameters, limits?.usesPss === true, warning, container),
    ];
    const text = renderScript({
      options,
      setup,
      runner,
      ranks,
      nodeCheck: { marker: folder.nodeUnusable },
      sharedDir: folder.stateDir,
      dialect,
      ...(selfWarning && warning?.option.startsWith("B:") ? { selfWarning } : {}),
      ...(warning?.option.startsWith("B:") ? { warningSignal: warning.name } : {}),
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
    kind: input.scheduler?.kind ?? "slurm",
    createdAt: new Date().toISOString(),
    taskCount,
    jobId: null,
    array,
    ranks,
    ...(exitMarkers ? { exitMarkers } : {}),
    ...(workers ? { workers } : packed ? { tasksPerElement: 1 } : {}),
    request: taskRequest(parameters, limits),
  };
  const dirs = [
    folder.logsDir,
    folder.resultsDir,
    folder.stateDir,
    ...(packed ? [folder.elementLogsDir] : []),
    ...(workers ? [folder.streamsDir, folder.claimsDir, folder.cancelsDir, folder.releasesDir, folder.wantsDir, folder.roundsDir] : []),
  ];
  return { perElement: workers ? undefined : 1, packed, dirs, scripts, ...(topUp ? { topUp } : {}), manifest };
}

/** What one task asks for, for the manifest: its CPUs, memory (given, or the cluster's default), time, GPUs and partition. */
export function taskRequest(parameters: SlurmParameters, limits: ClusterLimits | undefined): TaskRequest {
  const memMb = taskMemoryMb(parameters, limits);
  const gpus = gpusPerTask(parameters);
  return {
    cpus: parameters.cpusPerTask ?? 1,
    ...(memMb !== undefined ? { memMb } : {}),
    ...(parameters.time !== undefined ? { timeSeconds: parameters.time } : {}),
    ...(gpus > 0 ? { gpus } : {}),
    ...(parameters.partition !== undefined ? { partition: parameters.partition } : {}),
  };
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

/** Slurm may send the warning up to this many seconds before the time it was asked for (sbatch(1), `--signal`). */
const WARNING_EARLY_SECONDS = 60;
/** The default warning never comes sooner than this after a job (or a packed task) starts. */
const WARNING_FIRST_SECONDS = 30;
/** The default warning's lead when the time limit leaves room for it (submitit's too). */
const WARNING_LEAD_SECONDS = 90;

/**
 * The default warning's lead for a job of `timeSeconds`: 90 s, less for a
 * short time limit, so that it never comes in the job's first
 * WARNING_FIRST_SECONDS (a signal before the batch shell traps it ends the
 * job, and one at the start leaves a task no time to work); undefined, no
 * warning, when the limit is too short for one. Unknown limit: 90.
 */
function defaultWarningSeconds(timeSeconds: number | undefined, early = WARNING_EARLY_SECONDS): number | undefined {
  if (timeSeconds === undefined) return WARNING_LEAD_SECONDS;
  const lead = Math.min(WARNING_LEAD_SECONDS, timeSeconds - early - WARNING_FIRST_SECONDS);
  return lead >= 1 ? lead : undefined;
}

/** A job's time limit in seconds: `time`, or `time` in the raw `sbatch` map; undefined when the partition's default applies. */
function timeLimitOf(p: SlurmParameters): number | undefined {
  if (p.time !== undefined) return p.time;
  const raw = p.sbatch?.time ?? p.sbatch?.t;
  return typeof raw === "string" ? parseDurationSeconds(raw) : undefined;
}

/**
 * Slurm's warning signal and its sbatch option: `signal`, else USR2
 * defaultWarningSeconds(elementSeconds) before the element's limit (none when
 * it is too short), sent to the batch shell (`B:`), which passes it on to the
 * runner or to srun's ranks; and how many seconds before a packed task's
 * limit (`taskSeconds`) its worker warns it: the signal's (Slurm's default is
 * 60), or by default 90 s but never in the task's first WARNING_FIRST_SECONDS
 * (0, no warning, for a task that short). `exact`: the script sends the
 * warning itself (PBS), on time, so the lead needs no room for Slurm's
 * early minute.
 */
export function warningOf(signal: string | undefined, elementSeconds?: number, taskSeconds?: number, exact = false): { name: string; option: string; seconds: number } | undefined {
  if (signal === undefined) {
    const lead = defaultWarningSeconds(elementSeconds, exact ? 0 : WARNING_EARLY_SECONDS);
    if (lead === undefined) return undefined;
    const perTask = taskSeconds === undefined ? lead : Math.max(0, Math.min(WARNING_LEAD_SECONDS, taskSeconds - WARNING_FIRST_SECONDS));
    return { name: "USR2", option: `B:USR2@${lead}`, seconds: perTask };
  }
  const m = /^(?:(B|R):)?([A-Z0-9]+)(?:@(\d+))?$/.exec(signal)!;
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

/** The runner's options after the run folder: a worker's shape or a split array's element offset, and Slurm's warning. */
function runnerArgs(
  workers: WorkersRecord | undefined,
  firstElement: number,
  packed: boolean,
  p: SlurmParameters,
  usesPss: boolean,
  warning: { name: string; seconds: number } | undefined,
  containerStep: SetupStep | undefined,
): string[] {
  const container = containerStep?.container;
  const warningArgs = warning && {
    signal: `SIG${warning.name}` as NodeJS.Signals,
    warnSeconds: warning.seconds,
    maxRequeues: p.maxRequeues ?? RUNNER_DEFAULTS.maxRequeues,
    // A signal the user asked for reaches every command, as it always did; the default one only commands with `requeue`.
    forwardAll: p.signal !== undefined,
  };
  if (!workers) return encodeRunnerArgs({ mode: "task", elementOffset: packed ? firstElement : undefined, warning: warningArgs, container });
  return encodeRunnerArgs({
    mode: "worker",
    worker: {
      firstWorker: firstElement,
      workers: workers.count,
      slots: workers.slots,
      cpusPerTask: p.cpusPerTask ?? RUNNER_DEFAULTS.cpusPerTask,
      taskTimeSeconds: workers.taskTimeSeconds,
      walltimeSeconds: workers.walltimeSeconds,
      taskMemMb: workers.taskMemMb,
      taskMemPss: workers.taskMemMb !== undefined && usesPss,
    },
    warning: warningArgs,
    container,
  });
}
