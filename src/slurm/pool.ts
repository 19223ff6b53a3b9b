import { isTerminal, type JobState } from "../api/job-state.js";
import { encodeManifest, type Manifest, type SubmittedArray } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { Transport } from "../transport/transport.js";
import type { Scheduler } from "./scheduler.js";

/** What the pool needs to submit more workers: sbatch, and the transport that writes the manifest. */
export interface PoolSubmitter {
  readonly scheduler: Pick<Scheduler, "submit" | "cancel">;
  readonly transport: Pick<Transport, "writeFile">;
}

/**
 * The workers of one packed submission: the array jobs whose elements claim
 * its tasks. When every worker has ended and tasks are still unclaimed (the
 * workers ran out of walltime, or died), the pool submits more workers, as
 * long as the last round made progress.
 */
export class WorkerPool {
  /** The array jobs of workers, first the submitted ones, then each top-up. */
  readonly arrays: SubmittedArray[];
  /** Claims by workers counted when the last top-up was submitted (0 before any: the first workers must take something). */
  #claimsAtTopUp = 0;
  /** sbatch failures of top-ups in a row. */
  #failures = 0;
  /** Tasks the client cancelled. */
  readonly #cancelled = new Set<number>();

  constructor(
    readonly folder: RunFolder,
    private manifest: Manifest & { jobId: string },
    private readonly submitter: PoolSubmitter,
  ) {
    this.arrays = [...(manifest.arrays ?? [])];
  }

  get taskCount(): number {
    return this.manifest.taskCount;
  }

  /** The job ids squeue and sacct know the workers by. */
  get jobIds(): string[] {
    return this.arrays.map((a) => a.jobId);
  }

  /** The worker element `A_w` as an array entry, for its exit-marker number; undefined for an id not in this pool. */
  element(workerId: string): number | undefined {
    const [jobId, index] = workerId.split("_");
    const array = this.arrays.find((a) => a.jobId === jobId);
    return array && index !== undefined ? array.firstElement + Number(index) : undefined;
  }

  /** Whether any worker is pending or running, by the states squeue gave (keys `A_w`, or `A` for a whole array). */
  alive(states: ReadonlyMap<string, JobState>): boolean {
    for (const [key, state] of states) {
      const jobId = key.split("_")[0]!;
      if (this.arrays.some((a) => a.jobId === jobId) && !isTerminal(state) && state !== "UNKNOWN") return true;
    }
    return false;
  }

  /**
   * Every worker has ended with `unclaimed` tasks left. Returns "submitted"
   * after submitting as many more workers as there were at first (no more
   * than the tasks left), when the workers took tasks since the last round.
   * Otherwise more workers would end the same way: "cancelled" when every
   * worker that ended was cancelled (scancel, or a dependency that failed),
   * "stalled" when they took nothing, or `Error` when sbatch failed three
   * times in a row.
   */
  async topUp(unclaimed: number, claims: number, states: ReadonlyMap<string, JobState>): Promise<"submitted" | "cancelled" | "stalled" | Error> {
    const ended = [...states].filter(([key]) => this.arrays.some((a) => a.jobId === key.split("_")[0])).map(([, s]) => s);
    if (ended.length > 0 && ended.every((s) => s === "CANCELLED")) return "cancelled";
    const taken = claims - this.#cancelled.size;
    if (taken <= this.#claimsAtTopUp) return "stalled";
    try {
      await this.#submit(unclaimed);
    } catch (error) {
      if (++this.#failures >= 3) return error as Error;
      throw error;
    }
    this.#failures = 0;
    this.#claimsAtTopUp = taken;
    return "submitted";
  }

  async #submit(unclaimed: number): Promise<void> {
    const workers = this.manifest.workers;
    const count = Math.min(unclaimed, workers?.count ?? 1);
    const limit = workers?.parallelism !== undefined ? `%${workers.parallelism}` : "";
    const last = this.arrays.at(-1);
    const firstElement = last ? last.firstElement + last.elements : 0;
    const jobId = await this.submitter.scheduler.submit(this.folder.workersScript, [`--array=0-${count - 1}${limit}`, `--export=ALL,SLURMKIT_ELEMENT_OFFSET=${firstElement}`]);
    this.arrays.push({ jobId, firstElement, elements: count });
    this.manifest = { ...this.manifest, arrays: [...this.arrays] };
    await this.submitter.transport.writeFile(this.folder.manifest, encodeManifest(this.manifest));
  }

  /** Records a cancelled task; true when every task of the submission is now cancelled. */
  cancelled(index: number): boolean {
    this.#cancelled.add(index);
    return this.#cancelled.size === this.manifest.taskCount;
  }

  /** Cancels every worker array. */
  async cancelWorkers(): Promise<void> {
    await Promise.all(this.jobIds.map((id) => this.submitter.scheduler.cancel(id)));
  }
}
