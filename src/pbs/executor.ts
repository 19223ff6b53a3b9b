import type { ExecutorSettings } from "../slurm/options.js";
import { BatchExecutor } from "../slurm/batch-executor.js";
import type { JobWatcher } from "../engine/watcher.js";
import { mergePbsParameters, PBS_KNOWN_NAMES, parsePbsParameters, type PbsParametersInput } from "./parameters.js";
import type { PbsCallCounts } from "./scheduler.js";
import { pbsSystem } from "./system.js";

/** Options of PbsExecutor: the PBS parameters, and the settings it takes (all but `maxParallel`). */
export type PbsExecutorOptions = PbsParametersInput & Omit<ExecutorSettings, "maxParallel">;

/**
 * Submits tasks to PBS Pro or OpenPBS: one qsub call per script (`-J` arrays),
 * one spec file per submission, and futures that a shared watcher keeps up
 * to date with qstat. The same tasks, parameters and futures as on Slurm;
 * what PBS cannot express is a ParameterError.
 *
 * @example
 * const executor = new PbsExecutor({ folder: "runs/sweep", time: "01:00:00", mem: "4G", partition: "debug", account: "myproject" });
 * const jobs = await executor.mapArray(configs.map((c) => train.with(c)));
 */
export class PbsExecutor extends BatchExecutor<PbsParametersInput> {
  constructor(options: PbsExecutorOptions) {
    super(options, {
      name: "PbsExecutor",
      system: pbsSystem,
      runner: "pbs",
      parameterNames: PBS_KNOWN_NAMES,
      parse: parsePbsParameters,
      merge: mergePbsParameters,
      wholeArray: (id) => `${id}[]`,
    });
  }

  /**
   * The watcher shared by every PBS job on this executor's transport:
   * `stats()` counts qsub, qstat and qdel calls and polls.
   */
  override get watcher(): JobWatcher<PbsCallCounts> {
    return super.watcher as JobWatcher<PbsCallCounts>;
  }
}
