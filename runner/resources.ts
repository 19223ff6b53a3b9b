export { allowedCpus, parseCpuList } from "../src/core/job-environment.js";

/** What one slot of a worker may use. */
export interface SlotShare {
  /** GPU ids for CUDA_VISIBLE_DEVICES, or undefined when the element has none (or they do not divide evenly). */
  readonly gpus: readonly string[] | undefined;
  /** CPU ids to pin the slot to, or undefined when the node does not allow pinning. */
  readonly cpus: readonly number[] | undefined;
}

/**
 * Splits an element's GPUs and CPUs between its slots, so that each slot gets
 * one task's share and no slot sees another's: `slots` equal groups of the
 * GPUs in CUDA_VISIBLE_DEVICES, and `cpusPerTask` CPUs each. CPUs are pinned
 * only when the process may use exactly the element's CPUs (slots ×
 * cpusPerTask): a node that does not confine jobs to their CPUs shows all of
 * its own, and pinning there would stack the slots of several elements.
 */
export function shareSlots(slots: number, cpusPerTask: number, visibleGpus: string | undefined, cpus: readonly number[]): SlotShare[] {
  const gpus =
    visibleGpus
      ?.split(",")
      .map((g) => g.trim())
      .filter((g) => g !== "") ?? [];
  const gpusEach = gpus.length > 0 && gpus.length % slots === 0 ? gpus.length / slots : 0;
  const pin = slots > 1 && cpus.length === slots * cpusPerTask;
  return Array.from({ length: slots }, (_, s) => ({
    gpus: gpusEach ? gpus.slice(s * gpusEach, (s + 1) * gpusEach) : undefined,
    cpus: pin ? cpus.slice(s * cpusPerTask, (s + 1) * cpusPerTask) : undefined,
  }));
}
