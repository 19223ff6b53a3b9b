import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename } from "node:path";
import { newJob, setJobState, settleJob, type Job, type JobBackend } from "../api/job.js";
import { setOrigin } from "../engine/origin.js";
import { LocalTransport } from "../transport/local.js";
import { outcomeFromResult, outcomeWithoutResult } from "../api/outcome.js";
import { decodeResult, decodeState, type StateFile } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";

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

async function readState(job: Job<unknown>): Promise<StateFile | undefined> {
  const bytes = await readFile(job.paths.state).catch(() => undefined);
  return bytes && decodeState(bytes, job.paths.state);
}

/** Local jobs rebuilt after a restart: settled from their files, or watched until their runner exits. */
class ReloadedLocalBackend implements JobBackend {
  acquire(): void {}
  release(): void {}
  async cancel(job: Job<unknown>): Promise<void> {
    const state = await readState(job).catch(() => undefined);
    if (state && !job.done() && runningHere(state)) process.kill(state.pid, "SIGTERM");
  }
  readText(path: string): Promise<string> {
    return readFile(path, "utf8").catch(() => "");
  }
  /** Polls the task's files until it has a result, or its runner is gone; `looked` resolves after the first look. */
  async follow(job: Job<unknown>, looked: () => void): Promise<void> {
    try {
      for (;;) {
        const bytes = await readFile(job.paths.result).catch(() => undefined);
        if (bytes) return settleJob(job, outcomeFromResult(job, decodeResult(bytes, job.paths.result)));
        const state = await readState(job);
        if (!state || !runningHere(state)) {
          // Checked again: the runner may have written its result just before exiting.
          if (
            await readFile(job.paths.result).then(
              () => true,
              () => false,
            )
          )
            continue;
          return settleJob(job, outcomeWithoutResult(job, state ? "FAILED" : "UNKNOWN", await this.readText(job.paths.stderr)));
        }
        setJobState(job, "RUNNING");
        looked();
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (error) {
      // A corrupt result or state file: the job's outcome cannot be known.
      settleJob(job, outcomeWithoutResult(job, "UNKNOWN", `slurmkit: ${(error as Error).message}`));
    } finally {
      looked();
    }
  }
}

const reloaded = new ReloadedLocalBackend();
const local = new LocalTransport();
const firstLooks = new WeakMap<Job<unknown>, Promise<void>>();

/** Resolves once a reloaded local job's files were read once (it is settled then if it had ended). */
export function firstLook(job: Job<unknown>): Promise<void> {
  return firstLooks.get(job) ?? Promise.resolve();
}

/** The futures of a LocalExecutor submission made by an earlier process, followed through their files. */
export function reloadLocalJobs(folder: RunFolder, taskCount: number): Job<unknown>[] {
  return Array.from({ length: taskCount }, (_, i) => {
    const job = newJob(reloaded, `local-${basename(folder.dir)}_${i}`, i, folder.task(i));
    setOrigin(job, { kind: "local", folder, transport: local, root: { dir: folder.dir, index: i } });
    firstLooks.set(job, new Promise<void>((looked) => void reloaded.follow(job, looked)));
    return job;
  });
}
