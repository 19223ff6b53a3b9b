import { spawn } from "node:child_process";
import { type FileHandle, mkdir, open, readFile, readdir } from "node:fs/promises";
import { createExclusive, writeFileAtomic } from "../protocol/atomic.js";
import type { FilePart } from "../protocol/atomic.js";
import type { RunOptions, RunResult, Transport } from "./transport.js";

/** Variables LocalExecutor sets for the runner. */
const RUNNER_VARIABLES = new Set(["SLURMKIT_TASK_INDEX", "SLURMKIT_JOB_ID"]);

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

/** A command line as messages show it. */
const commandLine = (program: string, args: readonly string[]) => [program, ...args].join(" ");
/** Output as a string without its final newline, as callers compare it. */
const text = (chunks: Buffer[]) =>
  Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");

/**
 * The transport for this machine: node:child_process and node:fs. (Not
 * execa: importing it costs about 140 ms, which every `slurmkit` command
 * and every script's first scheduler command would pay.)
 */
export class LocalTransport implements Transport {
  readonly key = "local";

  run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(program, args, { env: schedulerEnv(), stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on("data", (d: Buffer) => out.push(d));
      child.stderr?.on("data", (d: Buffer) => err.push(d));
      let timedOut = false;
      let done = false;
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              child.kill("SIGTERM");
              // One that ignores SIGTERM is killed for good a few seconds later.
              setTimeout(() => child.kill("SIGKILL"), 5000).unref();
            }, options.timeoutMs);
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        settle();
      };
      child.on("error", (error: NodeJS.ErrnoException) =>
        finish(() =>
          error.code === "ENOENT"
            ? resolve({ stdout: "", stderr: `${program}: command not found`, exitCode: 127 })
            : reject(new Error(`Command failed to start (${error.code ?? error.message}): ${commandLine(program, args)}`, { cause: error })),
        ),
      );
      child.on("close", (code, signal) =>
        finish(() => {
          if (timedOut) reject(new Error(`Command timed out after ${options.timeoutMs} milliseconds: ${commandLine(program, args)}`));
          else if (code === null) reject(new Error(`Command was killed with ${signal}: ${commandLine(program, args)}`));
          else resolve({ stdout: text(out), stderr: text(err), exitCode: code });
        }),
      );
      if (options.input !== undefined && child.stdin) {
        // A command that exits without reading its input is not an error of ours.
        child.stdin.on("error", () => undefined);
        child.stdin.end(options.input);
      }
    });
  }

  readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  writeFile(path: string, data: Uint8Array | string): Promise<void> {
    return writeFileAtomic(path, data);
  }

  writeFileParts(path: string, parts: Iterable<FilePart>): Promise<void> {
    return writeFileAtomic(path, parts);
  }

  createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
    return createExclusive(path, data);
  }

  async readFrom(path: string, offset: number): Promise<Buffer> {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      if (size <= offset) return Buffer.alloc(0);
      const bytes = Buffer.allocUnsafe(size - offset);
      return bytes.subarray(0, await readFully(handle, offset, bytes));
    } finally {
      await handle.close();
    }
  }

  async readInto(path: string, offset: number, into: Buffer): Promise<number> {
    const handle = await open(path, "r");
    try {
      return await readFully(handle, offset, into);
    } finally {
      await handle.close();
    }
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

/** Reads from `offset` into `into` until it is full or the file ends (a read may return fewer bytes before the end: a pipe, a signal); the bytes read. */
async function readFully(handle: FileHandle, offset: number, into: Buffer): Promise<number> {
  let got = 0;
  while (got < into.length) {
    const { bytesRead } = await handle.read(into, got, into.length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
