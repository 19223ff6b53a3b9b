import { join, posix, resolve } from "node:path";
import { ParameterError } from "../errors.js";
import type { Job } from "./job.js";
import { reloadLocalJobs } from "../local/reloaded.js";
import { decodeManifest } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { SlurmBackend, slurmJobs } from "../slurm/backend.js";
import { sharedScheduler } from "../slurm/scheduler.js";
import { Watcher } from "../slurm/watcher.js";
import { LocalTransport } from "../transport/local.js";
import { SshTransport } from "../transport/ssh.js";
import type { SshOptions } from "../transport/ssh-options.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";

/** Options of loadJobs. */
export interface LoadJobsOptions {
  /** Where the folder is. @default this machine */
  readonly transport?: Transport;
  /** The folder is on a cluster reached over SSH (an absolute path there). */
  readonly ssh?: SshOptions;
}

const MANIFEST = "manifest.json";

/**
 * Rebuilds the futures of earlier submissions, for example in a new process
 * after the client restarted. `folder` is an executor's folder (every
 * submission in it, oldest first) or one submission's folder. A manifest that
 * is corrupt or from a newer slurmkit is a RunFolderError naming the file.
 *
 * @example
 * const jobs = await loadJobs("runs/sweep-1");
 * for (const job of jobs) console.log(job.id, job.state, await job.result());
 */
export async function loadJobs(folder: string, options: LoadJobsOptions = {}): Promise<Job<unknown>[]> {
  if (options.ssh !== undefined && options.transport !== undefined) throw new ParameterError("loadJobs options", ["Expected either `ssh` or `transport`, not both"]);
  const transport = options.transport ?? (options.ssh ? new SshTransport(options.ssh) : new LocalTransport());
  const root = options.ssh ? posix.normalize(folder) : resolve(folder);
  const readManifest = (dir: string) => transport.readFile(join(dir, MANIFEST)).then(String, unlessUnreachable(undefined));
  const own = await readManifest(root);
  const dirs = own !== undefined ? [root] : (await transport.list(root)).sort().map((name) => join(root, name));
  const jobs: Job<unknown>[] = [];
  const slurm = new SlurmBackend(Watcher.for(transport), sharedScheduler(transport), transport);
  let found = 0;
  for (const dir of dirs) {
    const text = dir === root ? own : await readManifest(dir);
    if (text === undefined) continue;
    found++;
    const manifest = decodeManifest(text, join(dir, MANIFEST));
    const runFolder = new RunFolder(dir);
    if (manifest.kind === "slurm") {
      if (manifest.jobId === null) continue; // sbatch never returned: nothing was submitted
      jobs.push(...slurmJobs(slurm, runFolder, { ...manifest, jobId: manifest.jobId }));
    } else {
      jobs.push(...reloadLocalJobs(runFolder, manifest.taskCount));
    }
  }
  if (found === 0) throw new ParameterError("folder", [`No slurmkit submission (manifest.json) in ${root} or its subfolders`]);
  return jobs;
}
