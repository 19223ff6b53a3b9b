import type { BatchSystem } from "./batch.js";
import { sharedScheduler } from "./scheduler.js";
import { SLURM_SCRIPT } from "./script.js";
import { slurmWatcher } from "./watch.js";

/** Slurm as a batch system: sbatch, squeue and sacct, and its scripts. */
export const slurmSystem: BatchSystem = {
  kind: "slurm",
  name: "Slurm",
  scheduler: sharedScheduler,
  watcher: slurmWatcher,
  script: SLURM_SCRIPT,
};
