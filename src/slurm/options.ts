import { z } from "zod";
import { ParameterError } from "../base/errors.js";
import { accepts, type OptionShape, showValue, unknownKeyProblems, valueProblems } from "../base/options.js";
import type { CodeOptions } from "../code/options.js";
import type { SshTarget } from "../transport/ssh-target.js";
import type { Transport } from "../transport/transport.js";
import { PARAMETER_NAMES, type SlurmParametersInput } from "./parameters.js";
import type { PathMap } from "./path-map.js";

/** What the executors' entry points take besides Slurm parameters; each takes the settings it uses. */
export interface ExecutorSettings extends CodeOptions {
  /** The folder for submissions, on a file system the compute nodes share (with `ssh`: an absolute path on the cluster). */
  readonly folder: string;
  /** The Node.js binary on the compute nodes. @default the one running this process; with `ssh`, `node` from the nodes' PATH */
  readonly nodeBinary?: string;
  /** Where sbatch runs and files are written. @default this machine, or the `ssh` login node */
  readonly transport?: Transport;
  /**
   * Submit from another machine (a laptop): run sbatch and keep the folder on
   * this login node, over SSH. A string (`"cedar"`, a Host alias, or
   * `user@host[:port]`) uses the system's ssh with your own ~/.ssh/config:
   * ProxyJump, ControlMaster, MFA prompts on your terminal. An object with
   * `host` uses the built-in client with keys given in code.
   */
  readonly ssh?: SshTarget;
  /**
   * Where this machine's files are on the cluster, by path prefix, for function
   * task modules and slurmkit's runner: `{ "/Users/ada/sweep": "/home/ada/sweep" }`.
   * @default the same paths on the cluster
   */
  readonly pathMap?: PathMap;
  /** Local processes (LocalExecutor, and the fallbacks to it): at most this many tasks run at once. @default the number of CPUs */
  readonly maxParallel?: number;
}

/** What each setting accepts. */
export const SETTINGS_SHAPE: OptionShape<ExecutorSettings> = {
  folder: accepts.string,
  nodeBinary: accepts.string,
  transport: accepts.or(
    z.custom((v) => typeof v === "object" && v !== null && typeof (v as { run?: unknown }).run === "function"),
    "a Transport (an object with `run`)",
  ),
  // sshTarget checks it, naming what is wrong with a destination or its options.
  ssh: z.any(),
  pathMap: accepts.or(z.record(z.string(), z.string()), "an object of path prefixes, each mapped to a path"),
  bundle: accepts.boolean,
  external: accepts.strings,
  maxParallel: accepts.positiveInteger,
};

/**
 * Splits executor options into settings and Slurm parameters, the one place
 * that knows which is which, and checks them at run time: an object, every
 * key a setting or a parameter (with "did you mean"), and each setting's
 * value. Settings named in `except` (ones the caller does not take) count as
 * unknown. The parameters' values are left to `parseParameters`.
 */
export function splitOptions(
  what: string,
  options: ExecutorSettings & SlurmParametersInput,
  except: readonly (keyof ExecutorSettings)[] = [],
  parameterNames: readonly string[] = PARAMETER_NAMES,
): { settings: ExecutorSettings; input: SlurmParametersInput } {
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new ParameterError(what, [`Expected an options object with at least \`folder\`, got ${showValue(options)}`]);
  const names = (Object.keys(SETTINGS_SHAPE) as (keyof ExecutorSettings)[]).filter((k) => !except.includes(k));
  const settings: Record<string, unknown> = {};
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if ((names as string[]).includes(key)) settings[key] = value;
    else input[key] = value;
  }
  const problems = [...unknownKeyProblems(options, [...names, ...parameterNames]), ...valueProblems(settings, SETTINGS_SHAPE)];
  if (problems.length) throw new ParameterError(what, problems);
  return { settings: settings as unknown as ExecutorSettings, input: input as SlurmParametersInput };
}
