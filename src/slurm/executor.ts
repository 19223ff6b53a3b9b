import { BatchExecutor } from "./batch-executor.js";
import { checkCluster, type CheckOptions, type CheckReport } from "./doctor.js";
import type { ExecutorSettings } from "./options.js";
import { mergeParameters, PARAMETER_NAMES, parseParameters, type SlurmParametersInput } from "./parameters.js";
import { sharedScheduler, type SchedulerCallCounts } from "./scheduler.js";
import { slurmSystem } from "./system.js";
import type { JobWatcher } from "../engine/watcher.js";

/** Options of SlurmExecutor: the Slurm parameters, and the settings it takes (all but `maxParallel`). */
export interface SlurmExecutorOptions extends SlurmParametersInput, Omit<ExecutorSettings, "maxParallel"> {}

/**
 * Submits tasks to Slurm: one sbatch call per `mapArray`, one spec file per
 * submission, and futures that a shared watcher keeps up to date.
 *
 * @example
 * const executor = new SlurmExecutor({ folder: "runs/sweep", time: "01:00:00", mem: "4G" });
 * const jobs = await executor.mapArray(configs.map((c) => train.with(c)));
 * for (const job of jobs) console.log(job.id, await job.result());
 */
export class SlurmExecutor extends BatchExecutor<SlurmParametersInput> {
  constructor(options: SlurmExecutorOptions) {
    super(options, {
      name: "SlurmExecutor",
      system: slurmSystem,
      runner: "slurm",
      parameterNames: PARAMETER_NAMES,
      parse: parseParameters,
      merge: mergeParameters,
      // sbatch expands % in log paths (%j, %u...), so such a folder would scatter the logs.
      folderForbids: { pattern: /[%\n\\]/, what: "%, \\ or newlines", why: "" },
    });
  }

  /**
   * Checks what this cluster allows before a first sweep, as `slurmkit
   * doctor` does: Slurm's commands and version, accounting, limits,
   * partitions, preemption, an `sbatch --test-only` of these parameters,
   * then one small job with the executor's setup that reports from a node
   * (the folder at the same path, Node.js, scratch, python3, module, GPUs).
   */
  check(options: CheckOptions = {}): Promise<CheckReport> {
    const where = this.where.replace("(Slurm's commands run here)", "(sbatch runs here)");
    return checkCluster({ transport: this.transport, scheduler: sharedScheduler(this.transport), folder: this.folder, nodeBinary: this.nodeBinary, parameters: this.parameters, where }, options);
  }

  /**
   * The watcher shared by every job on this executor's transport: `stats()`
   * counts scheduler calls and polls, and `setIntervals` tunes polling.
   */
  override get watcher(): JobWatcher<SchedulerCallCounts> {
    return super.watcher as JobWatcher<SchedulerCallCounts>;
  }
}
