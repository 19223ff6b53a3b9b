import { type BatchSystem, registerBatchSystem } from "../slurm/batch.js";
import type { SlurmParametersInput } from "../slurm/parameters.js";
import { mergePbsParameters, parsePbsParameters, type PbsParametersInput } from "./parameters.js";
import { sharedPbsScheduler } from "./scheduler.js";
import { PBS_SCRIPT } from "./script.js";
import { pbsWatcher } from "./watch.js";

/** PBS Pro (and OpenPBS) as a batch system: qsub, qstat and qdel, and its scripts. */
export const pbsSystem: BatchSystem = registerBatchSystem({
  kind: "pbs",
  name: "PBS",
  scheduler: sharedPbsScheduler,
  watcher: pbsWatcher,
  script: PBS_SCRIPT,
  parameters: {
    parse: (input) => parsePbsParameters(input as PbsParametersInput),
    merge: (base, over) => mergePbsParameters(base as PbsParametersInput, over as PbsParametersInput) as SlurmParametersInput,
    stored: (input) => input,
  },
});
