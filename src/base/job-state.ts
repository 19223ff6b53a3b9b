/** The states a job future can be in; the terminal ones never change again. */
export const JOB_STATES = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "UNKNOWN"] as const;

/** A job's state, as Slurm would name it. */
export type JobState = (typeof JOB_STATES)[number];

const TERMINAL: ReadonlySet<JobState> = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"]);

/** The states a settled future can have: every state but PENDING and RUNNING (UNKNOWN included). */
export const END_STATES: readonly JobState[] = JOB_STATES.filter((s) => s !== "PENDING" && s !== "RUNNING");

/** Whether a state is final. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

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
export function parseJobState(text: string): JobState {
  const word = text.trim().split(/\s+/)[0]?.replace(/\+$/, "") ?? "";
  return ALIASES[word.toUpperCase()] ?? "UNKNOWN";
}
