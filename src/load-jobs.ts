import { readFile, readdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join, posix, resolve } from "node:path";
import { ParameterError } from "./errors.js";
import { Job, type JobBackend } from "./job.js";
import { outcomeFromResult, outcomeWithoutResult } from "./outcome.js";
import { RunFolder, type Manifest, type ResultFile, type StateFile } from "./run-folder.js";
import { SlurmBackend, slurmJobs } from "./slurm-executor.js";
import { packr } from "./spec-file.js";
import { SshTransport, type SshOptions } from "./ssh-transport.js";
import { LocalTransport, unlessUnreachable, type Transport } from "./transport.js";
import { Watcher } from "./watcher.js";

/** Options of loadJobs. */
export interface LoadJobsOptions {
  /** Where the folder is. @default this machine */
  readonly transport?: Transport;
  /** The folder is on a cluster reached over SSH (an absolute path there). */
  readonly ssh?: SshOptions;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether a state file says "running" and its runner is alive on this host. */
function runningHere(state: StateFile): boolean {
  return state.state === "RUNNING" && state.host === hostname() && alive(state.pid);
}

/** Local jobs rebuilt after a restart: settled from their files, or watched until their runner exits. */
class ReloadedLocalBackend implements JobBackend {
  acquire(): void {}
  release(): void {}
  async cancel(job: Job<unknown>): Promise<void> {
    const state = await readFile(job.paths.state).then((b) => packr.unpack(b) as StateFile, () => undefined);
    if (state && !job.done() && runningHere(state)) process.kill(state.pid, "SIGTERM");
  }
  readText(path: string): Promise<string> {
    return readFile(path, "utf8").catch(() => "");
  }
  async follow(job: Job<unknown>): Promise<void> {
    for (;;) {
      const bytes = await readFile(job.paths.result).catch(() => undefined);
      if (bytes) return job.settle(outcomeFromResult(job, packr.unpack(bytes) as ResultFile));
      const state = await readFile(job.paths.state).then((b) => packr.unpack(b) as StateFile, () => undefined);
      if (!state || !runningHere(state)) {
        // Checked again: the runner may have written its result just before exiting.
        if (await readFile(job.paths.result).then(() => true, () => false)) continue;
        return job.settle(outcomeWithoutResult(job, state ? "FAILED" : "UNKNOWN", await this.readText(job.paths.stderr)));
      }
      job.setState("RUNNING");
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function isSubmission(dir: string, transport: Transport): Promise<boolean> {
  return transport.readFile(join(dir, "manifest.json")).then(() => true, unlessUnreachable(false));
}

/**
 * Rebuilds the futures of earlier submissions, for example in a new process
 * after the client restarted. `folder` is an executor's folder (every
 * submission in it, oldest first) or one submission's folder.
 *
 * @example
 * const jobs = await loadJobs("runs/sweep-1");
 * for (const job of jobs) console.log(job.id, job.state, await job.result());
 */
export async function loadJobs(folder: string, options: LoadJobsOptions = {}): Promise<Job<unknown>[]> {
  if (options.ssh !== undefined && options.transport !== undefined) throw new ParameterError("loadJobs options", ["Expected either `ssh` or `transport`, not both"]);
  const transport = options.transport ?? (options.ssh ? new SshTransport(options.ssh) : new LocalTransport());
  const root = options.ssh ? posix.normalize(folder) : resolve(folder);
  const dirs = (await isSubmission(root, transport))
    ? [root]
    : (await transport.list(root)).sort().map((name) => join(root, name));
  const jobs: Job<unknown>[] = [];
  const local = new ReloadedLocalBackend();
  const slurm = new SlurmBackend(Watcher.for(transport));
  let found = 0;
  for (const dir of dirs) {
    const text = await transport.readFile(join(dir, "manifest.json")).then(String, unlessUnreachable(undefined));
    if (text === undefined) continue;
    found++;
    const manifest = JSON.parse(text) as Manifest;
    const runFolder = new RunFolder(dir);
    if (manifest.kind === "slurm") {
      if (manifest.jobId === null) continue; // sbatch never returned: nothing was submitted
      jobs.push(...slurmJobs(slurm, runFolder, { ...manifest, jobId: manifest.jobId }));
    } else {
      for (let i = 0; i < manifest.taskCount; i++) {
        const job = new Job<unknown>(local, `local-${dir.split("/").pop()}_${i}`, i, runFolder.task(i));
        void local.follow(job);
        jobs.push(job);
      }
    }
  }
  if (found === 0) throw new ParameterError("folder", [`No slurmkit submission (manifest.json) in ${root} or its subfolders`]);
  return jobs;
}
