import type { ExecutorSettings } from "../slurm/options.js";
import { BatchExecutor } from "../slurm/batch-executor.js";
import type { JobWatcher } from "../engine/watcher.js";
import type { CheckOptions, CheckReport } from "../slurm/doctor.js";
import { checkPbs } from "./doctor.js";
import { mergePbsParameters, PBS_KNOWN_NAMES, parsePbsParameters, type PbsParametersInput } from "./parameters.js";
import { type PbsCallCounts, sharedPbsScheduler } from "./scheduler.js";
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
      dependencies: { wholeArray: (id) => `${id}[]`, elements: false },
      // qsub expands ^array_index^ in log paths, and refuses a path that is not ASCII or has a double quote.
      folderForbids: { pattern: /[%\n\\^"]|[^\x20-\x7e]/, what: "%, ^, \\, double quotes, newlines or characters other than ASCII", why: ": qsub could not write its logs there" },
    });
  }

  /**
   * Checks what this PBS server allows before a first sweep, as `slurmkit
   * doctor --pbs` does: PBS's commands, the server, max_array_size, job
   * history, the queues and their walltimes, then one small job with the
   * executor's setup that reports from a node.
   */
  check(options: CheckOptions = {}): Promise<CheckReport> {
    return checkPbs(
      { transport: this.transport, scheduler: sharedPbsScheduler(this.transport), folder: this.folder, nodeBinary: this.nodeBinary, parameters: this.parameters, where: this.where },
      options,
    );
  }

  /**
   * The watcher shared by every PBS job on this executor's transport:
   * `stats()` counts qsub, qstat and qdel calls and polls.
   */
  override get watcher(): JobWatcher<PbsCallCounts> {
    return super.watcher as JobWatcher<PbsCallCounts>;
  }
}
