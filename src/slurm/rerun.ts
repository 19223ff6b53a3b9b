import type { SubmissionPreview } from "../engine/executor.js";
import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { JOB_STATES } from "../base/job-state.js";
import { basename, dirname } from "node:path";
import { ParameterError, SlurmkitError } from "../base/errors.js";
import { END_STATES, type JobState } from "../base/job-state.js";
import { Job } from "../core/job.js";
import { originOf, type JobOrigin } from "../engine/origin.js";
import { encodeManifest, type Manifest } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { specRecordsAt } from "../protocol/spec-file.js";
import { newSubmissionDir } from "../core/submission.js";
import { isUnreachable } from "../transport/transport.js";
import { launch, prepareLaunch, previewOf, refusal, type Launch } from "./launch.js";
import type { SlurmParametersInput } from "./parameters.js";
import { type BatchSystem, batchSystemOf } from "./batch.js";
import { RAW_MEMORY } from "./packing.js";
import { decodeRequest } from "./request.js";
import { slurmSystem } from "./system.js";

/** Options of rerun(). */
export interface RerunOptions {
  /**
   * Which of the jobs to run again: "failed" for those that ended in any
   * state but COMPLETED, or a list of end states (`["TIMEOUT", "OUT_OF_MEMORY"]`).
   * Jobs still pending or running are never chosen by it.
   * @default every job given, which must all have ended
   */
  readonly only?: "failed" | readonly JobState[];
  /**
   * Parameters that replace those the tasks were submitted with, merged as
   * `update()` does (`{ mem: "16G" }`), and checked as the tasks' scheduler
   * checks them (raw options as `sbatch` on Slurm, `pbs` on PBS).
   */
  readonly parameters?: SlurmParametersInput & { readonly pbs?: Readonly<Record<string, string | number | true>> };
  /**
   * Parameters for one job, merged over `parameters` (`rerun --right-size`
   * gives a job that ran out of memory more `mem`). Jobs of one submission
   * with different ones are rerun as separate submissions, all or nothing.
   */
  readonly parametersOf?: (job: Job<unknown>) => SlurmParametersInput | undefined;
}

/** The jobs `only` chooses; every problem with the options or the jobs is a ParameterError. */
function choose<R>(jobs: readonly Job<R>[], only: RerunOptions["only"]): Job<R>[] {
  if (!Array.isArray(jobs) || jobs.some((j) => !(j instanceof Job))) throw new ParameterError("rerun", [`Expected an array of job futures, got \`${String(jobs)}\``]);
  if (only === undefined) {
    const running = jobs.filter((j) => !j.done());
    if (running.length) {
      throw new ParameterError("rerun", [
        `Expected every job to have ended; ${running
          .map((j) => `${j.id} (task ${j.taskIndex}) is ${j.state}`)
          .slice(0, 5)
          .join(", ")}: wait for it or cancel it first`,
      ]);
    }
    return [...jobs];
  }
  if (only === "failed") return jobs.filter((j) => j.done() && j.state !== "COMPLETED");
  if (!Array.isArray(only) || only.length === 0 || only.some((s) => !END_STATES.includes(s))) {
    throw new ParameterError("rerun", [`Expected \`only\` to be "failed" or a non-empty list of end states (${END_STATES.join(", ")}), got \`${String(only)}\``]);
  }
  return jobs.filter((j) => j.done() && only.includes(j.state));
}

/** The submission's own parameters without its dependency, which a rerun does not wait for again. */
function withoutDependency(p: SlurmParametersInput): SlurmParametersInput {
  const { dependency: _, sbatch, ...rest } = p;
  if (!sbatch) return rest;
  const { dependency: __, ...options } = sbatch;
  return { ...rest, sbatch: options };
}

/** The submission's own ways of asking for memory left out when the overrides ask for memory any way (sbatch takes only one). */
function withoutMemory(p: SlurmParametersInput, overrides: SlurmParametersInput): SlurmParametersInput {
  const asks = overrides.mem !== undefined || overrides.memPerCpu !== undefined || RAW_MEMORY.some((o) => overrides.sbatch?.[o] !== undefined);
  if (!asks) return p;
  const { mem: _, memPerCpu: __, sbatch, ...rest } = p;
  if (!sbatch) return rest;
  const options = Object.fromEntries(Object.entries(sbatch).filter(([name]) => !(RAW_MEMORY as readonly string[]).includes(name)));
  return { ...rest, sbatch: options };
}

/**
 * Runs tasks again as a new submission next to their original, from the spec
 * and parameters stored in the run folder, with `parameters` overriding the
 * stored ones. One new submission per submission the jobs come from; its
 * manifest records which tasks it reruns, and `loadJobs` then lists each task
 * by its latest run. Everything is checked before anything is submitted: bad
 * options or parameters are a ParameterError and submit nothing. If sbatch
 * refuses one rerun after others were submitted, those are cancelled: a rerun
 * is all or nothing. A task given twice is rerun once.
 * Returns the new futures, in the order of `jobs`; [] when none is chosen.
 *
 * @example
 * const jobs = await loadJobs("runs/sweep");
 * await Promise.allSettled(jobs.map((j) => j.wait()));
 * const again = await rerun(jobs, { only: "failed", parameters: { mem: "16G" } });
 */
export async function rerun<R>(jobs: readonly Job<R>[], options: RerunOptions = {}): Promise<Job<R>[]> {
  const { chosen, launches } = await prepareReruns(jobs, options);
  const made = new Map<Job<R>, Job<R>>();
  const launched: Array<{ launch: Launch; manifest: Manifest & { jobId: string } }> = [];
  for (const { launch: l, jobs: group } of launches) {
    let fresh: Job<R>[];
    try {
      const done = await launch(l);
      launched.push({ launch: l, manifest: done.manifest });
      fresh = done.jobs as Job<R>[];
    } catch (error) {
      await withdraw(launched, error);
      throw error;
    }
    fresh.forEach((job, k) => {
      originOf(job as Job<unknown>)!.previous = group[k] as Job<unknown>;
      made.set(group[k]!, job);
    });
  }
  return chosen.map((j) => made.get(j)!);
}

/** What `rerun(jobs, options)` would submit, one preview per submission it would make. Nothing is written or submitted. */
export async function planRerun<R>(jobs: readonly Job<R>[], options: RerunOptions = {}): Promise<SubmissionPreview[]> {
  const { launches } = await prepareReruns(jobs, options);
  return launches.map(({ launch }) => previewOf(launch));
}

/** The chosen jobs, and each submission that reruns them, planned. */
async function prepareReruns<R>(jobs: readonly Job<R>[], options: RerunOptions): Promise<{ chosen: Job<R>[]; launches: Array<{ launch: Launch; jobs: Job<R>[] }> }> {
  checkOptions("rerun options", options, {
    only: accepts.or(z.union([z.literal("failed"), z.array(z.enum(JOB_STATES))]), `"failed" or an array of job states (${JOB_STATES.join(", ")})`),
    parameters: accepts.object,
    parametersOf: accepts.function,
  } satisfies OptionShape<RerunOptions>);
  // Bad overrides fail even when no job is chosen (checked as the first job's scheduler reads them).
  const first = Array.isArray(jobs) && jobs[0] instanceof Job ? originOf(jobs[0] as Job<unknown>) : undefined;
  if (options.parameters !== undefined) (batchSystemOf(first?.kind ?? "slurm") ?? slurmSystem).parameters.parse(options.parameters);
  const chosen = dedupe(choose(jobs, options.only));
  const groups = new Map<string, { origin: JobOrigin; system: BatchSystem; jobs: Job<R>[]; own: SlurmParametersInput | undefined }>();
  for (const job of chosen) {
    const origin = originOf(job as Job<unknown>);
    const system = origin && batchSystemOf(origin.kind);
    if (!origin || !system) throw new ParameterError("rerun", [`Expected Slurm or PBS job futures (from their executors or loadJobs); ${job.id} is not one, and local jobs cannot be rerun`]);
    const own = options.parametersOf?.(job as Job<unknown>);
    const key = `${origin.folder.dir}\0${own === undefined ? "" : JSON.stringify(own)}`;
    const group = groups.get(key) ?? { origin, system, jobs: [], own };
    group.jobs.push(job);
    groups.set(key, group);
  }
  const launches: Array<{ launch: Launch; jobs: Job<R>[] }> = [];
  for (const { origin, system, jobs: group, own } of groups.values()) {
    const overrides = own === undefined ? options.parameters : options.parameters === undefined ? own : system.parameters.merge(options.parameters, own);
    if (own !== undefined) system.parameters.parse(overrides!);
    launches.push({ launch: await prepare(origin, system, group, overrides), jobs: group });
  }
  return { chosen, launches };
}

/** Each task once: a task named twice (or by an old and a new run) is rerun once. */
function dedupe<R>(jobs: readonly Job<R>[]): Job<R>[] {
  const seen = new Set<string>();
  return jobs.filter((j) => {
    const root = originOf(j as Job<unknown>)?.root;
    const key = root ? `${root.dir}\0${root.index}` : `${j.id}\0${j.taskIndex}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * sbatch refused a rerun after others were submitted: cancels those, and
 * marks them never submitted (job id null) so that loadJobs ignores them. A
 * rerun is all or nothing.
 */
async function withdraw(launched: ReadonlyArray<{ launch: Launch; manifest: Manifest & { jobId: string } }>, cause: unknown): Promise<void> {
  const problems: string[] = [];
  for (const { launch: l, manifest } of launched) {
    const ids = manifest.arrays?.map((a) => a.jobId) ?? [manifest.jobId];
    for (const id of ids) {
      await l.system
        .scheduler(l.transport)
        .cancel(id)
        .catch((e: unknown) => problems.push(`scancel ${id}: ${(e as Error).message}`));
    }
    await l.transport
      .writeFile(l.folder.manifest, encodeManifest({ ...manifest, jobId: null, withdrawn: true, refused: `cancelled because another part of the same rerun was refused: ${refusal(cause)}` }))
      .catch((e: unknown) => problems.push(`${l.folder.manifest}: ${(e as Error).message}`));
  }
  if (problems.length) {
    throw new SlurmkitError(`A rerun was refused (${(cause as Error).message.split("\n")[0]}), and the reruns submitted before it could not all be withdrawn`, problems.join("\n"), { cause });
  }
}

/** Plans the rerun of one submission's tasks, reading its request and spec; nothing is written. */
async function prepare<R>(origin: JobOrigin, system: BatchSystem, jobs: readonly Job<R>[], overrides: SlurmParametersInput | undefined): Promise<Launch> {
  const { folder, transport } = origin;
  const read = (path: string, what: string) =>
    transport.readFile(path).catch((error: unknown) => {
      if (isUnreachable(error)) throw error;
      throw new ParameterError("rerun", [
        `Expected ${path} (${what}) to be readable: ${(error as Error).message}. Submissions made before slurmkit kept their request cannot be rerun; submit their tasks again`,
      ]);
    });
  const request = decodeRequest(await read(folder.request, "the submission's parameters"), folder.request);
  // A folder from before raw options that a parameter covers were refused: read them as the parameters.
  const stored = system.parameters.stored(request.parameters);
  const merged = overrides === undefined ? withoutDependency(stored) : system.parameters.merge(withoutMemory(withoutDependency(stored), overrides), overrides);
  const parameters = system.parameters.parse(merged);
  const indices = jobs.map((j) => j.taskIndex);
  const records = specRecordsAt(await read(folder.spec, "the tasks"), folder.spec, indices);
  const { workers } = request.packing;
  // A rerun of fewer tasks never asks for more workers than it has tasks; a single task stays an array if it was one.
  const packing = { ...request.packing, workers: typeof workers === "number" ? Math.min(workers, records.length) : workers };
  const array = request.array || records.length > 1;
  const next = new RunFolder(newSubmissionDir(dirname(origin.root.dir)));
  const rerunOf = { of: basename(origin.root.dir), tasks: jobs.map((j) => originOf(j as Job<unknown>)!.root.index) };
  const planned = await prepareLaunch({
    system,
    transport,
    folder: next,
    records,
    parameters,
    request: { ...request, parameters: merged, packing, array },
    limits: () => system.scheduler(transport).limits(),
    rerun: rerunOf,
  });
  return planned!;
}
