import { failedResult } from "../protocol/results.js";
import { ParameterError } from "../base/errors.js";
import { folderOf, Job, newJob, type JobBackend } from "../core/job.js";
import { setOrigin } from "../engine/origin.js";
import { hostname } from "node:os";
import { packr } from "../protocol/codec.js";
import { blockClaimName, blockOf } from "../protocol/blocks.js";
import {
  decodeAttempt,
  decodeManifest,
  decodeResult,
  type AfterFile,
  type AttemptFile,
  type ClaimFile,
  type Manifest,
  type ResultFile,
  type TaskRequest,
  type UsageRecord,
} from "../protocol/records.js";
import { taskRecords } from "../engine/task-records.js";
import { posix } from "node:path";
import { RunFolder } from "../protocol/run-folder.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";
import type { SacctUsage } from "./parse.js";
import { WorkerPool } from "./pool.js";
import type { Watcher } from "../engine/watcher.js";
import { readTaskLog } from "../engine/task-logs.js";
import type { BatchScheduler } from "./batch.js";

/** Where a Slurm job future sits in Slurm: its submission's id, its array index, the submission's size, its ranks, and the workers that claim it when packed. */
interface Placement {
  readonly jobId: string;
  readonly index: number | undefined;
  readonly size: number;
  readonly ranks: number;
  readonly pool?: WorkerPool | undefined;
}

/** Every Slurm future's placement, written once when the future is made (the one table of facts the backend keeps about a job). */
const placements = new WeakMap<Job<unknown>, Placement>();
/** The one placement of a packed submission's futures, by the folder they share. */
const poolPlacements = new WeakMap<RunFolder, Placement>();

/** Where a job runs; undefined for futures not made by this backend. */
function placementOf(job: Job<unknown>): Placement | undefined {
  const folder = folderOf(job);
  return placements.get(job) ?? (folder ? poolPlacements.get(folder) : undefined);
}

/**
 * The `afterok` dependency on `jobs`: a whole array as `A` when every one of
 * its futures is listed, else each element as `A_i`. Packed tasks (workers)
 * have no element of their own that Slurm could judge them by: for them it
 * throws a ParameterError that points to the `after` option, which checks
 * each task on the node.
 *
 * @example
 * afterOk(jobs) // "afterok:1234" when jobs are all of array 1234
 */
export function afterOk(jobs: readonly Job<unknown>[]): string {
  const { dependency, afterFile } = slurmDependency(jobs);
  if (afterFile) {
    const packed = afterFile.deps.flatMap((d) => d.indices).sort((a, b) => a - b);
    throw new ParameterError("afterOk", [
      `Expected job futures with an array element of their own; task${packed.length > 1 ? "s" : ""} ${packed.join(", ")} ${packed.length > 1 ? "are" : "is"} packed in workers, which end COMPLETED whatever their tasks did, so no Slurm dependency can wait for ${packed.length > 1 ? "them" : "it"} to succeed. Pass them as the \`after\` option of submit() or mapArray() instead: it checks each task before the dependent runs`,
    ]);
  }
  return dependency;
}

/** Slurm's dependency on `jobs`, and the after file for those that are packed tasks. */
function slurmDependency(
  jobs: readonly Job<unknown>[],
  wholeArray: (jobId: string) => string = (id) => id,
  covered: ReadonlySet<string> = new Set(),
): { dependency: string; afterFile: AfterFile | undefined } {
  if (!Array.isArray(jobs) || jobs.length === 0) {
    throw new ParameterError("submit options", [`Expected \`after\` to be a non-empty array of job futures, got \`${String(jobs)}\``]);
  }
  const problems: string[] = [];
  const byJob = new Map<string, { size: number; indices: Set<number> | undefined }>();
  const byPool = new Map<WorkerPool, number[]>();
  for (const [i, job] of jobs.entries()) {
    const id = placementOf(job);
    if (!id) {
      problems.push(`Expected \`after[${i}]\` to be a job future from SlurmExecutor or loadJobs, got \`${String((job as { id?: unknown } | null)?.id ?? job)}\``);
      continue;
    }
    if (id.pool) {
      byPool.set(id.pool, [...(byPool.get(id.pool) ?? []), job.taskIndex]);
      continue;
    }
    const entry = byJob.get(id.jobId) ?? { size: id.size, indices: id.index === undefined ? undefined : new Set<number>() };
    if (id.index !== undefined) entry.indices?.add(id.index);
    byJob.set(id.jobId, entry);
  }
  if (problems.length) throw new ParameterError("submit options", problems);
  const ids = [...byJob].flatMap(([jobId, { size, indices }]) =>
    indices === undefined ? [jobId] : indices.size === size || covered.has(jobId) ? [wholeArray(jobId)] : [...indices].sort((a, b) => a - b).map((i) => `${jobId}_${i}`),
  );
  // Packed tasks: after their workers end, however their siblings did; the node then checks these exact tasks.
  const workers = [...byPool.keys()].flatMap((pool) => pool.jobIds.map(wholeArray));
  const dependency = [...(ids.length ? [`afterok:${ids.join(":")}`] : []), ...(workers.length ? [`afterany:${workers.join(":")}`] : [])].join(",");
  const afterFile = byPool.size ? { deps: [...byPool].map(([pool, indices]) => ({ dir: pool.folder.dir, jobId: pool.jobIds[0]!, indices })) } : undefined;
  return { dependency, afterFile };
}

/** How a scheduler names what it waits for: a whole array (Slurm: its id; PBS: `id[]`), and whether it can wait for single elements (PBS cannot). */
export interface DependencyWords {
  readonly wholeArray: (jobId: string) => string;
  readonly elements: boolean;
}

/**
 * The dependency for `after`: undefined when every job already completed.
 * A job that already failed is an error now, as its dependents could never run.
 * Where the scheduler cannot wait for single elements, an array is waited
 * for whole when `after` names every one of its tasks (those done included),
 * and naming only some of them is a ParameterError.
 */
export function dependencyOf(after: readonly Job<unknown>[] | undefined, words?: DependencyWords): { dependency: string; afterFile: AfterFile | undefined } | undefined {
  if (after === undefined) return undefined;
  if (!Array.isArray(after) || after.some((j) => !(j instanceof Job))) {
    throw new ParameterError("submit options", [`Expected \`after\` to be an array of job futures, got \`${String(after)}\``]);
  }
  const ended = after.find((j) => j.done() && j.state !== "COMPLETED");
  if (ended) throw new ParameterError("submit options", [`Job ${ended.id} in \`after\` already ended ${ended.state}, so these tasks could never start`]);
  const waiting = after.filter((j) => !j.done());
  if (waiting.length === 0) return undefined;
  const covered = new Set<string>();
  if (words && !words.elements) {
    const named = new Map<string, { size: number; indices: Set<number> }>();
    for (const job of after) {
      const p = placementOf(job);
      if (!p || p.pool || p.index === undefined) continue;
      const entry = named.get(p.jobId) ?? { size: p.size, indices: new Set<number>() };
      entry.indices.add(p.index);
      named.set(p.jobId, entry);
    }
    const partial: string[] = [];
    for (const job of waiting) {
      const p = placementOf(job);
      const entry = p && !p.pool && p.index !== undefined ? named.get(p.jobId) : undefined;
      if (!entry) continue;
      if (entry.indices.size === entry.size) covered.add(p!.jobId);
      else if (!partial.includes(p!.jobId)) partial.push(p!.jobId);
    }
    if (partial.length) {
      throw new ParameterError("submit options", [
        `Expected \`after\` to name every task of array ${partial.join(", ")}, or none: PBS cannot make a job wait for single subjobs of an array. Pass all of the array's futures, or wait for these ones before submitting`,
      ]);
    }
  }
  return slurmDependency(waiting, words?.wholeArray, covered);
}

/** How long results() waits for a rank's result after rank 0's: ranks end about together, and each renames its own file. */
const RANK_WAIT_MS = 30_000;

/** How long job.usage() waits for sacct to list an element that ended. */
const ACCOUNTING_WAIT_MS = 5_000;

/** The JobBackend of Slurm jobs: the shared watcher, scancel, and log reads. */
export class SlurmBackend implements JobBackend {
  constructor(
    readonly watcher: Watcher<object>,
    readonly scheduler: BatchScheduler,
    readonly transport: Transport,
    /** The scheduler's manifest kind, for the futures' origin. */
    readonly kind = "slurm",
  ) {}
  acquire(): void {
    this.watcher.acquire();
  }
  release(): void {
    this.watcher.release();
  }
  async cancel(job: Job<unknown>): Promise<void> {
    if (job.done()) return;
    const pool = placementOf(job)?.pool;
    if (pool) await this.#cancelPooled(job, pool);
    else {
      await this.scheduler.cancel(job.id);
      await this.#recordCancel(job);
    }
    this.watcher.markCancelled(job);
  }

  /**
   * After scancel of a task that had not started, a CANCELLED result unless
   * one is there (exclusive create): Slurm drops a cancelled pending element
   * from squeue at once and sacct may never list it, so another process
   * watching the same task (a script, while `slurmkit cancel` ran) could not
   * tell it apart from a job that vanished.
   */
  async #recordCancel(job: Job<unknown>): Promise<void> {
    // A task Slurm runs, or whose runner started, ends as Slurm shows once its runner stopped: only a pending one needs the record.
    if (job.state !== "PENDING") return;
    const started = await this.transport.readFile(job.paths.state).then(() => true, unlessUnreachable(false));
    if (started) return;
    const at = Date.now();
    const message = `Task ${job.taskIndex} was cancelled`;
    const result = failedResult({ name: "TaskCancelled", message }, { host: "", jobId: job.id, startedAt: at, endedAt: at }, "CANCELLED");
    await this.transport.createExclusive(job.paths.result, packr.pack(result)).catch(unlessUnreachable(false));
  }

  /**
   * Cancels one task of a packed submission and nothing else: a task whose
   * block no worker claimed yet gets its CANCELLED result here, and the
   * worker that claims the block skips it; a claimed one gets a cancel
   * request, and its worker skips it or stops it (SIGTERM, then SIGKILL).
   * Cancelling every task cancels the workers.
   */
  async #cancelPooled(job: Job<unknown>, pool: WorkerPool): Promise<void> {
    const i = job.taskIndex;
    const at = Date.now();
    let unclaimed: boolean;
    if (pool.blocks) {
      // The cancel first, then the look for its block's claim: a worker lists cancels/ after it claims a block, so if no
      // claim is seen here, whoever claims the block later sees the cancel and never starts the task (ARCHITECTURE.md).
      await this.transport.writeFile(pool.folder.cancel(i), "");
      unclaimed = !(await this.transport.list(pool.folder.claimsDir)).includes(blockClaimName(blockOf(pool.blocks, i)));
    } else {
      unclaimed = await this.transport.createExclusive(pool.folder.claim(i), packr.pack({ worker: "client", slot: 0, host: hostname(), at } satisfies ClaimFile));
    }
    if (unclaimed) {
      const message = `Task ${i} was cancelled before it started`;
      const result = failedResult({ name: "TaskCancelled", message }, { host: hostname(), jobId: job.id, startedAt: at, endedAt: at }, "CANCELLED");
      await this.transport.writeFile(job.paths.result, packr.pack(result));
    } else if (!pool.blocks) {
      await this.transport.writeFile(pool.folder.cancel(i), "");
    }
    if (pool.cancelled(i)) await pool.cancelWorkers();
  }
  /** The task's attempt records (`attempts/<index>.<n>`), in order. */
  async readAttempts(job: Job<unknown>): Promise<AttemptFile[]> {
    const dir = job.paths.attemptsDir;
    const names = await this.transport.list(dir);
    const mine = names.flatMap((name) => {
      const parsed = RunFolder.parseAttemptName(name);
      return parsed?.index === job.taskIndex ? [{ name, attempt: parsed.attempt }] : [];
    });
    mine.sort((a, b) => a.attempt - b.attempt);
    return Promise.all(mine.map(async ({ name }) => decodeAttempt(await this.transport.readFile(posix.join(dir, name)), posix.join(dir, name))));
  }
  async readRankResults(job: Job<unknown>): Promise<Array<ResultFile | undefined>> {
    const ranks = placementOf(job)?.ranks ?? 1;
    const dir = posix.dirname(job.paths.result);
    const deadline = Date.now() + RANK_WAIT_MS;
    const read = async (rank: number): Promise<ResultFile | undefined> => {
      const path = posix.join(dir, RunFolder.resultName(job.taskIndex, rank));
      for (;;) {
        const bytes = await this.transport.readFile(path).catch(unlessUnreachable(undefined));
        if (bytes) return decodeResult(bytes, path);
        if (Date.now() > deadline) return undefined;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };
    return Promise.all(Array.from({ length: ranks - 1 }, (_, k) => read(k + 1)));
  }
  /** A packed task's usage, from its worker's stream (in its result's record); undefined for folders from before usage was recorded. */
  async readUsage(job: Job<unknown>): Promise<UsageRecord | undefined> {
    const pool = placementOf(job)?.pool;
    if (!pool || (await this.readRequest(job)) === undefined) return undefined;
    const records = taskRecords(this.transport, pool.folder);
    if (!records.hasUsage(job.taskIndex)) await records.refresh();
    return records.usage(job.taskIndex);
  }

  readonly #requests = new WeakMap<RunFolder, Promise<TaskRequest | undefined>>();
  /** sacct's figures by array (or job) id, and when they were read: one call serves every element of an array. */
  readonly #accounted = new Map<string, { at: number; usage: Promise<Map<string, SacctUsage> | undefined> }>();

  /**
   * What sacct says the element of a task with one of its own used. One call
   * serves a whole array; an element it did not list yet (slurmdbd records a
   * job a moment after it ends) is asked for again, at most every second, for
   * up to ACCOUNTING_WAIT_MS. Undefined without accounting.
   */
  async readAccounting(job: Job<unknown>): Promise<SacctUsage | undefined> {
    const placement = placementOf(job);
    if (!placement || placement.pool) return undefined;
    const { jobId } = placement;
    const until = Date.now() + ACCOUNTING_WAIT_MS;
    for (;;) {
      let cached = this.#accounted.get(jobId);
      if (!cached || (Date.now() - cached.at >= 1000 && !(await cached.usage)?.has(job.id))) {
        cached = { at: Date.now(), usage: this.scheduler.usage([jobId]) };
        this.#accounted.set(jobId, cached);
      }
      const usage = await cached.usage;
      const found = usage?.get(job.id);
      if (found || usage === undefined || Date.now() >= until) return found;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  /** What one task of the job's submission asked for, from its manifest (read once per submission). */
  readRequest(job: Job<unknown>): Promise<TaskRequest | undefined> {
    const folder = folderOf(job);
    if (!folder) return Promise.resolve(undefined);
    let request = this.#requests.get(folder);
    if (!request) {
      request = this.transport.readFile(folder.manifest).then((bytes) => decodeManifest(String(bytes), folder.manifest).request);
      this.#requests.set(folder, request);
    }
    return request;
  }

  readText(path: string): Promise<string> {
    return this.#readBytes(path).then(String);
  }

  /** A packed task's log from its worker's log streams (a version 1 folder's: its own file); any other task's, its file. */
  async readLog(job: Job<unknown>, which: "out" | "err"): Promise<Buffer> {
    const path = which === "out" ? job.paths.stdout : job.paths.stderr;
    const pool = placementOf(job)?.pool;
    if (!pool) return this.#readBytes(path);
    // Its id is its worker's (A_w) once a worker took it: then only that worker's streams are read.
    const worker = /^\d+_\d+$/.test(job.id) ? job.id : undefined;
    const streamed = await readTaskLog(this.transport, pool.folder, job.taskIndex, which, worker);
    return streamed.length > 0 ? streamed : this.#readBytes(path);
  }

  #readBytes(path: string): Promise<Buffer> {
    return this.transport.readFile(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || /no such file/i.test(e.message)) return Buffer.alloc(0);
      throw e;
    });
  }
}

/** Makes the futures of a submitted Slurm submission from its manifest, and tracks them; a packed one's tasks that are `settled` get none (SchedulerReload.jobs). */
export function slurmJobs(backend: SlurmBackend, folder: RunFolder, manifest: Manifest & { jobId: string }, settled?: (index: number) => boolean): Job<unknown>[] {
  const jobs = manifest.workers ? pooledJobs(backend, folder, manifest, settled) : arrayJobs(backend, folder, manifest);
  const { rerun } = manifest;
  const source = {
    kind: backend.kind,
    folder,
    transport: backend.transport,
    request: manifest.request,
    ...(rerun ? { rerun: { dir: posix.join(posix.dirname(folder.dir), rerun.of), tasks: rerun.tasks } } : {}),
  };
  setOrigin(source);
  return jobs;
}

/** The futures of a submission with one task per element, or several packed per element. */
function arrayJobs(backend: SlurmBackend, folder: RunFolder, manifest: Manifest & { jobId: string }): Job<unknown>[] {
  const perElement = manifest.tasksPerElement ?? 1;
  const arrays = manifest.arrays ?? (manifest.array ? [{ jobId: manifest.jobId, firstElement: 0, elements: manifest.taskCount }] : undefined);
  const packed = manifest.arrays !== undefined;
  let j = 0;
  return Array.from({ length: manifest.taskCount }, (_, i) => {
    const element = Math.floor(i / perElement);
    let schedulerId = manifest.jobId;
    let arrayIndex: number | undefined;
    let size = 1;
    if (arrays) {
      while (element >= arrays[j]!.firstElement + arrays[j]!.elements) j++;
      const a = arrays[j]!;
      schedulerId = a.jobId;
      arrayIndex = element - a.firstElement;
      size = a.elements;
    }
    const id = arrayIndex === undefined ? schedulerId : `${schedulerId}_${arrayIndex}`;
    const job = newJob(backend, id, i, folder);
    placements.set(job, { jobId: schedulerId, index: arrayIndex, size, ranks: manifest.ranks });
    backend.watcher.track(job, folder, schedulerId, arrayIndex, {
      ...(manifest.exitMarkers ? { exitElement: element } : {}),
      ...(packed && arrayIndex !== undefined ? { elementStderr: folder.elementLog(schedulerId, arrayIndex, "err") } : {}),
    });
    return job;
  });
}

/** The futures of a packed submission (but those of `settled` tasks): each follows whichever worker claims its task. */
function pooledJobs(backend: SlurmBackend, folder: RunFolder, manifest: Manifest & { jobId: string }, settled?: (index: number) => boolean): Job<unknown>[] {
  const pool = new WorkerPool(folder, manifest, backend);
  const placement: Placement = { jobId: manifest.jobId, index: undefined, size: 1, ranks: manifest.ranks, pool };
  poolPlacements.set(folder, placement);
  let jobs: Job<unknown>[];
  if (settled) {
    jobs = [];
    for (let i = 0; i < manifest.taskCount; i++) if (!settled(i)) jobs.push(newJob(backend, manifest.jobId, i, folder));
  } else jobs = Array.from({ length: manifest.taskCount }, (_, i) => newJob(backend, manifest.jobId, i, folder));
  backend.watcher.trackPool(jobs, pool, manifest.exitMarkers ?? false);
  return jobs;
}
