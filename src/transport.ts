import { execa } from "execa";
import { mkdir, readFile, readdir } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";
import { SlurmkitError } from "./errors.js";

/** What a finished command printed. */
export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Options of Transport.run. */
export interface RunOptions {
  /** Written to the command's stdin. */
  readonly input?: string;
  /** Kill the command after this long; it then rejects. */
  readonly timeoutMs?: number;
}

/** Runs commands and moves files where the scheduler is: this machine (LocalTransport) or a login node over SSH (SshTransport). */
export interface Transport {
  /** Identifies the machine; one watcher serves all executors with the same key. */
  readonly key: string;
  /**
   * Runs `program` with `args`, each passed intact. Resolves with the exit
   * code (127 when the program is not found, as a shell says); rejects on a
   * timeout or when the transport itself fails.
   */
  run(program: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Reads a file; rejects with code ENOENT if it does not exist. */
  readFile(path: string): Promise<Buffer>;
  /** Writes a file atomically (temporary name, then rename). */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** Lists a folder's entry names; [] if it does not exist. */
  list(path: string): Promise<string[]>;
  /** Makes a folder and its parents. */
  mkdir(path: string): Promise<void>;
  /** Closes a connection, if the transport keeps one. */
  close?(): void;
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

  constructor(
    stage: SshStage,
    destination: string,
    message: string,
    options: { detail?: string; unreachable?: boolean; code?: string; cause?: unknown } = {},
  ) {
    super(`ssh ${destination} (${stage}): ${message}`, options.detail ?? "", options.cause === undefined ? {} : { cause: options.cause });
    this.stage = stage;
    this.destination = destination;
    this.unreachable = options.unreachable ?? (stage === "connect" || stage === "host key" || stage === "auth");
    this.code = options.code;
  }
}

/** A rejection handler for optional reads: `fallback` for a missing file or a failed command, a rethrow when the cluster is out of reach. */
export function unlessUnreachable<T>(fallback: T): (error: unknown) => T {
  return (error) => {
    if (isUnreachable(error)) throw error;
    return fallback;
  };
}

/** True for an error that means the cluster could not be reached, as opposed to a missing file or a failed command. */
export function isUnreachable(error: unknown): boolean {
  return error instanceof TransportError && error.unreachable;
}

/** Variables LocalExecutor sets for the runner. */
const RUNNER_VARIABLES = new Set(["SLURMKIT_TASK_INDEX", "SLURMKIT_JOB_ID", "SLURMKIT_INDEX_OFFSET"]);

/**
 * The environment for scheduler commands: without the SLURM_* variables of an
 * enclosing job (but keeping SLURM_CONF) and without the variables a runner
 * sets for its task, so a task that submits jobs does not pass its own
 * identity on.
 */
export function schedulerEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if ((k.startsWith("SLURM_") && k !== "SLURM_CONF") || RUNNER_VARIABLES.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The transport for this machine: execa and node:fs. */
export class LocalTransport implements Transport {
  readonly key = "local";

  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await execa(program, args, {
      reject: false,
      extendEnv: false,
      env: schedulerEnv(),
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
      ...(options.input === undefined ? { stdin: "ignore" as const } : { input: options.input }),
    });
    if (result.failed && result.exitCode === undefined && !result.timedOut && (result.cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
      return { stdout: "", stderr: `${program}: command not found`, exitCode: 127 };
    }
    if (result.failed && (result.exitCode === undefined || result.timedOut)) {
      throw result;
    }
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
  }

  readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  writeFile(path: string, data: Uint8Array | string): Promise<void> {
    return writeFileAtomic(path, data);
  }

  async list(path: string): Promise<string[]> {
    try {
      return await readdir(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }

  async mkdir(path: string): Promise<void> {
    await mkdir(path, { recursive: true });
  }
}
