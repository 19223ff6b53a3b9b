import { TransportError } from "../base/errors.js";
import type { FilePart } from "../protocol/atomic.js";

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
  /**
   * Reads a file from byte `offset` to its end (empty at or past the end):
   * how readers follow a record stream that grows. Rejects with code ENOENT
   * if it does not exist. Optional: without it, the whole file is read and
   * the part before `offset` dropped.
   */
  readFrom?(path: string, offset: number): Promise<Buffer>;
  /**
   * Reads up to `into.length` bytes of a file from byte `offset` into
   * `into`, and resolves how many it read (fewer at the file's end, 0 at or
   * past it): how readers go through a large stream in one reused buffer.
   * Rejects with code ENOENT if the file does not exist. Optional: readers
   * fall back to readFrom.
   */
  readInto?(path: string, offset: number, into: Buffer): Promise<number>;
  /** Writes a file atomically (temporary name, then rename). */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /**
   * Writes a file atomically from parts at their offsets, each written
   * before the next is asked for (a part's buffer may be reused): how a
   * large file (a million tasks' spec) is written without being held whole.
   * Optional: writers fall back to writeFile.
   */
  writeFileParts?(path: string, parts: Iterable<FilePart>): Promise<void>;
  /**
   * Creates a file that must not exist yet (O_CREAT | O_EXCL, atomic on local
   * file systems and NFS): true if this call created it, false if it existed.
   */
  createExclusive(path: string, data: Uint8Array | string): Promise<boolean>;
  /** Lists a folder's entry names; [] if it does not exist. */
  list(path: string): Promise<string[]>;
  /** Makes a folder and its parents. */
  mkdir(path: string): Promise<void>;
  /** Closes a connection, if the transport keeps one. */
  close?(): void;
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

/** `path` from byte `offset` on, through the transport's `readFrom`, or its whole file cut where it has none. */
export async function readFrom(transport: Pick<Transport, "readFile" | "readFrom">, path: string, offset: number): Promise<Buffer> {
  if (transport.readFrom) return transport.readFrom(path, offset);
  const whole = await transport.readFile(path);
  return whole.subarray(Math.min(offset, whole.length));
}
