import type { CodeOptions } from "../code/options.js";
import type { SshTarget } from "../transport/ssh-target.js";
import type { Transport } from "../transport/transport.js";
import type { SlurmParametersInput } from "./parameters.js";
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

const SETTINGS: ReadonlySet<string> = new Set<keyof ExecutorSettings>(["folder", "nodeBinary", "transport", "ssh", "pathMap", "bundle", "external", "maxParallel"]);

/**
 * Splits executor options into settings and Slurm parameters, the one place
 * that knows which is which. Settings named in `except` (ones the caller does
 * not take) stay with the parameters, whose check rejects them as unknown.
 */
export function splitOptions(options: ExecutorSettings & SlurmParametersInput, except: readonly (keyof ExecutorSettings)[] = []): { settings: ExecutorSettings; input: SlurmParametersInput } {
  const settings: Record<string, unknown> = {};
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (SETTINGS.has(key) && !except.includes(key as keyof ExecutorSettings)) settings[key] = value;
    else input[key] = value;
  }
  return { settings: settings as unknown as ExecutorSettings, input: input as SlurmParametersInput };
}
