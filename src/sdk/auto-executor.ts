import { ParameterError } from "../base/errors.js";
import { isSetupStep } from "../setup/index.js";
import type { Executor } from "../engine/executor.js";
import { LocalExecutor } from "../local/executor.js";
import { splitOptions, type ExecutorSettings } from "../slurm/options.js";
import { parseParameters, type SlurmParameters, type SlurmParametersInput } from "../slurm/parameters.js";
import { formatSlurmTime } from "../slurm/units.js";
import { SCHEDULERS } from "./schedulers.js";

/** Options of autoExecutor: Slurm parameters (only `time` counts when running locally), the folder, and the settings of both executors. */
export interface AutoExecutorOptions extends SlurmParametersInput, Omit<ExecutorSettings, "ssh" | "pathMap"> {}

/**
 * The executor of the first scheduler that answers here (`SCHEDULERS`: a
 * SlurmExecutor when `squeue` works), else a LocalExecutor on the same
 * folder. Bad parameters are an error either way.
 *
 * @example
 * const executor = await autoExecutor({ folder: "runs/try", time: 10 });
 */
export async function autoExecutor(options: AutoExecutorOptions): Promise<Executor> {
  const { settings, input } = splitOptions("autoExecutor options", options);
  const parameters = parseParameters(input); // bad parameters are an error on every machine, before any scheduler is asked
  const { maxParallel, ...schedulerSettings } = settings;
  for (const scheduler of SCHEDULERS) if (await scheduler.available(settings.transport)) return scheduler.executor({ ...schedulerSettings, ...input });
  return localFallback(settings, parameters);
}

/**
 * The LocalExecutor that stands in for a scheduler (autoExecutor finds none,
 * or executorFromFlags has no `--slurm`): the same folder and code options,
 * and each task's `time`. The other parameters ask a scheduler for
 * resources, which local processes do not reserve.
 */
export function localFallback(settings: ExecutorSettings, parameters: SlurmParameters): LocalExecutor {
  const { folder, maxParallel, nodeBinary, bundle, external } = settings;
  // A container step goes with the tasks; the runner never moves into (or out of) an image unsaid.
  const steps = (parameters.setup ?? []).filter(isSetupStep);
  if (steps.some((s) => s.wrap.length > 0)) {
    throw new ParameterError("setup", [
      "A container step with `runnerInside: true` needs a scheduler's job script; without one, tasks run as local processes: drop runnerInside to run command tasks in the image",
    ]);
  }
  const container = steps.find((s) => s.container)?.container;
  return new LocalExecutor({
    ...(container ? { container } : {}),
    folder,
    ...(parameters.time !== undefined ? { time: formatSlurmTime(parameters.time) } : {}),
    ...(bundle !== undefined ? { bundle } : {}),
    ...(external !== undefined ? { external } : {}),
    ...(maxParallel !== undefined ? { maxParallel } : {}),
    ...(nodeBinary !== undefined ? { nodeBinary } : {}),
  });
}
