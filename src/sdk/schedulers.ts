// The schedulers slurmkit knows: how autoExecutor finds each, which one's
// variables jobEnvironment() reads, and which rebuilds a submission's futures
// by its manifest's kind. A new scheduler adds one entry here.
import { RunFolderError } from "../base/errors.js";
import type { NodeSide } from "../core/node-side.js";
import type { Executor } from "../engine/executor.js";
import type { SchedulerReload } from "../engine/reload.js";
import { localReload } from "../local/reloaded.js";
import { SlurmExecutor, type SlurmExecutorOptions } from "../slurm/executor.js";
import { slurmNode } from "../slurm/node.js";
import { slurmReload } from "../slurm/reload.js";
import { slurmAvailable } from "../slurm/scheduler.js";
import { PbsExecutor } from "../pbs/executor.js";
import type { PbsParametersInput } from "../pbs/parameters.js";
import { pbsNode } from "../pbs/node.js";
import { pbsReload } from "../pbs/reload.js";
import { pbsAvailable } from "../pbs/scheduler.js";
import type { Transport } from "../transport/transport.js";

/** A scheduler that autoExecutor can find, jobEnvironment() can read, and loadJobs can reload. */
export interface KnownScheduler {
  readonly name: string;
  /** Its manifests' `kind`. */
  readonly kind: string;
  /** What a task on its nodes reads of it. */
  readonly node: NodeSide;
  /** Whether its controller answers through `transport` (the local machine by default). */
  available(transport?: Transport): Promise<boolean>;
  /** Its executor, for autoExecutor's options. */
  executor(options: SlurmExecutorOptions): Executor;
  /** How its submissions' futures are rebuilt, on `transport`. */
  reload(transport: Transport): SchedulerReload;
}

/** Every scheduler slurmkit knows, in the order autoExecutor tries them; local processes are the fallback of each user. */
export const SCHEDULERS: readonly KnownScheduler[] = [
  {
    name: "Slurm",
    kind: "slurm",
    node: slurmNode,
    available: (transport) => slurmAvailable(transport),
    executor: (options) => new SlurmExecutor(options),
    reload: slurmReload,
  },
  {
    name: "PBS",
    kind: "pbs",
    node: pbsNode,
    available: (transport) => pbsAvailable(transport),
    executor: (options) => new PbsExecutor(options as PbsParametersInput & SlurmExecutorOptions),
    reload: pbsReload,
  },
];

/** How submissions of manifest kind `kind` are rebuilt; a kind no scheduler has is a RunFolderError naming `manifest`. */
export function reloadOf(kind: string, transport: Transport, manifest: string): SchedulerReload {
  if (kind === "local") return localReload();
  const scheduler = SCHEDULERS.find((s) => s.kind === kind);
  if (!scheduler) throw new RunFolderError(manifest, `${manifest}: its kind '${kind}' is no scheduler this slurmkit knows (it knows ${[...SCHEDULERS.map((s) => s.kind), "local"].join(", ")})`);
  return scheduler.reload(transport);
}
