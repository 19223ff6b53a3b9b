// Packing: how many tasks a worker runs at once and how many workers a
// submission gets ("auto"), from one task's CPUs, GPUs and memory and the
// nodes' sizes. Pure, like the plan that uses it.
import { ParameterError } from "../base/errors.js";
import { SLOT_MARGIN_MB, WORKER_OVERHEAD_MB } from "../protocol/worker-memory.js";
import { gpusPerTask, ranksPerJob, type SlurmParameters } from "./parameters.js";
import { DEFAULT_PARTITION, type DefaultMemory, type NodeCpus } from "./parse.js";
import type { ClusterLimits } from "./scheduler.js";
import { parseMemoryMegabytes } from "./units.js";

/** How a submission's tasks are run, as mapArray's options ask. */
export interface PackingOptions {
  /** Old spelling: k means ceil(N / k) workers; "auto" as `workers: "auto"`. */
  readonly tasksPerElement?: unknown;
  readonly workers?: unknown;
  readonly slots?: unknown;
}

/** What checkSubmission found: one task per element, or workers (a count, or "auto") with slots. */
export type Packing = { readonly workers: undefined } | { readonly workers: number | "auto"; readonly slots: number | undefined };

export const positive = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;

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
  if (parameters.mem === 0 && packing.workers !== undefined && (packing.workers !== "auto" || slots !== undefined)) {
    throw new ParameterError("mapArray options", [
      "Expected no `workers`, `slots` or `tasksPerElement` with `mem: 0`: each task asks for all of a node's memory, so tasks cannot share a worker; give `mem` per task to pack them",
    ]);
  }
  // "auto" with a node's whole memory per task: one task per element, as when packing cannot help.
  return ranks > 1 || parameters.mem === 0 ? { workers: undefined } : packing;
}

/** The partition's usable nodes (the default partition's without one; a comma list means any of them). */
export function partitionNodes(nodes: readonly NodeCpus[], partition: string | undefined): NodeCpus[] {
  const wanted = partition?.split(",").map((p) => p.trim());
  return nodes.filter((n) => n.usable !== false && (wanted ? n.partitions.some((p) => wanted.includes(p)) : n.inDefaultPartition));
}

/** One task's resources, as far as placing it goes. */
type TaskShape = Pick<SlurmParameters, "cpusPerTask" | "gres" | "gpusPerNode" | "mem" | "memPerCpu" | "sbatch" | "partition">;

/** Raw sbatch options that set a task's memory: a worker asks for its own `--mem` instead. */
export const RAW_MEMORY = ["mem", "mem-per-cpu", "mem-per-gpu"] as const;

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
  if (p.mem !== undefined) return p.mem === 0 ? undefined : p.mem; // 0: a node's whole memory, which cannot be counted here
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
export function tasksOnNode(n: NodeCpus, p: TaskShape, memMb: number | undefined, how: "alone" | "worker" | "largest" = "alone"): number {
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

/**
 * The most one task may ask for on these partitions (a comma list; the
 * default partition when undefined): the shortest MaxTime among them, and the
 * memory of their largest node; each undefined where the cluster does not say.
 */
export function requestCaps(partition: string | undefined, limits: ClusterLimits): { maxTimeSeconds: number | undefined; maxMemMb: number | undefined } {
  const listed = partition?.split(",").map((p) => p.trim()) ?? [DEFAULT_PARTITION];
  const times = listed.map((p) => limits.maxTimes?.get(p)).filter((t): t is number => t !== undefined);
  const memories = partitionNodes(limits.nodes, partition).flatMap((n) => (n.memoryMb === undefined ? [] : [n.memoryMb]));
  return { maxTimeSeconds: times.length ? Math.min(...times) : undefined, maxMemMb: memories.length ? Math.max(...memories) : undefined };
}
