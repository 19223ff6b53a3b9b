import type { JobState } from "./job-state.js";

/** Options shared by every slurmkit error. */
export interface SlurmkitErrorOptions {
  /** The error that led to this one. */
  readonly cause?: unknown;
}

/**
 * The base class of every error slurmkit throws. `shortMessage` is one line;
 * `message` adds the detail (stderr, a log tail, a remote stack).
 */
export class SlurmkitError extends Error {
  override name = "SlurmkitError";
  /** The first line of `message`, without the detail. */
  readonly shortMessage: string;

  constructor(shortMessage: string, detail = "", options: SlurmkitErrorOptions = {}) {
    super(detail ? `${shortMessage}\n\n${detail}` : shortMessage, options.cause === undefined ? {} : { cause: options.cause });
    this.shortMessage = shortMessage;
  }
}

/** Bad parameters, task specs or options: nothing was submitted. */
export class ParameterError extends SlurmkitError {
  override name = "ParameterError";
  /** One line per problem, each naming the key and what is accepted. */
  readonly problems: readonly string[];

  constructor(what: string, problems: readonly string[]) {
    super(`Invalid ${what}: ${problems[0] ?? "unknown problem"}`, problems.length > 1 ? problems.slice(1).join("\n") : "");
    this.problems = problems;
  }
}

/**
 * A scheduler command failed: the command as run, its exit code (-1 when it
 * could not run) and its stderr. SubmissionError (sbatch) and SchedulerError
 * (every other command) are its two kinds.
 */
export class CommandError extends SlurmkitError {
  override name = "CommandError";
  /** The command as run: program and arguments. */
  readonly command: readonly string[];
  readonly exitCode: number;
  readonly stderr: string;

  constructor(command: readonly string[], exitCode: number, stderr: string, options: SlurmkitErrorOptions = {}) {
    super(`Command failed with exit code ${exitCode}: ${command.join(" ")}`, stderr.trim(), options);
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** sbatch refused the job, or could not be run. */
export class SubmissionError extends CommandError {
  override name = "SubmissionError";
}

/** A scheduler command other than sbatch (squeue, sacct, scancel) failed. */
export class SchedulerError extends CommandError {
  override name = "SchedulerError";
}

/** Where a task ran, for error messages. */
export interface TaskLocation {
  /** The job id, `A_i` for array elements. */
  readonly jobId: string;
  /** The task's index in its submission. */
  readonly taskIndex: number;
  /** The task's stderr log. */
  readonly logPath: string;
}

/** The task ran and failed: it threw, or its command exited non-zero. */
export class TaskFailedError extends SlurmkitError {
  override name = "TaskFailedError";
  readonly jobId: string;
  readonly taskIndex: number;
  readonly logPath: string;
  /** The host the task ran on. */
  readonly host: string;
  /** The remote error's name, message and stack. */
  readonly remote: { readonly name: string; readonly message: string; readonly stack: string };
  /** For command tasks: the exit code, or undefined if a signal ended it. */
  readonly exitCode: number | undefined;
  /** For command tasks ended by a signal: its name. */
  readonly signal: string | undefined;

  constructor(location: TaskLocation & { readonly host: string }, remote: { name: string; message: string; stack: string }, command: { exitCode?: number; signal?: string } = {}) {
    super(`Task ${location.taskIndex} of job ${location.jobId} failed on ${location.host}: ${remote.message}`, `Remote stack:\n${remote.stack}\n\nLogs: ${location.logPath}`);
    this.jobId = location.jobId;
    this.taskIndex = location.taskIndex;
    this.logPath = location.logPath;
    this.host = location.host;
    this.remote = remote;
    this.exitCode = command.exitCode;
    this.signal = command.signal;
  }
}

/** The job left the scheduler without writing a result: killed, cancelled, timed out, or its runner never started. */
export class JobEndedWithoutResultError extends SlurmkitError {
  override name = "JobEndedWithoutResultError";
  readonly jobId: string;
  readonly taskIndex: number;
  readonly logPath: string;
  /** The scheduler's final state. */
  readonly state: JobState;
  /** The last lines of the task's stderr log. */
  readonly logTail: string;

  constructor(location: TaskLocation, state: JobState, logTail: string, options: SlurmkitErrorOptions = {}, summary?: string) {
    super(
      summary ?? `Job ${location.jobId} (task ${location.taskIndex}) ended with state ${state} and wrote no result`,
      `${logTail.trim() ? `Last lines of ${location.logPath}:\n${logTail.trimEnd()}` : `${location.logPath} is empty or missing.`}`,
      options,
    );
    this.jobId = location.jobId;
    this.taskIndex = location.taskIndex;
    this.logPath = location.logPath;
    this.state = state;
    this.logTail = logTail;
  }
}

/**
 * The task never ran: the node had no usable Node.js for slurmkit's runner
 * (not found, or older than it supports). Tasks of the same submission that
 * had not started were cancelled, and fail with this error too.
 */
export class NodeUnusableError extends JobEndedWithoutResultError {
  override name = "NodeUnusableError";
  /** The node that was checked. */
  readonly node: string;
  /** What was wrong: the path tried, and it was missing or its version. */
  readonly reason: string;

  constructor(location: TaskLocation, state: JobState, logTail: string, found: { readonly node: string; readonly reason: string; readonly cancelled: boolean }) {
    const by = found.cancelled ? " (found by another task of its submission, so this one was cancelled before it started)" : "";
    super(
      location,
      state,
      logTail,
      {},
      `Task ${location.taskIndex} (job ${location.jobId}) did not run: no usable Node.js on node ${found.node}${by}: ${found.reason}. Fix: load Node.js in the executor's setup (for example modules(["nodejs"])), or set nodeBinary to a Node.js 18 or newer on the nodes`,
    );
    this.node = found.node;
    this.reason = found.reason;
  }
}

/** A file in a run folder is corrupt, truncated, or was written by another slurmkit version. */
export class RunFolderError extends SlurmkitError {
  override name = "RunFolderError";
  /** The file. */
  readonly path: string;

  /** `message` names the file and says what is wrong with it. */
  constructor(path: string, message: string, options: SlurmkitErrorOptions = {}) {
    super(message, "", options);
    this.path = path;
  }
}

/**
 * The reason of a task's `ctx.signal`: Slurm warned that this attempt ends
 * soon, because its time limit is near (TIMEOUT) or it is being preempted
 * (PREEMPTED), as Slurm itself says (the job's PreemptTime).
 */
export class TaskInterruptedError extends SlurmkitError {
  override name = "TaskInterruptedError";
  /** How the attempt is ending. */
  readonly ending: "TIMEOUT" | "PREEMPTED";
  /** The attempt, from 0. */
  readonly attempt: number;

  constructor(ending: "TIMEOUT" | "PREEMPTED", attempt: number) {
    super(ending === "TIMEOUT" ? `Attempt ${attempt} is near its time limit` : `Attempt ${attempt} is being preempted`);
    this.ending = ending;
    this.attempt = attempt;
  }
}

/** A wait with `timeoutMs` ran out before the job ended; the job was not cancelled and goes on. */
export class WaitTimeoutError extends SlurmkitError {
  override name = "WaitTimeoutError";
  constructor(
    readonly jobId: string,
    /** The job's last known state when the wait ended. */
    readonly state: JobState,
    readonly timeoutMs: number,
  ) {
    super(`Waited ${timeoutMs} ms for job ${jobId}, which is still ${state}; it was not cancelled`);
  }
}

/**
 * sbatch's answer was lost (the connection dropped while it ran), and the job
 * could not be told apart by its tag: it may or may not exist. Nothing was
 * submitted again; `loadJobs` on the executor's folder finds the job by its
 * tag if it exists.
 */
export class AmbiguousSubmissionError extends SlurmkitError {
  override name = "AmbiguousSubmissionError";
  constructor(
    /** The comment the job carries if it exists (`slurmkit:<folder>:<script>`). */
    readonly tag: string,
    why: string,
    cause: unknown,
  ) {
    super(`sbatch's answer was lost and the job tagged ${tag} is uncertain (${why}); nothing was submitted again: loadJobs on the executor's folder finds the job if it exists`, "", { cause });
  }
}

/** Where an SSH operation failed. */
export type SshStage = "connect" | "host key" | "auth" | "exec" | "sftp";

/** An SSH operation failed; `stage` says where, and the message never holds a key or passphrase. */
export class TransportError extends SlurmkitError {
  override name = "TransportError";
  readonly stage: SshStage;
  /** `user@host:port`. */
  readonly destination: string;
  /** True when the cluster could not be reached: connect, host key or auth failed, or the connection dropped mid-operation. */
  readonly unreachable: boolean;
  /** "ENOENT" when a file or folder does not exist. */
  readonly code: string | undefined;

  constructor(stage: SshStage, destination: string, message: string, options: { detail?: string; unreachable?: boolean; code?: string; cause?: unknown } = {}) {
    super(`ssh ${destination} (${stage}): ${message}`, options.detail ?? "", options.cause === undefined ? {} : { cause: options.cause });
    this.stage = stage;
    this.destination = destination;
    this.unreachable = options.unreachable ?? (stage === "connect" || stage === "host key" || stage === "auth");
    this.code = options.code;
  }
}

/** An unset variable that a runtime value needs. */
export class UnsetVariableError extends SlurmkitError {
  override name = "UnsetVariableError";
  constructor(
    readonly variable: string,
    readonly template: string,
    host: string,
  ) {
    super(`Runtime value \`${template}\` needs $${variable}, which is not set on ${host}`);
  }
}

/** A mistake in how the `slurmkit` bin was called: the message says what is accepted; exit code 2. */
export class UsageError extends SlurmkitError {
  override readonly name = "UsageError";
}

/**
 * A task's container could not start: its runtime is not installed on the
 * node, its image or a bind's source is missing. Thrown before the submit
 * where the client can tell (a file path), else on the node, where it is the
 * task's error (`TaskFailedError.remote.name` is "ContainerError").
 */
export class ContainerError extends SlurmkitError {
  override name = "ContainerError";
  constructor(
    /** What is wrong: the runtime, the image, a bind's source, or which GPUs the task holds. */
    readonly missing: "runtime" | "image" | "bind" | "gpus",
    /** Where it was looked for: a node's name, or "the login node" before the submit. */
    readonly host: string,
    problem: string,
    fix: string,
  ) {
    super(`${problem} on ${host}: ${fix}`);
  }
}
