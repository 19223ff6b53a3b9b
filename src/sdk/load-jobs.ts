import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { SETTINGS_SHAPE } from "../slurm/options.js";
import { basename, dirname, join, posix, resolve } from "node:path";
import { ParameterError } from "../base/errors.js";
import type { Job } from "../core/job.js";
import { decodeManifest, type Manifest } from "../protocol/records.js";
import { originOf } from "../engine/origin.js";
import type { RunPart } from "../engine/run-part.js";
import { taskRecords } from "../engine/task-records.js";
import { RunFolder } from "../protocol/run-folder.js";
import type { SchedulerReload } from "../engine/reload.js";
export type { RunPart } from "../engine/run-part.js";
import { LocalTransport } from "../transport/local.js";
import { sshTransport, type SshTarget } from "../transport/ssh-target.js";
import { isUnreachable, unlessUnreachable, type Transport } from "../transport/transport.js";
import { reloadOf } from "./schedulers.js";

/** Options of loadJobs. */
const LOAD_JOBS_OPTIONS: OptionShape<LoadJobsOptions> = {
  transport: SETTINGS_SHAPE.transport,
  ssh: SETTINGS_SHAPE.ssh,
  executor: accepts.or(
    z.custom((v) => typeof v === "object" && v !== null && "transport" in v),
    "an executor",
  ),
};

export interface LoadJobsOptions {
  /** Where the folder is. @default this machine */
  readonly transport?: Transport;
  /**
   * The folder is on a cluster reached over SSH (an absolute path there), as
   * an executor's `ssh` says it: `"cedar"` for the system's ssh, or keys for
   * the built-in client. loadJobs then opens a connection that only the
   * process's end closes: pass `executor` to close it yourself.
   */
  readonly ssh?: SshTarget;
  /** Reach the folder through this executor's transport; `executor.close()` then closes what loadJobs used. */
  readonly executor?: { readonly transport: Transport };
}

const MANIFEST = "manifest.json";

/** One submission found in the folder. */
interface Found {
  readonly dir: string;
  readonly manifest: Manifest;
  /** Its tasks are listed (not only used to replace tasks of a listed submission). */
  readonly listed: boolean;
  /** How its scheduler rebuilds its futures. */
  readonly reload: SchedulerReload;
}

/**
 * Rebuilds the futures of earlier submissions, for example in a new process
 * after the client restarted. `folder` is an executor's folder (every
 * submission in it, oldest first) or one submission's folder. A task that was
 * run again (`rerun`) is listed once, at its original place, by its latest
 * run. A submission whose job ids never reached its manifest (the client
 * died right after sbatch, or the connection dropped while it ran) is found
 * by the tag its jobs carry (`--comment=slurmkit:<folder name>:<script>`),
 * and its manifest is completed. A manifest that is corrupt or from a newer
 * slurmkit is a RunFolderError naming the file.
 *
 * @example
 * const jobs = await loadJobs("runs/sweep-1");
 * for (const job of jobs) console.log(job.id, job.state, await job.result());
 */
export async function loadJobs(folder: string, options: LoadJobsOptions = {}): Promise<Job<unknown>[]> {
  checkOptions("loadJobs options", options, LOAD_JOBS_OPTIONS);
  const given = [options.ssh, options.transport, options.executor].filter((o) => o !== undefined).length;
  if (given > 1) throw new ParameterError("loadJobs options", ["Expected at most one of `ssh`, `transport` and `executor`"]);
  const transport = options.executor?.transport ?? options.transport ?? (options.ssh !== undefined ? sshTransport(options.ssh) : new LocalTransport());
  return latestRuns(await findSubmissions(folder, transport));
}

/**
 * The submissions' tasks as the command line reads a large run: as
 * loadJobs's futures, except that a packed submission's tasks whose worker
 * streams already hold a completed result get no future (a million of them
 * cost their records, not a million objects); their futures would settle
 * COMPLETED from that result at the first poll, with nothing to wait for
 * (no stage-out). Undefined when the folder holds reruns: use loadJobs.
 */
export async function loadRun(folder: string, transport: Transport): Promise<RunPart[] | undefined> {
  const found = await findSubmissions(folder, transport);
  if (found.some((f) => !f.listed || f.manifest.rerun)) return undefined;
  const parts: RunPart[] = [];
  for (const { dir, manifest, reload } of found) {
    const runFolder = new RunFolder(dir);
    const submission = basename(dir);
    if (!manifest.workers || manifest.exitMarkers || manifest.jobId === null) {
      parts.push({ submission, taskCount: manifest.taskCount, jobs: reload.jobs(runFolder, manifest), streamed: undefined, request: manifest.request });
      continue;
    }
    const records = taskRecords(transport, runFolder);
    records.reserve(manifest.taskCount);
    // A stream that cannot be read now (a folder without permission, say): what was read counts, and the futures of
    // the other tasks meet the error at their first poll, as loadJobs's would.
    await records.refresh().catch((error: unknown) => {
      if (isUnreachable(error)) throw error;
    });
    const settled = new Uint8Array(manifest.taskCount);
    const jobs = reload.jobs(runFolder, manifest, (i) => {
      const done = records.resultOk(i) === true;
      if (done) settled[i] = 1;
      return done;
    });
    // A scheduler that makes every future anyway: no task is read from the streams.
    parts.push({ submission, taskCount: manifest.taskCount, jobs, streamed: jobs.length < manifest.taskCount ? { settled, records } : undefined, request: manifest.request });
  }
  return parts;
}

/** A submission that sbatch refused: nothing of it ran. */
export interface RefusedSubmission {
  /** Its folder's name. */
  readonly submission: string;
  readonly taskCount: number;
  /** What sbatch said. */
  readonly message: string;
  /** A rerun: the tasks it would have run keep their earlier runs. */
  readonly rerun: boolean;
}

/** The submissions in `folder` that sbatch refused (their manifests say so), in loadJobs's order. */
export async function refusedSubmissions(folder: string, transport: Transport): Promise<RefusedSubmission[]> {
  return (await findSubmissions(folder, transport)).flatMap(({ dir, manifest }) =>
    manifest.refused !== undefined && manifest.jobId === null ? [{ submission: basename(dir), taskCount: manifest.taskCount, message: manifest.refused, rerun: manifest.rerun !== undefined }] : [],
  );
}

/** The submissions in `folder` (one submission, and its reruns; or every one in an executor's folder), in the order loadJobs lists them, their manifests recovered. */
async function findSubmissions(folder: string, transport: Transport): Promise<Found[]> {
  // A folder on another machine is a POSIX path there, never resolved against this machine's working directory.
  const remote = !(transport instanceof LocalTransport);
  const root = remote ? posix.normalize(folder).replace(/(.)\/+$/, "$1") : resolve(folder);
  const readManifest = (dir: string) => transport.readFile(join(dir, MANIFEST)).then(String, unlessUnreachable(undefined));
  const own = await readManifest(root);
  let found: Found[];
  if (own !== undefined) {
    const manifest = decodeManifest(own, join(root, MANIFEST));
    found = [{ dir: root, manifest, listed: true, reload: reloadOf(manifest.kind, transport, join(root, MANIFEST)) }, ...(await rerunsOf(transport, root, manifest))];
  } else {
    const names = (
      await transport.list(root).catch((error: unknown) => {
        if (isUnreachable(error)) throw error;
        throw new ParameterError("folder", [`Expected a run folder (an executor's folder or one submission in it), but ${root} cannot be listed: ${(error as Error).message}`]);
      })
    ).sort();
    const read = await Promise.all(names.map(async (name) => ({ dir: join(root, name), text: await readManifest(join(root, name)) })));
    found = read.flatMap(({ dir, text }) => {
      if (text === undefined) return [];
      const manifest = decodeManifest(text, join(dir, MANIFEST));
      return [{ dir, manifest, listed: true, reload: reloadOf(manifest.kind, transport, join(dir, MANIFEST)) }];
    });
    if (found.length === 0) {
      throw new ParameterError("folder", [`No slurmkit submission (manifest.json) in ${root} or its subfolders${names.length ? "" : ": it is empty or does not exist"}`]);
    }
  }
  // Originals first, then reruns, each oldest first: a rerun always comes after the run it replaces, whatever the clocks said.
  const rank = (f: Found) => [f.manifest.rerun ? 1 : 0, f.manifest.createdAt, f.dir] as const;
  found.sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : x[2] < y[2] ? -1 : 1);
  });
  // A submission whose manifest never got its job id: its scheduler looks for it (Slurm: by its tags), if sbatch made the jobs.
  const recovered = await Promise.all(found.map(async (f) => ({ ...f, manifest: await f.reload.recover(f.dir, f.manifest) })));
  return recovered;
}

/** The reruns, among a submission folder's siblings, of tasks of that submission; for a rerun, also its original (not listed). */
async function rerunsOf(transport: Transport, dir: string, manifest: Manifest): Promise<Found[]> {
  const original = manifest.rerun?.of ?? basename(dir);
  const parent = dirname(dir);
  const siblings = (await transport.list(parent).catch(unlessUnreachable([] as string[]))).filter((name) => name !== basename(dir));
  const found = await Promise.all(
    siblings.map(async (name) => {
      const path = join(parent, name, MANIFEST);
      const text = await transport.readFile(path).then(String, unlessUnreachable(undefined));
      if (text === undefined) return [];
      try {
        const m = decodeManifest(text, path);
        return m.rerun?.of === original || name === original ? [{ dir: join(parent, name), manifest: m, listed: false, reload: reloadOf(m.kind, transport, path) }] : [];
      } catch {
        return []; // A sibling that is not a readable submission is not ours to judge here.
      }
    }),
  );
  return found.flat();
}

/** The futures of the submissions, oldest first, each task once: its latest run, with the runs it replaced linked. */
function latestRuns(found: readonly Found[]): Job<unknown>[] {
  // No reruns: every task is listed once, as it was made (a million of them need no bookkeeping).
  if (found.every((f) => f.listed && !f.manifest.rerun)) {
    const made = found.map(({ dir, manifest, reload }) => reload.jobs(new RunFolder(dir), manifest));
    return made.length === 1 ? made[0]! : made.flat();
  }
  const latest = new Map<string, Job<unknown>>();
  /** Runs of tasks that are not listed, kept to link a listed later run to them. */
  const unlisted = new Map<string, Job<unknown>>();
  const order: string[] = [];
  /** The watcher of each future, to stop following the runs that are not listed. */
  const watchers = new Map<Job<unknown>, SchedulerReload["watcher"]>();
  for (const { dir, manifest, listed, reload } of found) {
    const jobs = reload.jobs(new RunFolder(dir), manifest);
    for (const job of jobs) {
      watchers.set(job, reload.watcher);
      const origin = originOf(job)!;
      const key = `${origin.root.dir}\0${origin.root.index}`;
      const previous = latest.get(key) ?? unlisted.get(key);
      if (previous) {
        origin.previous = previous;
        watchers.get(previous)?.forget(previous);
      }
      if (latest.has(key)) {
        latest.set(key, job);
      } else if (listed) {
        order.push(key);
        latest.set(key, job);
      } else {
        reload.watcher.forget(job);
        unlisted.set(key, job);
      }
    }
  }
  return order.map((key) => latest.get(key)!);
}
