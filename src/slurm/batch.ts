// What the batch machinery of this folder (plan, launch, futures, pools,
// recovery) asks of a batch scheduler: Slurm's here, PBS's in src/pbs/.
import type { Watcher } from "../engine/watcher.js";
import type { WatchedScheduler } from "../engine/scheduler.js";
import type { Transport } from "../transport/transport.js";
import type { SlurmParameters, SlurmParametersInput } from "./parameters.js";
import type { SacctUsage } from "./parse.js";
import type { ClusterLimits } from "./scheduler.js";
import type { ScriptDialect } from "./script.js";

/** A batch scheduler's commands on one transport: submit, follow, find by tag, cancel, and its limits. */
export interface BatchScheduler extends WatchedScheduler {
  /** Kill a scheduler command that takes longer than this. */
  readonly timeoutMs: number;
  /** The limits that decide how a submission is split and packed. */
  limits(): Promise<ClusterLimits>;
  /**
   * Submits a script with sbatch-style long options (`--array=0-3`,
   * `--export=...`); its job id in slurmkit's form. `tag` is the one the
   * script carries (submissionTag), for a scheduler whose command-line
   * options would replace it.
   */
  submit(script: string, args?: readonly string[], tag?: string): Promise<string>;
  /** The ids of this user's jobs that carry `tag` (an array's id for an array). */
  tagged(tag: string): Promise<string[]>;
  /** Cancels a job, an array, or an element (`A_i`). */
  cancel(jobId: string): Promise<void>;
  /** What the scheduler's accounting says jobs used, by id (`A_i` for elements); undefined when it cannot say. */
  usage(jobIds: readonly string[]): Promise<Map<string, SacctUsage> | undefined>;
}

/** One batch scheduler as the shared machinery sees it. */
export interface BatchSystem {
  /** Its manifests' `kind`. */
  readonly kind: string;
  /** Its name in messages ("Slurm"). */
  readonly name: string;
  /** The scheduler shared by every executor on `transport`. */
  scheduler(transport: Transport): BatchScheduler;
  /** The watcher shared by every executor on `transport`. */
  watcher(transport: Transport): Watcher<object>;
  /** Its scripts' words. */
  readonly script: ScriptDialect;
  /** Its parameters as users write them (`rerun` reads a submission's stored ones): checked, and merged as update() does. */
  readonly parameters: {
    parse(input: SlurmParametersInput): SlurmParameters;
    merge(base: SlurmParametersInput, over: SlurmParametersInput): SlurmParametersInput;
    /** A stored request's parameters as today's (raw options of older versions read as the parameters they set). */
    stored(input: SlurmParametersInput): SlurmParametersInput;
  };
}

const systems = new Map<string, BatchSystem>();

/** Makes a batch system known by its manifests' kind (each system's module does, as it loads), for `rerun`. */
export function registerBatchSystem(system: BatchSystem): BatchSystem {
  systems.set(system.kind, system);
  return system;
}

/** The batch system whose manifests have `kind`; undefined for local processes and unknown kinds. */
export function batchSystemOf(kind: string): BatchSystem | undefined {
  return systems.get(kind);
}
