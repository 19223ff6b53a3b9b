import { isTerminal, type JobState } from "../base/job-state.js";
import { guidedBlocks } from "../protocol/blocks.js";
import { packr } from "../protocol/codec.js";
import { BLOCK_CLAIMS_VERSION, decodeRound, encodeManifest, type Manifest, type RoundFile, type SubmittedArray } from "../protocol/records.js";
import { roundNumbers, roundOffset, roundSbatchArgs } from "../protocol/rounds.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";
import { AmbiguousSubmissionError } from "../base/errors.js";
import { submissionTag } from "./plan.js";
import type { BatchScheduler } from "./batch.js";
import { lookUp, submitOnce } from "./submit-once.js";

/** How long past sbatch's own time limit a lost top-up answer is waited on before workers are submitted again. */
const LOST_ANSWER_MARGIN_MS = 30_000;

/** What the pool needs to submit more workers: sbatch (and squeue by tag), and the transport that writes the manifest. */
export interface PoolSubmitter {
  readonly scheduler: Pick<BatchScheduler, "submit" | "cancel" | "tagged" | "timeoutMs">;
  readonly transport: Pick<Transport, "writeFile" | "list" | "readFile" | "createExclusive" | "mkdir">;
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
  /** Progress counted when the last top-up was submitted (0 before any: the first workers must take something). */
  #progressAtTopUp = 0;
  /** sbatch failures of top-ups in a row. */
  #failures = 0;
  /** Tasks the client cancelled. */
  readonly #cancelled = new Set<number>();
  /** A top-up whose sbatch answer was lost and whose array was not found yet: its size, and when its sbatch was sent. */
  #uncertain: { readonly elements: number; readonly sentAt: number } | undefined;
  /** An array was taken in since the last top-up check: its state is not known yet, so no round is due. */
  #adopted = false;

  constructor(
    readonly folder: RunFolder,
    private manifest: Manifest & { jobId: string },
    private readonly submitter: PoolSubmitter,
  ) {
    this.arrays = [...(manifest.arrays ?? [])];
    this.blocks = manifest.version >= BLOCK_CLAIMS_VERSION ? guidedBlocks(manifest.taskCount, manifest.workers?.count ?? 1) : undefined;
  }

  /** The starts of the blocks its workers claim; undefined for a version 2 folder, whose workers claim one task at a time. */
  readonly blocks: Uint32Array | undefined;

  get slots(): number {
    return this.manifest.workers?.slots ?? 1;
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
   * than the tasks left), when the workers took tasks since the last round,
   * and also while more workers are on their way (an array just taken in, or
   * a lost sbatch answer still waited on). Otherwise more workers would end
   * the same way: "cancelled" when every worker that ended was cancelled
   * (scancel, or a dependency that failed), "stalled" when they took nothing,
   * or `Error` when sbatch failed three times in a row.
   */
  async topUp(unclaimed: number, progress: number, states: ReadonlyMap<string, JobState>): Promise<"submitted" | "cancelled" | "stalled" | Error> {
    if (this.#adopted) {
      this.#adopted = false; // the next poll asks squeue about the array taken in
      return "submitted";
    }
    const ended = [...states].filter(([key]) => this.arrays.some((a) => a.jobId === key.split("_")[0])).map(([, s]) => s);
    if (ended.length > 0 && ended.every((s) => s === "CANCELLED")) return "cancelled";
    // Version 2: the client's claims of cancelled tasks are no progress.
    const taken = this.blocks ? progress : progress - this.#cancelled.size;
    if (taken <= this.#progressAtTopUp) return "stalled";
    let outcome: "submitted" | "waiting";
    try {
      outcome = await this.#submit(unclaimed);
    } catch (error) {
      if (++this.#failures >= 3) return error as Error;
      throw error;
    }
    if (outcome === "waiting") return "submitted";
    this.#failures = 0;
    this.#progressAtTopUp = taken;
    return "submitted";
  }

  /**
   * Whether workers this pool does not know may still run: a tagged array
   * it did not know (a round a worker submitted, or a lost answer), now
   * taken in, or a round being submitted right now. Until their states are
   * known, nothing of what the known workers left may be handed back.
   */
  async moreWorkers(): Promise<boolean> {
    const tag = submissionTag(this.folder, "workers");
    const [unknown] = await lookUp(this.submitter.scheduler, tag, (jobId) => !this.arrays.some((a) => a.jobId === jobId));
    if (unknown !== undefined) {
      await this.#takeIn(unknown);
      return true;
    }
    const latest = (await this.#rounds()).at(-1);
    return latest !== undefined && latest.jobId === undefined && latest.refused === undefined && Date.now() - latest.at < this.submitter.scheduler.timeoutMs + LOST_ANSWER_MARGIN_MS;
  }

  /**
   * Submits one round of workers, never a second array for one lost sbatch
   * answer. Every round carries the tag `slurmkit:<folder>:workers`: a
   * tagged array this pool does not know is a round whose answer was lost
   * (here, or in a client that died) or that a worker submitted, and is
   * taken in instead. A round is elected by an exclusive create of
   * `rounds/<n>`, as workers elect theirs (rounds.ts): one that another
   * process is still submitting is waited for. After a lost answer with no
   * array found, nothing is submitted until that sbatch cannot be running
   * any more (its time limit, plus a margin): "waiting".
   */
  async #submit(unclaimed: number): Promise<"submitted" | "waiting"> {
    const { scheduler, transport } = this.submitter;
    const tag = submissionTag(this.folder, "workers");
    const isNew = (jobId: string) => !this.arrays.some((a) => a.jobId === jobId);
    const [lost] = await lookUp(scheduler, tag, isNew);
    if (lost !== undefined) {
      await this.#takeIn(lost);
      return "submitted";
    }
    if (this.#uncertain && Date.now() - this.#uncertain.sentAt < scheduler.timeoutMs + LOST_ANSWER_MARGIN_MS) return "waiting";
    const rounds = await this.#rounds();
    const latest = rounds.at(-1);
    // Another process (a worker whose time ran out) is submitting that round: its array shows up by its tag.
    if (latest && latest.jobId === undefined && latest.refused === undefined && Date.now() - latest.at < scheduler.timeoutMs + LOST_ANSWER_MARGIN_MS) return "waiting";
    const workers = this.manifest.workers;
    // After every round file there is, readable or not (one whose writer died before it wrote it is skipped).
    const round = Math.max(0, ...rounds.map((r) => r.round), ...rounds.unreadable) + 1;
    const count = workers?.count ?? 1;
    const record: RoundFile = { round, firstElement: roundOffset(round, count), elements: Math.min(unclaimed, count), by: "client", at: Date.now() };
    // A folder from before rounds (manifest version 2) has no rounds/.
    await transport.mkdir(this.folder.roundsDir);
    if (!(await transport.createExclusive(this.folder.round(round), packr.pack(record)))) return "waiting";
    const args = roundSbatchArgs(round, record.firstElement, record.elements, workers?.parallelism);
    let jobId: string;
    try {
      jobId = await submitOnce(scheduler, { path: this.folder.workersScript, tag, args }, isNew);
    } catch (error) {
      const ambiguous = error instanceof AmbiguousSubmissionError;
      await transport.writeFile(this.folder.round(round), packr.pack({ ...record, ...(ambiguous ? { lost: (error as Error).message } : { refused: (error as Error).message }) }));
      if (!ambiguous) throw error;
      this.#uncertain = { elements: record.elements, sentAt: record.at };
      return "waiting";
    }
    await transport.writeFile(this.folder.round(round), packr.pack({ ...record, jobId }));
    await this.#record({ jobId, firstElement: record.firstElement, elements: record.elements });
    return "submitted";
  }

  /** The rounds recorded in `rounds/`, in order, and the numbers of those that cannot be read (being created, or whose writer died first). */
  async #rounds(): Promise<RoundFile[] & { unreadable: number[] }> {
    const names = await this.submitter.transport.list(this.folder.roundsDir).catch(unlessUnreachable([] as string[]));
    const read = await Promise.all(
      roundNumbers(names).map(async (n) => ({
        n,
        round: await this.submitter.transport
          .readFile(this.folder.round(n))
          .then((b) => decodeRound(b, this.folder.round(n)))
          .catch(unlessUnreachable(undefined)),
      })),
    );
    const rounds = read.flatMap((r) => (r.round ? [r.round] : [])).sort((a, b) => a.round - b.round);
    return Object.assign(rounds, { unreadable: read.flatMap((r) => (r.round ? [] : [r.n])) });
  }

  /**
   * A worker of an array this pool does not know claimed a task: only this
   * submission's workers claim its tasks, so that array is a top-up whose
   * sbatch answer was lost, and the pool takes it in (its elements numbered
   * from the next free one, as its sbatch numbered them).
   */
  async adopt(jobId: string): Promise<void> {
    if (this.arrays.some((a) => a.jobId === jobId)) return;
    this.#adopted = true;
    await this.#takeIn(jobId);
  }

  /**
   * Records an array this pool did not submit, or whose answer was lost:
   * its round's numbers when a round file names it (or is the one whose
   * answer was lost); else the lost round's size if this process sent it,
   * else the largest a round can be (numbers skipped, never shared).
   */
  async #takeIn(jobId: string): Promise<void> {
    const rounds = await this.#rounds();
    const round = rounds.find((r) => r.jobId === jobId) ?? rounds.filter((r) => r.jobId === undefined && r.refused === undefined).at(-1);
    if (round) return this.#record({ jobId, firstElement: round.firstElement, elements: round.elements });
    await this.#record({ jobId, firstElement: this.#nextElement(), elements: this.#uncertain?.elements ?? this.manifest.workers?.count ?? 1 });
  }

  #nextElement(): number {
    const last = this.arrays.at(-1);
    return last ? last.firstElement + last.elements : 0;
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
