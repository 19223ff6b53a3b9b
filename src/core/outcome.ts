import { JobEndedWithoutResultError, NodeUnusableError, TaskFailedError } from "../base/errors.js";
import type { JobState } from "../base/job-state.js";
import type { JobOutcome, TaskRun } from "./job.js";
import type { ResultFile } from "../protocol/records.js";
import type { Job } from "./job.js";

/** Turns a result file into the job's outcome. */
export function outcomeFromResult(job: Job<unknown>, result: ResultFile): JobOutcome {
  const ran = runOfResult(result);
  if (result.ok) return { state: "COMPLETED", value: result.value, ran };
  const { error } = result;
  return {
    state: "FAILED",
    ran,
    error: new TaskFailedError(
      { jobId: job.id, taskIndex: job.taskIndex, logPath: job.paths.stderr, host: result.host },
      { name: error.name, message: error.message, stack: error.stack },
      { ...(error.exitCode !== undefined ? { exitCode: error.exitCode } : {}), ...(error.signal !== undefined ? { signal: error.signal } : {}) },
    ),
  };
}

/** Where, when and by which job a result says its task ran, and what it used when it says. */
export function runOfResult(result: ResultFile): TaskRun {
  return { host: result.host, startedAt: result.startedAt, endedAt: result.endedAt, jobId: result.jobId, ...(result.usage ? { usage: result.usage } : {}) };
}

/** The last `lines` lines of a log. */
export function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

/** The line an sbatch script writes when the node has no usable Node.js (src/slurm/script.ts); a task cancelled for it reads the line with `(cancelled before it started)`. */
const NODE_UNUSABLE = /^slurmkit: no usable Node\.js on node (\S+): (.*?)( \(cancelled before it started\))?$/m;

const MEMORY_KILL = /Exceeded (job|step) memory limit|oom[-_ ]kill|Out Of Memory/i;

/**
 * The outcome of a job that ended without a result. Without cgroups Slurm says
 * FAILED for a job killed over its memory limit; the log tells it apart, and
 * the state becomes OUT_OF_MEMORY.
 */
export function outcomeWithoutResult(job: Job<unknown>, state: JobState, stderr: string, cause?: unknown): JobOutcome {
  const logTail = tail(stderr);
  const unusable = NODE_UNUSABLE.exec(stderr);
  if (unusable) {
    const location = { jobId: job.id, taskIndex: job.taskIndex, logPath: job.paths.stderr };
    return { state, error: new NodeUnusableError(location, state, logTail, { node: unusable[1]!, reason: unusable[2]!, cancelled: unusable[3] !== undefined }) };
  }
  const final: JobState = (state === "FAILED" || state === "UNKNOWN") && MEMORY_KILL.test(stderr) ? "OUT_OF_MEMORY" : state;
  return {
    state: final,
    error: new JobEndedWithoutResultError({ jobId: job.id, taskIndex: job.taskIndex, logPath: job.paths.stderr }, final, logTail, cause === undefined ? {} : { cause }),
  };
}
