import { type BatchSystem, registerBatchSystem } from "./batch.js";
import { liftCoveredOptions, mergeParameters, parseParameters } from "./parameters.js";
import { sharedScheduler } from "./scheduler.js";
import { SLURM_SCRIPT } from "./script.js";
import { slurmWatcher } from "./watch.js";

/** Slurm as a batch system: sbatch, squeue and sacct, and its scripts. */
export const slurmSystem: BatchSystem = registerBatchSystem({
  kind: "slurm",
  name: "Slurm",
  scheduler: sharedScheduler,
  watcher: slurmWatcher,
  script: SLURM_SCRIPT,
  // A folder from before raw options that a parameter covers were refused: read them as the parameters.
  parameters: { parse: parseParameters, merge: mergeParameters, stored: liftCoveredOptions },
});
