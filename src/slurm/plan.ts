import { ParameterError } from "../errors.js";
import { MANIFEST_VERSION, type Manifest } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { isSetupStep } from "../setup/index.js";
import { ranksPerJob, toSbatchOptions, type SlurmParameters } from "./parameters.js";
import type { NodeCpus } from "./parse.js";
import type { ClusterLimits } from "./scheduler.js";
import { renderScript } from "./script.js";

// Planning a submission is pure: tasks, parameters and the cluster's limits in,
// sbatch scripts and a manifest out. The executor writes and submits the plan.

/** Checks what can be checked before the cluster's limits are read; returns tasksPerElement. */
export function checkSubmission(parameters: SlurmParameters, options: { readonly tasksPerElement?: unknown; readonly dependency: string | undefined }): number | "auto" {
  const raw = parameters.dependency ?? parameters.sbatch?.dependency;
  if (options.dependency !== undefined && raw !== undefined) {
    throw new ParameterError("submit options", [`Expected either \`after\` or the \`dependency\` parameter, not both (dependency is \`${String(raw)}\`)`]);
  }
  const per = options.tasksPerElement ?? 1;
  if (per !== "auto" && !(typeof per === "number" && Number.isInteger(per) && per > 0)) {
    throw new ParameterError("mapArray options", [`Expected \`tasksPerElement\` to be a positive integer or "auto", got \`${String(per)}\``]);
  }
  const ranks = ranksPerJob(parameters);
  if (per !== 1 && ranks > 1) {
    throw new ParameterError("mapArray options", [`Expected \`tasksPerElement\` to be 1 for jobs with several ranks (nodes × ntasksPerNode = ${ranks}), got \`${String(per)}\``]);
  }
  return per as number | "auto";
}

/**
 * How many one-node jobs of `cpusPerTask` CPUs fit on the partition's nodes at
 * once (the default partition without one; a comma list means any of them).
 * Undefined when no node is known.
 */
export function concurrentSlots(nodes: readonly NodeCpus[], partition: string | undefined, cpusPerTask = 1): number | undefined {
  const wanted = partition?.split(",").map((p) => p.trim());
  const inPartition = nodes.filter((n) => (wanted ? n.partitions.some((p) => wanted.includes(p)) : n.inDefaultPartition));
  if (inPartition.length === 0) return undefined;
  return inPartition.reduce((sum, n) => sum + Math.floor(n.cpus / cpusPerTask), 0);
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

/** What planSubmission needs. */
export interface PlanInput {
  readonly taskCount: number;
  /** mapArray (true) or submit (false). */
  readonly array: boolean;
  readonly parameters: SlurmParameters;
  /** The cluster's limits; needed for arrays. */
  readonly limits: ClusterLimits | undefined;
  /** Checked by checkSubmission. */
  readonly tasksPerElement: number | "auto";
  /** The `afterok` dependency, if any. */
  readonly dependency: string | undefined;
  readonly folder: RunFolder;
  /** The node binary and the runner's path on the nodes. */
  readonly runner: readonly [string, string];
}

/** One sbatch script of a plan: an array job over elements firstElement .. firstElement + count - 1. */
export interface PlannedScript {
  readonly path: string;
  readonly text: string;
  readonly firstElement: number;
  readonly count: number;
}

/** What to write and submit. */
export interface SubmissionPlan {
  readonly perElement: number;
  /** Several tasks per element, or several array jobs: the runner writes each task's logs. */
  readonly packed: boolean;
  /** Folders to make before anything is written. */
  readonly dirs: readonly string[];
  readonly scripts: readonly PlannedScript[];
  /** The manifest, before sbatch returns (jobId null). */
  readonly manifest: Manifest;
}

/** Packs, splits at MaxArraySize and renders the scripts of one submission. */
export function planSubmission(input: PlanInput): SubmissionPlan {
  const { taskCount, array, parameters, limits, folder } = input;
  const perElement = input.tasksPerElement === "auto" ? autoTasksPerElement(taskCount, parameters, limits!) : input.tasksPerElement;
  const elements = Math.ceil(taskCount / perElement);
  if (limits?.maxSubmitJobs !== undefined && elements > limits.maxSubmitJobs) {
    throw new ParameterError("mapArray options", [
      `${taskCount} tasks at ${perElement} per element make ${elements} array elements, more than this cluster's MaxSubmitJobs (${limits.maxSubmitJobs}); use tasksPerElement: ${Math.ceil(taskCount / limits.maxSubmitJobs)} or more, or "auto"`,
    ]);
  }
  const arraySize = limits?.maxArraySize ?? 1;
  const arrayCount = array ? Math.ceil(elements / arraySize) : 1;
  const packed = array && (perElement > 1 || arrayCount > 1);
  const ranks = ranksPerJob(parameters);

  const setup = parameters.setup ?? [];
  const exitMarkers = setup.some((s) => isSetupStep(s) && s.exit.length > 0);
  const common = toSbatchOptions(parameters);
  if (input.dependency !== undefined) common.push(["dependency", input.dependency], ["kill-on-invalid-dep", "yes"]);
  const limit = parameters.arrayParallelism === undefined ? "" : `%${parameters.arrayParallelism}`;
  const scripts = Array.from({ length: arrayCount }, (_, j): PlannedScript => {
    const firstElement = j * arraySize;
    const count = Math.min(arraySize, elements - firstElement);
    const options: Array<[string, string | true]> = [];
    if (array) options.push(["array", `0-${count - 1}${limit}`]);
    if (packed) options.push(["output", `${folder.elementLogsDir}/%A_%a.out`], ["error", `${folder.elementLogsDir}/%A_%a.err`]);
    else options.push(["output", `${folder.logsDir}/${array ? "%a" : "0"}.out`], ["error", `${folder.logsDir}/${array ? "%a" : "0"}.err`]);
    options.push(...common);
    const runner = [...input.runner, folder.dir, ...(packed ? ["--per-element", String(perElement), "--element-offset", String(firstElement)] : [])];
    const text = renderScript({
      options,
      setup,
      runner,
      ranks,
      ...(exitMarkers ? { exitMarkerDir: folder.resultsDir, exitMarkerOffset: firstElement } : {}),
    });
    return { path: folder.script(j), text, firstElement, count };
  });
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    kind: "slurm",
    createdAt: new Date().toISOString(),
    taskCount,
    jobId: null,
    array,
    ranks,
    ...(exitMarkers ? { exitMarkers } : {}),
    ...(packed ? { tasksPerElement: perElement } : {}),
  };
  const dirs = [folder.logsDir, folder.resultsDir, folder.stateDir, ...(packed ? [folder.elementLogsDir] : [])];
  return { perElement, packed, dirs, scripts, manifest };
}
