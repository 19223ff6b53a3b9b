// The schedulers slurmkit knows, in the order autoExecutor looks for them and
// jobEnvironment() reads their variables. A new scheduler adds one entry here.
import type { NodeSide } from "../core/node-side.js";
import type { Executor } from "../engine/executor.js";
import { SlurmExecutor, type SlurmExecutorOptions } from "../slurm/executor.js";
import { slurmNode } from "../slurm/node.js";
import { slurmAvailable } from "../slurm/scheduler.js";
import type { Transport } from "../transport/transport.js";

/** A scheduler that autoExecutor can find and jobEnvironment() can read. */
export interface KnownScheduler {
  readonly name: string;
  /** What a task on its nodes reads of it. */
  readonly node: NodeSide;
  /** Whether its controller answers through `transport` (the local machine by default). */
  available(transport?: Transport): Promise<boolean>;
  /** Its executor, for autoExecutor's options. */
  executor(options: SlurmExecutorOptions): Executor;
}

/** Every scheduler slurmkit knows; local processes are the fallback of each user. */
export const SCHEDULERS: readonly KnownScheduler[] = [{ name: "Slurm", node: slurmNode, available: (transport) => slurmAvailable(transport), executor: (options) => new SlurmExecutor(options) }];
