import type { JobState } from "../base/job-state.js";

/** PBS's job substates for a finished job (`job.h`): deleted, ended, and failed (a limit, a hook). */
const SUBSTATE_TERMINATED = 91;

/** Exit_status values PBS sets itself (`job.h`, JOB_EXEC_*), for jobs its MoM killed or could not start. */
const EXEC_KILL_VMEM = -26;
const EXEC_KILL_MEM = -27;
const EXEC_KILL_WALLTIME = -29;
const EXEC_NODE_LOST = [-3, -11, -14, -20];

/** What a PBS job's state is made of, as qstat -f shows it. */
export interface PbsStateFields {
  /** `job_state`: Q, H, W, T, S, U, R, E, B, X, F or M. */
  readonly state: string;
  readonly substate?: number | undefined;
  readonly exitStatus?: number | undefined;
}

/**
 * A PBS job's state as slurmkit's words: queued, held, waiting, in transit
 * and moved are PENDING; running, exiting and a begun array RUNNING (a
 * suspended job still holds its node); a finished (F) or expired subjob (X)
 * ends by its substate and `Exit_status`: a deleted one CANCELLED, one over
 * its walltime TIMEOUT, over its memory OUT_OF_MEMORY, a node lost
 * NODE_FAIL, 0 COMPLETED, and any other status (a signal is 256 + n) FAILED.
 */
export function pbsJobState(f: PbsStateFields): JobState {
  switch (f.state) {
    case "Q":
    case "H":
    case "W":
    case "T":
    case "M":
      return "PENDING";
    case "R":
    case "E":
    case "B":
    case "S":
    case "U":
      return "RUNNING";
    case "F":
    case "X":
      return endedState(f);
    default:
      return "UNKNOWN";
  }
}

function endedState(f: PbsStateFields): JobState {
  const status = f.exitStatus;
  if (f.substate === SUBSTATE_TERMINATED) return "CANCELLED";
  // No exit status: a job that never ran (deleted while queued, or by PBS when its dependency failed), or a subjob
  // (X) that qstat fakes from its array when the server keeps no history, which the run folder decides.
  if (status === undefined) return f.state === "F" ? "CANCELLED" : "UNKNOWN";
  if (status === EXEC_KILL_WALLTIME) return "TIMEOUT";
  if (status === EXEC_KILL_MEM || status === EXEC_KILL_VMEM) return "OUT_OF_MEMORY";
  if (EXEC_NODE_LOST.includes(status)) return "NODE_FAIL";
  return status === 0 ? "COMPLETED" : "FAILED";
}

/** The raw state text slurmkit shows for a PBS job: `F (Exit_status 3)`, `R`. */
export function rawPbsState(f: PbsStateFields): string {
  return f.exitStatus === undefined ? f.state : `${f.state} (Exit_status ${f.exitStatus})`;
}
