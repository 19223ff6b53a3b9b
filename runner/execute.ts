import { AsyncLocalStorage } from "node:async_hooks";
import { spawn, type ChildProcess } from "node:child_process";
import { hostname } from "node:os";
import { writeSync } from "node:fs";
import { expandDeep } from "../src/api/runtime-value.js";
import { isTask, type CommandRecord, type FunctionRecord, type TaskRecord } from "../src/protocol/task-record.js";
import { bind, HOST } from "./node.js";

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

/** Where a packed task's output goes: its own log files. */
export interface TaskLogs {
  readonly out: number;
  readonly err: number;
}

/** The log files of the packed task whose code is running (function tasks run in-process). */
const currentLogs = new AsyncLocalStorage<TaskLogs>();

/** Routes process.stdout/stderr writes made inside a packed function task to that task's logs. */
export function routeOutput(): void {
  for (const [stream, key] of [[process.stdout, "out"], [process.stderr, "err"]] as const) {
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const logs = currentLogs.getStore();
      if (!logs) return original(chunk, ...rest);
      if (typeof chunk === "string") writeSync(logs[key], chunk);
      else writeSync(logs[key], chunk);
      const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof stream.write;
  }
}

/** Children of packed command tasks, for forwarding signals. */
export const children = new Set<ChildProcess>();

async function runCommand(task: CommandRecord, logs?: TaskLogs): Promise<{ exitCode: number }> {
  const program = bind(task.program);
  const args = task.args.map(bind);
  const env = Object.fromEntries(Object.entries(task.env ?? {}).map(([k, v]) => [k, bind(v)]));
  const cwd = task.cwd === undefined ? undefined : bind(task.cwd);
  const child = spawn(program, args, {
    stdio: ["ignore", logs?.out ?? "inherit", logs?.err ?? "inherit"],
    env: { ...process.env, ...env },
    ...(cwd !== undefined ? { cwd } : {}),
  });
  children.add(child);
  let terminatedBy: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    if (signal !== "SIGUSR1") terminatedBy = signal;
    child.kill(signal);
  };
  process.on("SIGTERM", forward).on("SIGINT", forward).on("SIGUSR1", forward);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (c, s) => resolve([c, s]));
    });
    const shown = [program, ...args].join(" ");
    if (terminatedBy) throw new Terminated(terminatedBy);
    // Slurm signals every process of the job; the child may die before our own handler runs.
    if (signal === "SIGTERM" || signal === "SIGINT" || signal === "SIGKILL") throw new Terminated(signal);
    if (signal) throw new CommandFailed(`Command was killed with ${signal}: ${shown}`, undefined, signal);
    if (code !== 0) throw new CommandFailed(`Command failed with exit code ${code}: ${shown}`, code ?? undefined);
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
    process.off("SIGTERM", forward).off("SIGINT", forward).off("SIGUSR1", forward);
  }
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

async function runFunction(task: FunctionRecord): Promise<unknown> {
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
  return await found.fn(expandDeep(task.arg, process.env, HOST));
}

/** Runs a task's code: its value, or a thrown error (Terminated when Slurm ended it). */
export function runTask(task: TaskRecord, logs?: TaskLogs): Promise<unknown> {
  if (task.kind === "command") return runCommand(task, logs);
  return logs ? currentLogs.run(logs, () => runFunction(task)) : runFunction(task);
}

