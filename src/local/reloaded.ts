import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { newJob, type Job, type JobBackend } from "../core/job.js";
import { setOrigin } from "../engine/origin.js";
import type { SchedulerReload } from "../engine/reload.js";
import { Watcher } from "../engine/watcher.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { LocalTransport } from "../transport/local.js";
import { LocalScheduler, type LocalSchedulerCalls } from "./scheduler.js";

const local = new LocalTransport();

let reloaded: { readonly scheduler: LocalScheduler; readonly watcher: Watcher<LocalSchedulerCalls> } | undefined;

/**
 * Local submissions' futures rebuilt from their folders, on one watcher per
 * process: RUNNING while their runner lives on this host, then settled from
 * their files.
 */
export function localReload(): SchedulerReload {
  return { recover: async (_dir, manifest) => manifest, jobs: (folder, manifest) => reloadLocalJobs(folder, manifest.taskCount), watcher: follower().watcher };
}

function follower(): { readonly scheduler: LocalScheduler; readonly watcher: Watcher<LocalSchedulerCalls> } {
  if (!reloaded) {
    const scheduler = new LocalScheduler({ maxParallel: availableParallelism(), nodeBinary: process.execPath, changed: () => void watcher.pollNow() });
    const watcher = new Watcher(scheduler, local);
    reloaded = { scheduler, watcher };
  }
  return reloaded;
}

/** The futures of a LocalExecutor submission made by an earlier process, followed through their files. */
function reloadLocalJobs(folder: RunFolder, taskCount: number): Job<unknown>[] {
  const { scheduler, watcher } = follower();
  const backend: JobBackend = {
    acquire: () => watcher.acquire(),
    release: () => watcher.release(),
    cancel: (job) => scheduler.cancel(job.id),
    readText: (path) => local.readFile(path).then(String, () => ""),
  };
  setOrigin({ kind: "local", folder, transport: local });
  return Array.from({ length: taskCount }, (_, i) => {
    const job = newJob(backend, `local-${basename(folder.dir)}_${i}`, i, folder);
    scheduler.adopt(job.id, job.paths.state);
    watcher.track(job, folder, job.id, undefined);
    return job;
  });
}
