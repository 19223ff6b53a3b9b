import type { TaskRequest } from "../protocol/records.js";

/** What a submission's measured tasks used, against what they asked for and held. */
export interface UsageTotals {
  /** Tasks with figures (ended tasks that ran, measured by slurmkit 0.1 with manifest version 4 on). */
  readonly measured: number;
  /** Their CPU time, seconds. */
  readonly cpuSeconds: number;
  /** The CPU time they held: wall time × the CPUs each asked for, seconds. */
  readonly heldCpuSeconds: number;
  /** cpuSeconds / heldCpuSeconds (seff's CPU efficiency); undefined when nothing was held. */
  readonly cpuEfficiency: number | undefined;
  /** Their wall time, seconds, added up, and the longest. */
  readonly wallSeconds: number;
  readonly maxWallSeconds: number;
  /** The largest and the mean of their peak memory, MiB; undefined when none was sampled. */
  readonly memPeakMb: number | undefined;
  readonly memMeanPeakMb: number | undefined;
  /** What one task asked for, when the manifests say (the most, field by field, where reruns asked for more). */
  readonly requested: TaskRequest | undefined;
  /** The largest share of its own `mem` a task's peak reached (seff's memory efficiency); undefined when unknown. */
  readonly memEfficiency: number | undefined;
  /** GPU time they held: wall time × the GPUs each asked for, seconds. */
  readonly heldGpuSeconds: number;
}

/** The larger of two requests, field by field (a rerun may have asked for more). */
export function largerRequest(a: TaskRequest | undefined, b: TaskRequest | undefined): TaskRequest | undefined {
  if (!a || !b || a === b) return a ?? b;
  const max = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? (x ?? y) : Math.max(x, y));
  const memMb = max(a.memMb, b.memMb);
  const timeSeconds = max(a.timeSeconds, b.timeSeconds);
  const gpus = max(a.gpus, b.gpus);
  return {
    ...a,
    cpus: Math.max(a.cpus, b.cpus),
    ...(memMb !== undefined ? { memMb } : {}),
    ...(timeSeconds !== undefined ? { timeSeconds } : {}),
    ...(gpus !== undefined ? { gpus } : {}),
  };
}

/** Adds up tasks' figures for one submission, a task at a time (a million tasks make no object each). */
export class UsageCounter {
  #measured = 0;
  #cpuMs = 0;
  #heldCpuMs = 0;
  #heldGpuMs = 0;
  #wallMs = 0;
  #maxWallMs = 0;
  #memMaxKb = Number.NaN;
  #memSumKb = 0;
  #memCount = 0;
  #memShare = Number.NaN;

  constructor(public requested: TaskRequest | undefined) {}

  /** One task's wall ms, CPU ms and peak KiB (NaN when not sampled), and what it asked for when not the submission's (a rerun's). */
  add(wallMs: number, cpuMs: number, memKb: number, request: TaskRequest | undefined = this.requested): void {
    if (request !== this.requested) this.requested = largerRequest(this.requested, request);
    this.#measured++;
    this.#cpuMs += cpuMs;
    this.#wallMs += wallMs;
    this.#heldCpuMs += wallMs * (request?.cpus ?? 1);
    this.#heldGpuMs += wallMs * (request?.gpus ?? 0);
    if (wallMs > this.#maxWallMs) this.#maxWallMs = wallMs;
    if (!Number.isNaN(memKb)) {
      this.#memCount++;
      this.#memSumKb += memKb;
      if (!(memKb <= this.#memMaxKb)) this.#memMaxKb = memKb;
      const asked = request?.memMb;
      if (asked !== undefined && !(memKb / 1024 / asked <= this.#memShare)) this.#memShare = memKb / 1024 / asked;
    }
  }

  get measured(): number {
    return this.#measured;
  }

  totals(): UsageTotals {
    const held = this.#heldCpuMs / 1000;
    const memPeakMb = this.#memCount ? this.#memMaxKb / 1024 : undefined;
    return {
      measured: this.#measured,
      cpuSeconds: this.#cpuMs / 1000,
      heldCpuSeconds: held,
      cpuEfficiency: held > 0 ? this.#cpuMs / 1000 / held : undefined,
      wallSeconds: this.#wallMs / 1000,
      maxWallSeconds: this.#maxWallMs / 1000,
      memPeakMb,
      memMeanPeakMb: this.#memCount ? this.#memSumKb / this.#memCount / 1024 : undefined,
      requested: this.requested,
      memEfficiency: Number.isNaN(this.#memShare) ? undefined : this.#memShare,
      heldGpuSeconds: this.#heldGpuMs / 1000,
    };
  }
}
