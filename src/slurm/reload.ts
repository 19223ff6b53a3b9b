import type { SchedulerReload } from "../engine/reload.js";
import type { Transport } from "../transport/transport.js";
import { SlurmBackend, slurmJobs } from "./backend.js";
import { recoverSubmission } from "./recover.js";
import { sharedScheduler } from "./scheduler.js";
import { slurmWatcher } from "./watch.js";

/** Slurm submissions' futures rebuilt from their folders, on `transport`'s shared watcher. */
export function slurmReload(transport: Transport): SchedulerReload {
  const backend = new SlurmBackend(slurmWatcher(transport), sharedScheduler(transport), transport);
  return {
    // squeue failing here is an error, not a submission to skip: the user must not think nothing was submitted.
    recover: async (dir, manifest) => (manifest.jobId !== null ? manifest : ((await recoverSubmission(transport, dir, manifest)) ?? manifest)),
    // A manifest without a job id: sbatch never returned, and nothing was found, so nothing was submitted.
    jobs: (folder, manifest, settled) => (manifest.jobId === null ? [] : slurmJobs(backend, folder, { ...manifest, jobId: manifest.jobId }, settled)),
    watcher: backend.watcher,
  };
}
