/**
 * The slurmkit runner: the sbatch script (or LocalExecutor) starts it as
 * `node runner.js <run folder>`. It reads its task from the spec file by index,
 * runs it, and writes the task's result and state files. Exit code: 0 when the
 * task succeeded, 1 when it failed, 2 when the runner itself could not work.
 *
 * Packed: `node runner.js <run folder> --per-element K --element-offset O`
 * runs tasks K·e to K·e+K-1 of element e = O + SLURM_ARRAY_TASK_ID, up to
 * SLURM_CPUS_PER_TASK at once, each with its own logs, result and state.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { AsyncLocalStorage } from "node:async_hooks";
import { openSync, closeSync, writeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../src/atomic.js";
import { RunFolder, type ResultFile, type StateFile } from "../src/run-folder.js";
import { packr, readSpecRange, readSpecRecord } from "../src/spec-file.js";
import { expandDeep, expandRuntime, isRuntimeValue, type LateString } from "../src/runtime-value.js";
import { isTask, type CommandRecord, type FunctionRecord, type TaskRecord } from "../src/tasks.js";

const HOST = process.env.SLURMD_NODENAME ?? hostname();

/** A string, or a runtime value expanded with this node's environment. */
function bind(value: LateString): string {
  return isRuntimeValue(value) ? expandRuntime(value, process.env, HOST) : value;
}

/** A command's non-zero exit, as a failure that keeps the exit code. */
class CommandFailed extends Error {
  override name = "CommandFailed";
  constructor(
    message: string,
    readonly exitCode?: number,
    readonly signal?: string,
  ) {
    super(message);
  }
}

function taskIndex(env: NodeJS.ProcessEnv): number {
  const text = env.SLURMKIT_TASK_INDEX ?? env.SLURM_ARRAY_TASK_ID ?? "0";
  const offset = Number(env.SLURMKIT_INDEX_OFFSET ?? "0");
  const index = Number(text);
  if (!Number.isInteger(index) || index < 0) throw new Error(`Bad task index '${text}' (from SLURMKIT_TASK_INDEX or SLURM_ARRAY_TASK_ID)`);
  return index + offset;
}

function jobIdOf(env: NodeJS.ProcessEnv): string {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID ?? env.SLURMKIT_JOB_ID ?? "local";
}

/**
 * Set when Slurm terminates the job (scancel, time limit): the runner then
 * exits without a result, so the scheduler's state (CANCELLED, TIMEOUT) is
 * what the client reports.
 */
class Terminated extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`terminated by ${signal}`);
  }
}

/** Where a packed task's output goes: its own log files. */
interface TaskLogs {
  readonly out: number;
  readonly err: number;
}

/** The log files of the packed task whose code is running (function tasks run in-process). */
const currentLogs = new AsyncLocalStorage<TaskLogs>();

/** Routes process.stdout/stderr writes made inside a packed function task to that task's logs. */
function routeOutput(): void {
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
const children = new Set<ChildProcess>();

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
    throw new Error(`Cannot import task module ${task.moduleUrl} on ${hostname()}: ${e.message}`, { cause: error });
  }
  const found = Object.values(mod).find((v) => isTask(v) && v.name === task.name);
  if (!found || !isTask(found)) {
    const names = Object.entries(mod)
      .filter(([, v]) => isTask(v))
      .map(([, v]) => (v as { name: string }).name);
    throw new Error(
      `Task '${task.name}' not found in ${task.moduleUrl}: ${names.length ? `it exports the tasks ${names.join(", ")}` : "it exports no tasks"}. Export the value defineTask returns.`,
    );
  }
  return await found.fn(expandDeep(task.arg, process.env, HOST));
}

function runTask(task: TaskRecord, logs?: TaskLogs): Promise<unknown> {
  if (task.kind === "command") return runCommand(task, logs);
  return logs ? currentLogs.run(logs, () => runFunction(task)) : runFunction(task);
}

/** A task's outcome as a result file; a result msgpack cannot carry becomes a TypeError result. */
function resultBytes(outcome: { value: unknown } | { error: unknown }, meta: { host: string; jobId: string; startedAt: number }): { bytes: Buffer; ok: boolean } {
  let result: ResultFile;
  if ("value" in outcome) result = { ok: true, value: outcome.value, ...meta, endedAt: Date.now() };
  else {
    const e = outcome.error instanceof Error ? outcome.error : new Error(String(outcome.error));
    const extra = e instanceof CommandFailed ? { ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}), ...(e.signal ? { signal: e.signal } : {}) } : {};
    result = { ok: false, error: { name: e.name, message: e.message, stack: e.stack ?? `${e.name}: ${e.message}`, ...extra }, ...meta, endedAt: Date.now() };
  }
  try {
    return { bytes: packr.pack(result), ok: result.ok };
  } catch (error) {
    const message = `The task's result cannot be sent through msgpack: ${(error as Error).message}`;
    return { bytes: packr.pack({ ok: false, error: { name: "TypeError", message, stack: (error as Error).stack ?? message }, ...meta, endedAt: Date.now() }), ok: false };
  }
}

/** Reads `--name value` from argv. */
function option(argv: readonly string[], name: string): number | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const value = Number(argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`Bad ${name} '${argv[i + 1]}': expected a non-negative integer`);
  return value;
}

/** Runs one array element's chunk of tasks; exit 0 when all succeeded, 1 when one failed. */
async function runPacked(folder: RunFolder, perElement: number, offset: number): Promise<number> {
  const element = taskIndex({ ...process.env, SLURMKIT_INDEX_OFFSET: "0" }) + offset;
  const jobId = jobIdOf(process.env);
  const records = await readSpecRange(folder.spec, element * perElement, element * perElement + perElement);
  const first = element * perElement;
  const slots = Math.max(1, Number(process.env.SLURM_CPUS_PER_TASK ?? "1") || 1);
  await mkdir(folder.stateDir, { recursive: true });
  await mkdir(folder.resultsDir, { recursive: true });
  routeOutput();

  let terminated: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    terminated ??= signal;
    for (const child of children) child.kill(signal);
    // Function tasks cannot be interrupted: leave now, without results for unfinished tasks.
    if (children.size === 0) process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("SIGTERM", stop).on("SIGINT", stop);

  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < records.length && !terminated) {
      const i = next++;
      const index = first + i;
      const paths = folder.task(index);
      const logs = { out: openSync(paths.stdout, "w"), err: openSync(paths.stderr, "w") };
      const startedAt = Date.now();
      const state = (s: StateFile["state"]) =>
        writeFileAtomic(paths.state, packr.pack({ state: s, host: HOST, jobId, pid: process.pid, at: Date.now() } satisfies StateFile));
      try {
        await state("RUNNING");
        let outcome: { value: unknown } | { error: unknown };
        try {
          outcome = { value: await runTask(records[i]!, logs) };
        } catch (error) {
          if (error instanceof Terminated) return;
          outcome = { error };
          const e = error as Error;
          writeSync(logs.err, `slurmkit runner: task ${index} failed on ${HOST}: ${e.stack ?? e.message}\n`);
        }
        const { bytes, ok } = resultBytes(outcome, { host: HOST, jobId, startedAt });
        if (!ok) failed++;
        await writeFileAtomic(join(folder.resultsDir, RunFolder.resultName(index)), bytes);
        await state(ok ? "COMPLETED" : "FAILED");
      } finally {
        closeSync(logs.out);
        closeSync(logs.err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(slots, records.length) }, worker));
  if (terminated) {
    process.stderr.write(`slurmkit runner: element ${element} terminated by ${terminated}; unfinished tasks have no result\n`);
    return terminated === "SIGINT" ? 130 : 143;
  }
  return failed ? 1 : 0;
}

async function main(): Promise<number> {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write("slurmkit runner: usage: runner.js <run folder> [--per-element K --element-offset O]\n");
    return 2;
  }
  const folder = new RunFolder(dir);
  const perElement = option(process.argv, "--per-element");
  if (perElement !== undefined) return runPacked(folder, perElement, option(process.argv, "--element-offset") ?? 0);
  const index = taskIndex(process.env);
  const rank = Number(process.env.SLURM_PROCID ?? "0");
  const host = HOST;
  const jobId = jobIdOf(process.env);
  const startedAt = Date.now();
  const writeState = async (state: StateFile["state"]) => {
    if (rank !== 0) return;
    const file: StateFile = { state, host, jobId, pid: process.pid, at: Date.now() };
    await writeFileAtomic(join(folder.stateDir, `${index}.state`), packr.pack(file));
  };
  await mkdir(folder.stateDir, { recursive: true });
  await mkdir(folder.resultsDir, { recursive: true });
  await writeState("RUNNING");

  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await runTask(await readSpecRecord(folder.spec, index)) };
  } catch (error) {
    if (error instanceof Terminated) {
      process.stderr.write(`slurmkit runner: task ${index} ${error.message}; no result written\n`);
      const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
      return 128 + (numbers[error.signal] ?? 15);
    }
    outcome = { error };
    const e = error as Error;
    process.stderr.write(`slurmkit runner: task ${index} failed on ${host}: ${e.stack ?? e.message}\n`);
  }
  const { bytes, ok } = resultBytes(outcome, { host, jobId, startedAt });
  await writeFileAtomic(join(folder.resultsDir, RunFolder.resultName(index, rank)), bytes);
  await writeState(ok ? "COMPLETED" : "FAILED");
  return ok ? 0 : 1;
}


// Without a handler, SIGUSR1 (a common pre-timeout signal) would open Node's
// inspector on the node. Tasks may add their own handlers.
process.on("SIGUSR1", () => {});

// Exit once the result is written, even if the task left timers or sockets open.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`slurmkit runner: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
