import { AsyncLocalStorage } from "node:async_hooks";
import { spawn, type ChildProcess } from "node:child_process";
import { hostname } from "node:os";
import { closeSync, existsSync, fstatSync, openSync, readlinkSync, readSync, writeSync } from "node:fs";
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import type { ContainerRecord } from "../src/protocol/container.js";
import { adoptConmon, checkContainer, conmonPidFile, containerFolders, killAdopted, onNode, podmanImageMissing, signalContainer, submissionContainer, taskMemMb } from "./container.js";
import { ContainerError } from "../src/base/errors.js";
import { allowedCpus } from "../src/core/job-environment.js";
import { containerLine, physicalGpus, type ContainerCall, type ContainerLine, type NodeContainer } from "./container-line.js";
import { torchEnvironment } from "../src/core/job-environment.js";
import { expandDeep } from "../src/protocol/runtime-value.js";
import { isTask, type CommandRecord, type FunctionRecord, type TaskContainer, type TaskContext, type TaskExport, type TaskRecord } from "../src/protocol/task-record.js";
import { bind, HOST, nodeSide } from "./node.js";

// Running one task's code: a command as a child process, or a function task
// imported and called in this process.

/** A command's non-zero exit, as a failure that keeps the exit code. */
export class CommandFailed extends Error {
  override name = "CommandFailed";
  constructor(
    message: string,
    readonly exitCode?: number,
    readonly signal?: string,
  ) {
    super(message);
  }
}

/**
 * Set when Slurm terminates the job (scancel, time limit): the runner then
 * exits without a result, so the scheduler's state (CANCELLED, TIMEOUT) is
 * what the client reports.
 */
export class Terminated extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`terminated by ${signal}`);
  }
}

/**
 * Where one of a task's outputs goes: a file (its descriptor, which a
 * command gets as is), or a writer (a packed task's: chunks for its
 * worker's log stream).
 */
export interface LogTarget {
  /** The file's descriptor, for a file. */
  readonly fd?: number;
  /** Writes a chunk; false when the writer would rather the caller waited for `drained()`. */
  write(chunk: string | Uint8Array): boolean;
  /** Resolves once everything written has been handed on. */
  drained(): Promise<void>;
}

/** A file as a LogTarget: writes go straight to it. */
export function fileTarget(fd: number): LogTarget {
  return {
    fd,
    write: (chunk) => {
      if (typeof chunk === "string") writeSync(fd, chunk);
      else writeSync(fd, chunk);
      return true;
    },
    drained: () => Promise.resolve(),
  };
}

/** Where a packed (or split) task's output goes: its own log files, or its worker's log streams. */
export interface TaskLogs {
  readonly out: LogTarget;
  readonly err: LogTarget;
}

/** The log files of the packed task whose code is running (function tasks run in-process). */
const currentLogs = new AsyncLocalStorage<TaskLogs>();

/** Routes process.stdout/stderr writes made inside a packed function task to that task's logs. */
export function routeOutput(): void {
  for (const [stream, key] of [
    [process.stdout, "out"],
    [process.stderr, "err"],
  ] as const) {
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const logs = currentLogs.getStore();
      if (!logs) return original(chunk, ...rest);
      logs[key].write(chunk);
      const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof stream.write;
  }
}

/** Children of packed command tasks, for forwarding signals. */
export const children = new Set<ChildProcess>();

/** How a task runs besides its record. */
export interface RunContext {
  readonly logs?: TaskLogs;
  /** Function tasks: what they get besides the argument. */
  readonly ctx: TaskContext;
  /** Function tasks: the argument to use instead of the record's (a checkpoint's). */
  readonly arg?: { readonly value: unknown };
  /** Commands: Slurm's warning signal, passed on to the command (srun's ranks get it from Slurm itself). */
  readonly forward?: NodeJS.Signals;
}

async function runCommand(task: CommandRecord, run: RunContext): Promise<{ exitCode: number }> {
  const { logs } = run;
  const program = bind(task.program);
  const args = task.args.map(bind);
  const env = Object.fromEntries(Object.entries(task.env ?? {}).map(([k, v]) => [k, bind(v)]));
  if (task.torchDistributed) Object.assign(env, await torchEnvironment(nodeSide().environment(process.env), nodeSide().address));
  const cwd = task.cwd === undefined ? undefined : bind(task.cwd);
  const boxed = await inContainer(task.container ?? submissionContainer(), { program, args, env, cwd: resolve(cwd ?? process.cwd()) });
  // Where the command's stderr starts in its file, to quote its last lines if it fails.
  const errAt = fileSize(logs ? logs.err.fd : 2);
  const child = spawn(boxed?.program ?? program, boxed?.args ?? args, {
    stdio: ["ignore", logs ? (logs.out.fd ?? "pipe") : "inherit", logs ? (logs.err.fd ?? "pipe") : "inherit"],
    env: boxed?.env ?? { ...process.env, ...env },
    // In a container, the runtime sets the working directory inside.
    ...(cwd !== undefined && !boxed ? { cwd } : {}),
    // podman's client in a group of its own: a worker that stops the task kills the processes inside, and the client, spared, removes the container.
    ...(boxed?.pidFile ? { detached: true } : {}),
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()).once("error", () => r()));
  const stderrTail = tailOf(logs ? logs.err : undefined, logs ? child.stderr : null, errAt);
  // This command's own container (ctx.container.exec may run several at once).
  const conmon: { pid?: number } = {};
  if (boxed?.pidFile) void adoptConmon(boxed.pidFile, exited, conmon, child.pid);
  let container: NodeJS.Timeout | undefined;
  // A writer, not a file: the command's output passes through here, and waits while the writer is behind.
  if (logs) for (const [from, to] of [[child.stdout, logs.out] as const, [child.stderr, logs.err] as const]) if (from) relay(from, to);
  children.add(child);
  let terminatedBy: NodeJS.Signals | undefined;
  let onTerminated: (() => void) | undefined;
  const passed = new Set<NodeJS.Signals>(["SIGUSR1", ...(run.forward ? [run.forward] : [])]);
  const forward = (signal: NodeJS.Signals) => {
    if (!passed.has(signal)) {
      terminatedBy = signal;
      onTerminated?.();
    }
    // podman's client passes signals on through `runc kill`, which Slurm's own SIGTERM to every process of the job may kill first: the command inside gets them from here.
    // A warning reaches it once; an end both ways.
    const direct = boxed?.pidFile !== undefined && signalContainer(conmon.pid, signal);
    if (!direct || !passed.has(signal)) child.kill(signal);
    // A container that outlives its client's grace is killed here, before Slurm kills the runner and leaves it behind.
    if (!passed.has(signal) && boxed?.pidFile && !container) {
      container = setTimeout(() => killAdopted(conmon.pid === undefined ? [] : [conmon.pid]), CONTAINER_GRACE_MS);
      container.unref();
    }
  };
  const signals = new Set<NodeJS.Signals>(["SIGTERM", "SIGINT", ...passed]);
  for (const signal of signals) process.on(signal, forward);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", reject);
      // "exit", not "close": a background process the command left (`server &`) may hold its output open for hours.
      child.once("exit", (c, s) => resolve([c, s]));
    });
    await outputEnded(child);
    // As a list: no shell ran, so a line with spaces would mislead.
    const shown = `[${[program, ...args].map((a) => JSON.stringify(a)).join(", ")}]`;
    const said = () => {
      const tail = stderrTail();
      return tail ? `\nThe last lines of its stderr:\n${tail}` : "";
    };
    // Slurm signals every process of the job, the command's maybe before this one: a shell that reports its child's
    // TERM or INT (143, 130) may have ended for Slurm's cancel or time limit. Give this process's own signal a moment.
    if (!terminatedBy && (code === 143 || code === 130)) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        onTerminated = resolve;
        timer = setTimeout(resolve, SIGNAL_GRACE_MS);
      });
      clearTimeout(timer);
      onTerminated = undefined;
    }
    if (terminatedBy) throw new Terminated(terminatedBy);
    // Slurm signals every process of the job; the child may die before our own handler runs.
    if (signal === "SIGTERM" || signal === "SIGINT" || signal === "SIGKILL") throw new Terminated(signal);
    if (signal) throw new CommandFailed(`Command was killed with ${signal}: ${shown}${said()}`, undefined, signal);
    if (boxed && code === 125 && boxed.pidFile !== undefined) {
      const missing = await podmanImageMissing(boxed.container);
      if (missing) throw missing;
      throw new CommandFailed(`${boxed.program} could not start the container (exit code 125; its message is in the task's stderr): ${shown}`, code);
    }
    if (code !== 0) throw new CommandFailed(`Command failed with exit code ${code}${boxed ? ` in ${boxed.program}'s container` : ""}: ${shown}${said()}`, code ?? undefined);
    return { exitCode: 0 };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CommandFailed(
        cwd !== undefined && (error as NodeJS.ErrnoException).path === program
          ? `Command not found, or cwd ${cwd} does not exist: ${program}`
          : `Command not found: ${program} (no such file in PATH or at that path)`,
        127,
      );
    }
    throw error;
  } finally {
    children.delete(child);
    for (const signal of signals) process.off(signal, forward);
    clearTimeout(container);
    if (boxed?.pidFile) rm(boxed.pidFile, { force: true }).catch(() => undefined);
  }
}

/**
 * How long a runner waits for its own TERM or INT after a task's process
 * ended as if it got one: Slurm signals the job's processes one by one.
 */
export const SIGNAL_GRACE_MS = 500;

/** How long a container may take to end after its client passed Slurm's SIGTERM on, before its processes are killed. */
const CONTAINER_GRACE_MS = 10_000;

/** The runtime's command line for a command in `record`, after checking that this node can start it; undefined without a container. */
async function inContainer(record: ContainerRecord | undefined, call: ContainerCall): Promise<(ContainerLine & { container: NodeContainer; pidFile?: string }) | undefined> {
  if (!record) return undefined;
  const c = onNode(record, call.cwd);
  await checkContainer(c);
  if (!existsSync(call.cwd)) throw new CommandFailed(`The working directory ${call.cwd} does not exist on ${HOST}, so it cannot be bound into the container`, 127);
  const podman = c.runtime === "podman" || c.runtime === "podman-hpc";
  const gpus = physicalGpus(process.env);
  if (gpus === undefined && c.gpus !== false && (podman || c.runtime === "enroot")) {
    throw new ContainerError(
      "gpus",
      HOST,
      `which of the node's GPUs the task holds is unclear (CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES}, SLURM_JOB_GPUS=${process.env.SLURM_JOB_GPUS}, SLURM_STEP_GPUS=${process.env.SLURM_STEP_GPUS})`,
      "set container.gpus: false, or report this node's GPU variables as a bug",
    );
  }
  const root = process.getuid?.() === 0;
  const pidFile = podman ? await conmonPidFile() : undefined;
  const line = containerLine(c, call, {
    env: process.env,
    gpus: gpus ?? [],
    folders: containerFolders(),
    host: HOST,
    root,
    // podman's container is outside the job's cgroup and the slot's cpuset: it gets the task's CPUs, and its mem where podman can limit it (as root).
    cpus: allowedCpus(),
    ...(root && taskMemMb(process.env) !== undefined ? { memMb: taskMemMb(process.env)! } : {}),
    ...(pidFile ? { pidFile } : {}),
  });
  return { ...line, container: c, ...(pidFile ? { pidFile } : {}) };
}

/** How long a command's piped output may go on after it exited (a background process it left holds the pipe), before it is cut. */
const OUTPUT_GRACE_MS = 2_000;

/** Waits for a command's piped output to end, at most OUTPUT_GRACE_MS after its exit; then stops reading it. */
async function outputEnded(child: ChildProcess): Promise<void> {
  const pipes = [child.stdout, child.stderr].filter((p) => p !== null && !p.readableEnded && !p.destroyed);
  if (pipes.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(pipes.map((p) => new Promise((resolve) => p!.once("close", resolve)))), new Promise((resolve) => (timer = setTimeout(resolve, OUTPUT_GRACE_MS)))]);
  clearTimeout(timer);
  for (const p of pipes) p!.destroy();
}

/** A command's stderr quoted in its failure: at most this many of its last lines, from at most this many bytes. */
const TAIL_LINES = 20;
const TAIL_BYTES = 16 * 1024;

/** A regular file's size by descriptor; undefined for a pipe, a terminal, or no descriptor. */
function fileSize(fd: number | undefined): number | undefined {
  if (fd === undefined) return undefined;
  try {
    const stat = fstatSync(fd);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The last lines a command wrote to stderr, read when asked: from its file
 * (what was written there since `from`), or kept from the pipe it is relayed
 * through. "" when neither can be read.
 */
function tailOf(target: LogTarget | undefined, piped: NodeJS.ReadableStream | null, from: number | undefined): () => string {
  const lines = (text: string) => text.replace(/\s+$/, "").split("\n").slice(-TAIL_LINES).join("\n");
  if (from !== undefined) {
    const fd = target ? target.fd! : 2;
    return () => {
      const size = fileSize(fd);
      if (size === undefined || size <= from) return "";
      const start = Math.max(from, size - TAIL_BYTES);
      const buffer = Buffer.alloc(size - start);
      try {
        // The log is open for appending only: read it through its path.
        const reader = openSync(readlinkSync(`/proc/self/fd/${fd}`), "r");
        try {
          readSync(reader, buffer, 0, buffer.length, start);
        } finally {
          closeSync(reader);
        }
      } catch {
        return "";
      }
      return lines(buffer.toString("utf8"));
    };
  }
  if (!piped) return () => "";
  let kept = Buffer.alloc(0);
  piped.on("data", (chunk: Buffer) => {
    kept = Buffer.concat([kept, chunk]);
    if (kept.length > 2 * TAIL_BYTES) kept = kept.subarray(kept.length - TAIL_BYTES);
  });
  return () => lines(kept.subarray(Math.max(0, kept.length - TAIL_BYTES)).toString("utf8"));
}

/** Passes a command's output on to a writer, pausing the pipe while the writer is behind. */
function relay(from: NodeJS.ReadableStream, to: LogTarget): void {
  from.on("data", (chunk: Buffer) => {
    if (to.write(chunk)) return;
    from.pause();
    void to.drained().then(() => from.resume());
  });
}

const modules = new Map<string, Promise<Record<string, unknown>>>();

/** Imports a task module once per runner: packed tasks share it. */
function importModule(url: string): Promise<Record<string, unknown>> {
  let loading = modules.get(url);
  if (!loading) {
    loading = importModuleNow(url);
    modules.set(url, loading);
  }
  return loading;
}

async function importModuleNow(url: string): Promise<Record<string, unknown>> {
  if (/\.(c|m)?tsx?$/.test(new URL(url).pathname)) {
    const { tsImport } = await import("tsx/esm/api");
    return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
  }
  return (await import(url)) as Record<string, unknown>;
}

/** Imports a function task's module and finds the task among its exports. */
export async function findTask(task: FunctionRecord): Promise<TaskExport> {
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(task.moduleUrl);
  } catch (error) {
    const e = error as Error;
    const snapshot = task.source ? ` (the snapshot of ${task.source})` : "";
    throw new Error(`Cannot import task module ${task.moduleUrl}${snapshot} on ${hostname()}: ${e.message}`, { cause: error });
  }
  // A CommonJS module's exports arrive as its default export.
  const exported = [...Object.values(mod), ...(typeof mod.default === "object" && mod.default !== null ? Object.values(mod.default) : [])];
  const found = exported.find((v) => isTask(v) && v.name === task.name);
  if (!found || !isTask(found)) {
    const names = [...new Set(exported.filter(isTask).map((v) => v.name))];
    throw new Error(
      `Task '${task.name}' not found in ${task.source ?? task.moduleUrl}: ${names.length ? `it exports the tasks ${names.join(", ")}` : "it exports no tasks"}. Export the value defineTask returns.`,
    );
  }
  return found;
}

async function runFunction(task: FunctionRecord, run: RunContext): Promise<unknown> {
  const found = await findTask(task);
  return await found.fn(expandDeep(run.arg ? run.arg.value : task.arg, process.env, HOST), run.ctx);
}

/** What a function task gets of the submission's container (ctx.container): commands run in it through runCommand, into the task's logs. */
export function taskContainer(logs: TaskLogs | undefined): TaskContainer | undefined {
  const record = submissionContainer();
  if (!record) return undefined;
  return {
    runtime: record.runtime,
    image: bind(record.image),
    exec: (program, args = [], options = {}) => {
      if (typeof program !== "string" || program === "" || !Array.isArray(args) || args.some((a) => typeof a !== "string")) {
        return Promise.reject(new TypeError(`ctx.container.exec expects a program name and an array of strings, got ${JSON.stringify([program, args])}`));
      }
      return runCommand(
        { kind: "command", program, args: [...args], ...(options.env ? { env: { ...options.env } } : {}), ...(options.cwd !== undefined ? { cwd: options.cwd } : {}), container: record },
        { ...(logs ? { logs } : {}), ctx: { signal: new AbortController().signal, attempt: 0 } },
      );
    },
  };
}

/** Runs a task's code: its value, or a thrown error (Terminated when Slurm ended it). */
export function runTask(task: TaskRecord, run: RunContext): Promise<unknown> {
  if (task.kind === "command") return runCommand(task, run);
  return inLogs(run.logs, () => runFunction(task, run));
}

/** Runs `fn` with a packed task's output going to its own logs. */
export function inLogs<T>(logs: TaskLogs | undefined, fn: () => Promise<T>): Promise<T> {
  return logs ? currentLogs.run(logs, fn) : fn();
}
