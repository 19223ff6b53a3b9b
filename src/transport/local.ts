import { mkdir, open, readFile, readdir } from "node:fs/promises";
import { createExclusive, writeFileAtomic } from "../protocol/atomic.js";
import type { FilePart } from "../protocol/spec-file.js";
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

/** The transport for this machine: execa and node:fs. */
export class LocalTransport implements Transport {
  readonly key = "local";

  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    // Loaded when first needed: execa is ESM-only all the way down, and a CommonJS project that
    // require()s slurmkit through a CommonJS loader (tsx) could not load it eagerly.
    const { execa } = await import("execa");
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
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, offset);
      return bytes.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async readInto(path: string, offset: number, into: Buffer): Promise<number> {
    const handle = await open(path, "r");
    try {
      let got = 0;
      // A read may return fewer bytes than asked before the end (a pipe, a signal): read on until the buffer is full or the file ends.
      while (got < into.length) {
        const { bytesRead } = await handle.read(into, got, into.length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got;
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
