import type { TaskRequest, UsageRecord } from "../protocol/records.js";

/** One task's GPUs, as nvidia-smi sampled them while it ran. */
export interface GpuUsage {
  /** The GPUs it had. */
  readonly count: number;
  /** Mean utilisation over its GPUs and samples (0–100): the share of time a kernel ran; undefined where not shown (MIG). */
  readonly utilPercent: number | undefined;
  /** The most memory each GPU held at a sample (MiB, by every process on it), added up over its GPUs; undefined where not shown. */
  readonly memPeakMb: number | undefined;
  readonly samples: number;
}

/** What Slurm's accounting (sacct) says an element used: a cross-check of the runner's own figures, for tasks with an element of their own. */
export interface AccountedUsage {
  /** Elapsed, seconds (whole seconds: the element's, setup steps included). */
  readonly elapsedSeconds: number;
  /** TotalCPU of the element's steps (the batch shell, setup steps and runner included), seconds. */
  readonly cpuSeconds: number;
  /** The largest MaxRSS of its steps, MiB, sampled at the cluster's JobAcctGatherFrequency; undefined when none was sampled. */
  readonly maxRssMb: number | undefined;
}

/**
 * What one task used, measured on its node while it ran (slurmkit's runner
 * or worker: no accounting needed), against what it asked for. A figure is
 * undefined where it is unknown.
 */
export interface TaskUsage {
  /** The node it ran on. */
  readonly node: string;
  /** The Slurm job that ran it: its element (`A_i`), or its worker (`A_w`) when packed. */
  readonly jobId: string;
  /** Packed: the worker's slot. */
  readonly slot: number | undefined;
  /** From its start to its end, in seconds. */
  readonly wallSeconds: number;
  /**
   * User and system CPU time of its processes, in seconds (10 ms steps). A
   * process counts once reaped by its parent; one left running after the
   * task, or adopted by init, does not.
   */
  readonly cpuSeconds: number | undefined;
  /** cpuSeconds over wallSeconds × the CPUs it asked for (0–1, or above where it used more than it asked). */
  readonly cpuEfficiency: number | undefined;
  /** The most its processes held at a sample, in MiB, as the node counts memory against `mem` (the runner that runs the task included). */
  readonly memPeakMb: number | undefined;
  /** How many memory samples were taken (every 500 ms). */
  readonly memSamples: number;
  /** Its GPUs, where it had some and nvidia-smi answered. */
  readonly gpu: GpuUsage | undefined;
  /** What one task asked for (the submission's parameters); undefined for folders written before slurmkit recorded it. */
  readonly requested: TaskRequest | undefined;
  /** One task per element, where Slurm's accounting is on: what sacct says the element used. Undefined for packed tasks (Slurm sees only their worker). */
  readonly accounting: AccountedUsage | undefined;
}

/** Where and when a task ran, as its result says. */
export interface RanAt {
  readonly host: string;
  readonly jobId: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** A task's usage from its result's place and times, its usage record (if any), its submission's request, and sacct's figures for its element. */
export function taskUsage(ran: RanAt, record: UsageRecord | undefined, requested: TaskRequest | undefined, accounting?: AccountedUsage): TaskUsage {
  const wallSeconds = Math.max(0, ran.endedAt - ran.startedAt) / 1000;
  const cpuSeconds = record ? record.cpuMs / 1000 : undefined;
  const cpus = requested?.cpus ?? 1;
  return {
    node: ran.host,
    jobId: ran.jobId,
    slot: record?.slot,
    wallSeconds,
    cpuSeconds,
    cpuEfficiency: cpuSeconds !== undefined && wallSeconds > 0 ? cpuSeconds / (wallSeconds * cpus) : undefined,
    memPeakMb: record?.memKb !== undefined ? record.memKb / 1024 : undefined,
    memSamples: record?.memSamples ?? 0,
    gpu: record?.gpu ? { count: record.gpu.count, utilPercent: record.gpu.utilPct, memPeakMb: record.gpu.memMb, samples: record.gpu.samples } : undefined,
    requested,
    accounting,
  };
}
