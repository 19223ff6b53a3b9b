import { Watcher } from "../engine/watcher.js";
import type { Transport } from "../transport/transport.js";
import { forgetScheduler, sharedScheduler, type SchedulerCallCounts } from "./scheduler.js";

const key = (transport: Transport): string => `slurm:${transport.key}`;

/** The watcher of Slurm jobs on a transport: one per transport per process, shared by every executor on it. */
export function slurmWatcher(transport: Transport): Watcher<SchedulerCallCounts> {
  return Watcher.shared(key(transport), () => new Watcher(sharedScheduler(transport), transport, () => forgetScheduler(transport.key)));
}

/** The transport's executor closed: its watcher (and scheduler) go once no job is tracked. */
export function releaseSlurmWatcher(transport: Transport): void {
  Watcher.release(key(transport));
}
