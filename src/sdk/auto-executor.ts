import type { CodeOptions } from "../code/options.js";
import type { Executor } from "../engine/executor.js";
import { LocalExecutor } from "../local/executor.js";
import { parseParameters, type SlurmParametersInput } from "../slurm/parameters.js";
import { SlurmExecutor } from "../slurm/executor.js";
import { LocalTransport } from "../transport/local.js";
import type { Transport } from "../transport/transport.js";

/** Options of autoExecutor: Slurm parameters (ignored when running locally) and the folder. */
export interface AutoExecutorOptions extends SlurmParametersInput, CodeOptions {
  readonly folder: string;
  /** For LocalExecutor. @default the number of CPUs */
  readonly maxParallel?: number;
  readonly nodeBinary?: string;
  readonly transport?: Transport;
}

/** Whether a Slurm controller answers here: `squeue` runs and succeeds within `timeoutMs`. */
export async function slurmAvailable(transport: Transport = new LocalTransport(), timeoutMs = 15_000): Promise<boolean> {
  try {
    const r = await transport.run("squeue", ["-h", "-o", "%i", "-j", "1"], { timeoutMs });
    return r.exitCode === 0 || /Invalid job id/i.test(r.stderr);
  } catch {
    return false;
  }
}

/**
 * A SlurmExecutor when a Slurm controller answers (`squeue` works), else a
 * LocalExecutor on the same folder.
 *
 * @example
 * const executor = await autoExecutor({ folder: "runs/try", time: 10 });
 */
export async function autoExecutor(options: AutoExecutorOptions): Promise<Executor> {
  const { maxParallel, ...slurm } = options;
  const { folder, nodeBinary, transport, bundle, external, ...parameters } = slurm;
  parseParameters(parameters); // bad parameters are an error on every machine, not only on a cluster
  if (await slurmAvailable(transport)) return new SlurmExecutor(slurm);
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
