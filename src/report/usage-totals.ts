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
  /** What one task asked for, when the manifest says. */
  readonly requested: TaskRequest | undefined;
  /** memPeakMb / the memory one task asked for (seff's memory efficiency); undefined when either is unknown. */
  readonly memEfficiency: number | undefined;
  /** GPU time they held: wall time × the GPUs each asked for, seconds. */
  readonly heldGpuSeconds: number;
}

/** Adds up tasks' figures for one submission, a task at a time (a million tasks make no object each). */
export class UsageCounter {
  #measured = 0;
  #cpuMs = 0;
  #wallMs = 0;
  #maxWallMs = 0;
  #memMaxKb = Number.NaN;
  #memSumKb = 0;
  #memCount = 0;

  constructor(readonly requested: TaskRequest | undefined) {}

  /** One task's wall ms, CPU ms and peak KiB (NaN when not sampled). */
  add(wallMs: number, cpuMs: number, memKb: number): void {
    this.#measured++;
    this.#cpuMs += cpuMs;
    this.#wallMs += wallMs;
    if (wallMs > this.#maxWallMs) this.#maxWallMs = wallMs;
    if (!Number.isNaN(memKb)) {
      this.#memCount++;
      this.#memSumKb += memKb;
      if (!(memKb <= this.#memMaxKb)) this.#memMaxKb = memKb;
    }
  }

  get measured(): number {
    return this.#measured;
  }

  totals(): UsageTotals {
    const cpus = this.requested?.cpus ?? 1;
    const held = (this.#wallMs / 1000) * cpus;
    const memPeakMb = this.#memCount ? this.#memMaxKb / 1024 : undefined;
    const asked = this.requested?.memMb;
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
      memEfficiency: memPeakMb !== undefined && asked !== undefined ? memPeakMb / asked : undefined,
      heldGpuSeconds: (this.#wallMs / 1000) * (this.requested?.gpus ?? 0),
    };
  }
}
