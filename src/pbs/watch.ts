import { Watcher } from "../engine/watcher.js";
import type { Transport } from "../transport/transport.js";
import { forgetPbsScheduler, type PbsCallCounts, sharedPbsScheduler } from "./scheduler.js";

/** The watcher of PBS jobs on a transport: one per transport per process, shared by every executor on it. */
export function pbsWatcher(transport: Transport): Watcher<PbsCallCounts> {
  return Watcher.shared(`pbs:${transport.key}`, () => new Watcher(sharedPbsScheduler(transport), transport, () => forgetPbsScheduler(transport.key)));
}
