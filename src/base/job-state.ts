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
