import type { SchedulerReload } from "../engine/reload.js";
import type { Transport } from "../transport/transport.js";
import { SlurmBackend, slurmJobs } from "../slurm/backend.js";
import { recoverSubmission } from "../slurm/recover.js";
import { pbsSystem } from "./system.js";

/** PBS submissions' futures rebuilt from their folders, on `transport`'s shared watcher. */
export function pbsReload(transport: Transport): SchedulerReload {
  const backend = new SlurmBackend(pbsSystem.watcher(transport), pbsSystem.scheduler(transport), transport, pbsSystem.kind);
  return {
    // qstat failing here is an error, not a submission to skip: the user must not think nothing was submitted.
    recover: async (dir, manifest) => (manifest.jobId !== null ? manifest : ((await recoverSubmission(transport, dir, manifest, Date.now(), pbsSystem.scheduler(transport))) ?? manifest)),
    jobs: (folder, manifest, settled) => (manifest.jobId === null ? [] : slurmJobs(backend, folder, { ...manifest, jobId: manifest.jobId }, settled)),
    watcher: backend.watcher,
  };
}
