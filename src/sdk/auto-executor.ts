import type { CodeOptions } from "../code/options.js";
import type { Executor } from "../engine/executor.js";
import { LocalExecutor } from "../local/executor.js";
import { parseParameters, type SlurmParametersInput } from "../slurm/parameters.js";
import { SCHEDULERS } from "./schedulers.js";
import type { Transport } from "../transport/transport.js";

/** Options of autoExecutor: Slurm parameters (ignored when running locally) and the folder. */
export interface AutoExecutorOptions extends SlurmParametersInput, CodeOptions {
  readonly folder: string;
  /** For LocalExecutor. @default the number of CPUs */
  readonly maxParallel?: number;
  readonly nodeBinary?: string;
  readonly transport?: Transport;
}

/**
 * The executor of the first scheduler that answers here (`SCHEDULERS`: a
 * SlurmExecutor when `squeue` works), else a LocalExecutor on the same folder.
 *
 * @example
 * const executor = await autoExecutor({ folder: "runs/try", time: 10 });
 */
export async function autoExecutor(options: AutoExecutorOptions): Promise<Executor> {
  const { maxParallel, ...slurm } = options;
  const { folder, nodeBinary, transport, bundle, external, ...parameters } = slurm;
  parseParameters(parameters); // bad parameters are an error on every machine, not only on a cluster
  for (const scheduler of SCHEDULERS) if (await scheduler.available(transport)) return scheduler.executor(slurm);
  // Local processes keep each task's time limit; the other parameters ask a scheduler for resources, which local processes do not reserve.
  return new LocalExecutor({
    ...(parameters.time !== undefined ? { time: parameters.time } : {}),
    ...(bundle !== undefined ? { bundle } : {}),
    ...(external !== undefined ? { external } : {}),
    folder,
    ...(maxParallel !== undefined ? { maxParallel } : {}),
    ...(nodeBinary !== undefined ? { nodeBinary } : {}),
  });
}
