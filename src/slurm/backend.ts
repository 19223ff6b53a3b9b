import { ParameterError } from "../errors.js";
import { Job, newJob, type JobBackend } from "../api/job.js";
import type { Manifest } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import type { Transport } from "../transport/transport.js";
import type { Scheduler } from "./scheduler.js";
import type { Watcher } from "./watcher.js";

/** Where each Slurm job future sits in Slurm: its submission's id, its array index, and the submission's size. */
const slurmIds = new WeakMap<Job<unknown>, { readonly jobId: string; readonly index: number | undefined; readonly size: number }>();

/**
 * The `afterok` dependency on `jobs`: a whole array as `A` when every one of
 * its futures is listed, else each element as `A_i`.
 *
 * @example
 * afterOk(jobs) // "afterok:1234" when jobs are all of array 1234
 */
export function afterOk(jobs: readonly Job<unknown>[]): string {
  if (!Array.isArray(jobs) || jobs.length === 0) {
    throw new ParameterError("submit options", [`Expected \`after\` to be a non-empty array of job futures, got \`${String(jobs)}\``]);
  }
  const problems: string[] = [];
  const byJob = new Map<string, { size: number; indices: Set<number> | undefined }>();
  for (const [i, job] of jobs.entries()) {
    const id = slurmIds.get(job);
    if (!id) {
      problems.push(`Expected \`after[${i}]\` to be a job future from SlurmExecutor or loadJobs, got \`${String((job as { id?: unknown } | null)?.id ?? job)}\``);
      continue;
    }
    const entry = byJob.get(id.jobId) ?? { size: id.size, indices: id.index === undefined ? undefined : new Set<number>() };
    if (id.index !== undefined) entry.indices?.add(id.index);
    byJob.set(id.jobId, entry);
  }
  if (problems.length) throw new ParameterError("submit options", problems);
  const ids = [...byJob].flatMap(([jobId, { size, indices }]) =>
    indices === undefined || indices.size === size ? [jobId] : [...indices].sort((a, b) => a - b).map((i) => `${jobId}_${i}`),
  );
  return `afterok:${ids.join(":")}`;
}

/**
 * The dependency for `after`: undefined when every job already completed.
 * A job that already failed is an error now, as its dependents could never run.
 */
export function dependencyOf(after: readonly Job<unknown>[] | undefined): string | undefined {
  if (after === undefined) return undefined;
  if (!Array.isArray(after) || after.some((j) => !(j instanceof Job))) {
    throw new ParameterError("submit options", [`Expected \`after\` to be an array of job futures, got \`${String(after)}\``]);
  }
  const ended = after.find((j) => j.done() && j.state !== "COMPLETED");
  if (ended) throw new ParameterError("submit options", [`Job ${ended.id} in \`after\` already ended ${ended.state}, so these tasks could never start`]);
  const waiting = after.filter((j) => !j.done());
  return waiting.length ? afterOk(waiting) : undefined;
}

/** The JobBackend of Slurm jobs: the shared watcher, scancel, and log reads. */
export class SlurmBackend implements JobBackend {
  constructor(
    readonly watcher: Watcher,
    private readonly scheduler: Scheduler,
    private readonly transport: Transport,
  ) {}
  acquire(): void {
    this.watcher.acquire();
  }
  release(): void {
    this.watcher.release();
  }
  async cancel(job: Job<unknown>): Promise<void> {
    if (job.done()) return;
    await this.scheduler.cancel(job.id);
    this.watcher.markCancelled(job);
  }
  readText(path: string): Promise<string> {
    return this.transport.readFile(path).then(String, (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || /no such file/i.test(e.message)) return "";
      throw e;
    });
  }
}

/** Makes the futures of a submitted Slurm submission from its manifest, and tracks them. */
export function slurmJobs(backend: SlurmBackend, folder: RunFolder, manifest: Manifest & { jobId: string }): Job<unknown>[] {
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
    const job = newJob(backend, id, i, folder.task(i));
    slurmIds.set(job, { jobId: schedulerId, index: arrayIndex, size });
    backend.watcher.track(job, folder, schedulerId, arrayIndex, {
      ...(manifest.exitMarkers ? { exitElement: element } : {}),
      ...(packed && arrayIndex !== undefined ? { elementStderr: folder.elementLog(schedulerId, arrayIndex, "err") } : {}),
    });
    return job;
  });
}
