import type { JobState } from "../base/job-state.js";

/** Slurm's state words, long and short, as job states. */
const ALIASES: Record<string, JobState> = {
  PENDING: "PENDING",
  PD: "PENDING",
  REQUEUED: "PENDING",
  REQUEUE_FED: "PENDING",
  REQUEUE_HOLD: "PENDING",
  RESV_DEL_HOLD: "PENDING",
  SPECIAL_EXIT: "PENDING",
  CONFIGURING: "RUNNING",
  RUNNING: "RUNNING",
  R: "RUNNING",
  COMPLETING: "RUNNING",
  CG: "RUNNING",
  RESIZING: "RUNNING",
  SIGNALING: "RUNNING",
  STAGE_OUT: "RUNNING",
  STOPPED: "RUNNING",
  SUSPENDED: "RUNNING",
  COMPLETED: "COMPLETED",
  CD: "COMPLETED",
  FAILED: "FAILED",
  F: "FAILED",
  BOOT_FAIL: "FAILED",
  DEADLINE: "TIMEOUT",
  REVOKED: "CANCELLED",
  CANCELLED: "CANCELLED",
  CA: "CANCELLED",
  TIMEOUT: "TIMEOUT",
  TO: "TIMEOUT",
  OUT_OF_MEMORY: "OUT_OF_MEMORY",
  OOM: "OUT_OF_MEMORY",
  NODE_FAIL: "NODE_FAIL",
  NF: "NODE_FAIL",
  PREEMPTED: "PREEMPTED",
  PR: "PREEMPTED",
};

/** Maps a state as squeue or sacct prints it ("CANCELLED by 0", "RUNNING", "CD") to a JobState. */
export function parseSlurmState(text: string): JobState {
  const word = text.trim().split(/\s+/)[0]?.replace(/\+$/, "") ?? "";
  return ALIASES[word.toUpperCase()] ?? "UNKNOWN";
}
