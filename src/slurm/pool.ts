import { isTerminal, type JobState } from "../api/job-state.js";
import { encodeManifest, type Manifest, type SubmittedArray } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { Transport } from "../transport/transport.js";
import { AmbiguousSubmissionError } from "../errors.js";
import { submissionTag } from "./plan.js";
import type { Scheduler } from "./scheduler.js";
import { lookUp, submitOnce } from "./submit-once.js";

/** What the pool needs to submit more workers: sbatch (and squeue by tag), and the transport that writes the manifest. */
export interface PoolSubmitter {
  readonly scheduler: Pick<Scheduler, "submit" | "cancel" | "tagged">;
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
  /** A top-up whose sbatch answer was lost and whose job was not found: looked for again before anything is submitted. */
  #uncertain: Omit<SubmittedArray, "jobId"> | undefined;
  /** An array was adopted after the last squeue: it has no state yet. */
  #adoptedUnpolled = false;

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

  /**
   * Whether any worker is pending or running, by the states squeue gave (keys
   * `A_w`, or `A` for a whole array). An array adopted since those states
   * were asked for counts as alive until a poll has asked about it.
   */
  alive(states: ReadonlyMap<string, JobState>): boolean {
    if (this.#adoptedUnpolled) {
      this.#adoptedUnpolled = false;
      return true;
    }
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

  /**
   * Submits one round of workers. Every top-up carries the tag
   * `slurmkit:<folder>:workers`; one whose answer was lost is looked for among
   * the tagged arrays this pool does not know, now and again before the next
   * round, so a lost answer never leads to a second array.
   */
  async #submit(unclaimed: number): Promise<void> {
    const tag = submissionTag(this.folder, "workers");
    const isNew = (jobId: string) => !this.arrays.some((a) => a.jobId === jobId);
    if (this.#uncertain) {
      const [found] = await lookUp(this.submitter.scheduler, tag, isNew);
      if (found !== undefined) return this.#record({ jobId: found, ...this.#uncertain });
    }
    const workers = this.manifest.workers;
    const elements = Math.min(unclaimed, workers?.count ?? 1);
    const limit = workers?.parallelism !== undefined ? `%${workers.parallelism}` : "";
    const last = this.arrays.at(-1);
    const firstElement = last ? last.firstElement + last.elements : 0;
    const args = [`--array=0-${elements - 1}${limit}`, `--export=ALL,SLURMKIT_ELEMENT_OFFSET=${firstElement}`];
    let jobId: string;
    try {
      jobId = await submitOnce(this.submitter.scheduler, { path: this.folder.workersScript, tag, args }, isNew);
    } catch (error) {
      if (error instanceof AmbiguousSubmissionError) this.#uncertain = { firstElement, elements };
      throw error;
    }
    await this.#record({ jobId, firstElement, elements });
  }

  /**
   * A worker of an array this pool does not know claimed a task: while a
   * top-up is uncertain (its sbatch answer was lost), that array is the
   * top-up, and the pool takes it in. Any other unknown array is left alone.
   */
  async adopt(jobId: string): Promise<void> {
    if (!this.#uncertain || this.arrays.some((a) => a.jobId === jobId)) return;
    this.#adoptedUnpolled = true;
    await this.#record({ jobId, ...this.#uncertain });
  }

  async #record(array: SubmittedArray): Promise<void> {
    this.#uncertain = undefined;
    this.arrays.push(array);
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
