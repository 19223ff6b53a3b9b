import type { BatchSystem } from "../slurm/batch.js";
import { sharedPbsScheduler } from "./scheduler.js";
import { PBS_SCRIPT } from "./script.js";
import { pbsWatcher } from "./watch.js";

/** PBS Pro (and OpenPBS) as a batch system: qsub, qstat and qdel, and its scripts. */
export const pbsSystem: BatchSystem = {
  kind: "pbs",
  name: "PBS",
  scheduler: sharedPbsScheduler,
  watcher: pbsWatcher,
  script: PBS_SCRIPT,
};
