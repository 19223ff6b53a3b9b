// What to ask for next time, from what tasks used: the largest use plus
// headroom (a task over its time or memory is killed, so a percentile below
// the largest would fail that share of tasks), fewer CPUs where they idled,
// and seff-like warnings where little of a request was used. Pure.
import type { JobState } from "../base/job-state.js";
import type { TaskRequest } from "../protocol/records.js";

/** Time asked for is the longest task's wall time times this, and at least a minute more, in whole minutes. */
export const TIME_HEADROOM = 1.25;
/** Memory asked for is the largest peak times this, rounded up (32 MiB steps below 1 GiB, 256 MiB above). */
export const MEM_HEADROOM = 1.2;
/** CPUs asked for cover the 95th percentile of CPUs kept busy, rounded up past this much of a CPU (never more than were asked for): 0.95 busy needs 1, 1.2 needs 2. */
export const CPU_SLACK = 0.1;
/** A task that ran out of time or memory gets this many times what it had (`rerun --right-size`, and the suggestion). */
export const RIGHT_SIZE_FACTOR = 2;
/** Warn under these shares of a request used, as seff reports efficiency. */
export const LOW_CPU_EFFICIENCY = 0.5;
export const LOW_MEMORY_USE = 0.25;
export const LOW_TIME_USE = 0.25;
export const LOW_GPU_UTILISATION = 0.5;

/** One ended task's figures, as suggest reads them. */
export interface TaskFigures {
  readonly state: JobState;
  readonly wallSeconds: number;
  /** Undefined where it was not measured. */
  readonly cpuSeconds: number | undefined;
  readonly memPeakMb: number | undefined;
  /** GPU utilisation, 0–100, where sampled. */
  readonly gpuUtilPercent?: number | undefined;
}

/** The 50th, 95th and 100th percentiles of a figure over the tasks (nearest rank). */
export interface Spread {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

/** What to ask for, and why. */
export interface Suggestion {
  /** Tasks that ended, and those of them with figures. */
  readonly tasks: number;
  readonly measured: number;
  readonly outOfMemory: number;
  readonly timedOut: number;
  /** Wall time of tasks that completed (s), the CPUs they kept busy (CPU time / wall), and peak memory (MiB). */
  readonly wallSeconds: Spread | undefined;
  readonly busyCpus: Spread | undefined;
  readonly memPeakMb: Spread | undefined;
  readonly requested: TaskRequest | undefined;
  /** What to ask for; a field is absent when nothing says what it should be. */
  readonly timeSeconds: number | undefined;
  readonly memMb: number | undefined;
  readonly cpus: number | undefined;
  /** seff-like warnings, and what was done about ran-out tasks. */
  readonly notes: readonly string[];
  /** As `--slurm` pairs (`time=00:05:00 mem=256M cpus_per_task=1`). */
  readonly flags: readonly string[];
  /** As executor options (`{ time: "00:05:00", mem: "256M", cpusPerTask: 1 }`). */
  readonly options: { readonly time?: string; readonly mem?: string; readonly cpusPerTask?: number };
}

/** Limits a suggestion stays within, where the cluster says. */
export interface SuggestLimits {
  readonly maxTimeSeconds?: number | undefined;
  readonly maxMemMb?: number | undefined;
}

function spread(values: Float64Array): Spread | undefined {
  if (values.length === 0) return undefined;
  values.sort();
  const rank = (p: number) => values[Math.min(values.length - 1, Math.max(0, Math.ceil(p * values.length) - 1))]!;
  return { p50: rank(0.5), p95: rank(0.95), max: values[values.length - 1]! };
}

/** `HH:MM:SS`, as sbatch takes it. */
export function formatClock(seconds: number): string {
  const s = Math.ceil(seconds);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** Memory rounded up: 32 MiB steps below 1 GiB, 256 MiB steps above. */
export function roundMemMb(mb: number): number {
  const step = mb <= 1024 ? 32 : 256;
  return Math.max(step, Math.ceil(mb / step) * step);
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** What to ask for next time, from the figures of ended tasks and what one of them asked for. */
export function suggest(figures: Iterable<TaskFigures>, requested: TaskRequest | undefined, limits: SuggestLimits = {}): Suggestion {
  const walls: number[] = [];
  const busy: number[] = [];
  const peaks: number[] = [];
  const gpuUtil: number[] = [];
  let tasks = 0;
  let measured = 0;
  let cpuSum = 0;
  let heldSum = 0;
  let outOfMemory = 0;
  let timedOut = 0;
  for (const f of figures) {
    tasks++;
    if (f.state === "OUT_OF_MEMORY") outOfMemory++;
    if (f.state === "TIMEOUT") timedOut++;
    if (f.cpuSeconds === undefined) continue;
    measured++;
    if (f.state === "COMPLETED") walls.push(f.wallSeconds);
    if (f.wallSeconds > 0 && f.state === "COMPLETED") {
      busy.push(f.cpuSeconds / f.wallSeconds);
      cpuSum += f.cpuSeconds;
      heldSum += f.wallSeconds * (requested?.cpus ?? 1);
    }
    // An OUT_OF_MEMORY task's peak is where it was stopped, not what it needed.
    if (f.memPeakMb !== undefined && f.state !== "OUT_OF_MEMORY") peaks.push(f.memPeakMb);
    if (f.gpuUtilPercent !== undefined) gpuUtil.push(f.gpuUtilPercent);
  }
  const wall = spread(Float64Array.from(walls));
  const cpus = spread(Float64Array.from(busy));
  const mem = spread(Float64Array.from(peaks));
  const notes: string[] = [];

  let timeSeconds = wall ? Math.ceil(Math.max(wall.max * TIME_HEADROOM, wall.max + 60) / 60) * 60 : undefined;
  if (timedOut > 0 && requested?.timeSeconds !== undefined) {
    const doubled = requested.timeSeconds * RIGHT_SIZE_FACTOR;
    timeSeconds = Math.max(timeSeconds ?? 0, doubled);
    notes.push(`${timedOut} task${timedOut === 1 ? "" : "s"} ran out of time: time is at least ${RIGHT_SIZE_FACTOR}x the ${formatClock(requested.timeSeconds)} they had`);
  }
  if (timeSeconds !== undefined && limits.maxTimeSeconds !== undefined && timeSeconds > limits.maxTimeSeconds) {
    notes.push(`time is capped at the partition's MaxTime, ${formatClock(limits.maxTimeSeconds)}: tasks that need longer must checkpoint`);
    timeSeconds = limits.maxTimeSeconds;
  }

  let memMb = mem ? roundMemMb(mem.max * MEM_HEADROOM) : undefined;
  if (outOfMemory > 0 && requested?.memMb !== undefined) {
    memMb = Math.max(memMb ?? 0, roundMemMb(requested.memMb * RIGHT_SIZE_FACTOR));
    notes.push(`${outOfMemory} task${outOfMemory === 1 ? "" : "s"} ran out of memory: mem is at least ${RIGHT_SIZE_FACTOR}x the ${requested.memMb} MiB they had`);
  }
  if (memMb !== undefined && limits.maxMemMb !== undefined && memMb > limits.maxMemMb) {
    notes.push(`mem is capped at the largest node's memory, ${limits.maxMemMb} MiB`);
    memMb = limits.maxMemMb;
  }

  const asked = requested?.cpus ?? 1;
  const cpuCount = cpus ? Math.min(asked, Math.max(1, Math.ceil(cpus.p95 - CPU_SLACK))) : undefined;

  // seff's warnings, from the tasks that completed.
  if (cpus && heldSum > 0) {
    const efficiency = cpuSum / heldSum;
    if (efficiency < LOW_CPU_EFFICIENCY) {
      notes.push(
        `CPU efficiency ${pct(efficiency)} (CPU time over wall time × CPUs; under ${pct(LOW_CPU_EFFICIENCY)}): a task kept ${cpus.p50.toFixed(2)} of its ${asked} CPU${asked === 1 ? "" : "s"} busy (median)`,
      );
    }
  }
  if (mem && requested?.memMb !== undefined && mem.max / requested.memMb < LOW_MEMORY_USE) {
    notes.push(`memory: the largest peak, ${Math.round(mem.max)} MiB, is ${pct(mem.max / requested.memMb)} of mem (${requested.memMb} MiB; under ${pct(LOW_MEMORY_USE)})`);
  }
  if (wall && requested?.timeSeconds !== undefined && wall.max / requested.timeSeconds < LOW_TIME_USE) {
    notes.push(
      `time: the longest task took ${pct(wall.max / requested.timeSeconds)} of its ${formatClock(requested.timeSeconds)} (under ${pct(LOW_TIME_USE)}); shorter jobs start sooner through backfill`,
    );
  }
  if (gpuUtil.length) {
    const mean = gpuUtil.reduce((a, b) => a + b, 0) / gpuUtil.length / 100;
    if (mean < LOW_GPU_UTILISATION) notes.push(`GPU utilisation ${pct(mean)} on average (under ${pct(LOW_GPU_UTILISATION)}): the GPUs waited on the CPUs or on data`);
  }
  if (measured === 0 && tasks > 0) notes.push("no task was measured (they ran before slurmkit recorded usage, or never started): nothing to suggest");

  const time = timeSeconds === undefined ? undefined : formatClock(timeSeconds);
  const memText = memMb === undefined ? undefined : `${memMb}M`;
  const flags = [...(time ? [`time=${time}`] : []), ...(memText ? [`mem=${memText}`] : []), ...(cpuCount !== undefined ? [`cpus_per_task=${cpuCount}`] : [])];
  return {
    tasks,
    measured,
    outOfMemory,
    timedOut,
    wallSeconds: wall,
    busyCpus: cpus,
    memPeakMb: mem,
    requested,
    timeSeconds,
    memMb,
    cpus: cpuCount,
    notes,
    flags,
    options: { ...(time ? { time } : {}), ...(memText ? { mem: memText } : {}), ...(cpuCount !== undefined ? { cpusPerTask: cpuCount } : {}) },
  };
}

/** What `rerun --right-size` changes for one task that ran out of time or memory, and what it says about it. */
export interface RightSized {
  readonly parameters: { readonly mem?: string; readonly time?: string };
  readonly note: string;
}

/**
 * A task that ended OUT_OF_MEMORY gets RIGHT_SIZE_FACTOR times its `mem`, one
 * that ended TIMEOUT that many times its `time`, each capped by the
 * partition; undefined for any other state. Throws (a message) when the
 * request does not say what the task had, or it had the cap already.
 */
export function rightSize(state: JobState, requested: TaskRequest | undefined, caps: SuggestLimits): RightSized | undefined {
  if (state === "OUT_OF_MEMORY") {
    if (requested?.memMb === undefined)
      throw new Error("its submission does not record the memory its tasks had (made before slurmkit 0.1 recorded it, or no mem and no cluster default): pass --slurm mem=...");
    const wanted = roundMemMb(requested.memMb * RIGHT_SIZE_FACTOR);
    const memMb = caps.maxMemMb !== undefined ? Math.min(wanted, caps.maxMemMb) : wanted;
    if (memMb <= requested.memMb) throw new Error(`its tasks had ${requested.memMb} MiB, already the most a node of the partition has (${caps.maxMemMb} MiB)`);
    return { parameters: { mem: `${memMb}M` }, note: `mem ${requested.memMb} MiB -> ${memMb} MiB${memMb < wanted ? " (the largest node's)" : ""}` };
  }
  if (state === "TIMEOUT") {
    if (requested?.timeSeconds === undefined) throw new Error("its submission does not record the time its tasks had: pass --slurm time=...");
    const wanted = requested.timeSeconds * RIGHT_SIZE_FACTOR;
    const seconds = caps.maxTimeSeconds !== undefined ? Math.min(wanted, caps.maxTimeSeconds) : wanted;
    if (seconds <= requested.timeSeconds) throw new Error(`its tasks had ${formatClock(requested.timeSeconds)}, already the partition's MaxTime: checkpoint them instead`);
    return { parameters: { time: formatClock(seconds) }, note: `time ${formatClock(requested.timeSeconds)} -> ${formatClock(seconds)}${seconds < wanted ? " (the partition's MaxTime)" : ""}` };
  }
  return undefined;
}
