import { writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import type { ResultFile, StateFile } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";
import type { TaskRecord } from "../src/protocol/task-record.js";
import { CommandFailed, runTask, Terminated, type TaskLogs } from "./execute.js";
import { dependencyGate } from "./after.js";
import { HOST } from "./node.js";

/** One task to run, and where its files go. */
export interface OneTask {
  readonly folder: RunFolder;
  readonly index: number;
  /** The rank (SLURM_PROCID); only rank 0 writes state files, rank r > 0 writes `<i>.r<r>.result`. */
  readonly rank: number;
  readonly jobId: string;
  /** Reads the task's record; a failure to read it is the task's failure. */
  readonly load: () => Promise<TaskRecord>;
  /** Packed tasks: their own log files. */
  readonly logs?: TaskLogs;
  /** Where the runner's own line about a failed task goes (the task's stderr). */
  readonly report: (line: string) => void;
  /** Check the tasks it runs after first; a worker's slots skip it, as their worker checked before handing the task over. @default true */
  readonly checkAfter?: boolean;
}

/**
 * The one place that runs a task: state RUNNING, the task, its result file,
 * then state COMPLETED or FAILED. Returns whether it succeeded. Throws
 * Terminated, writing nothing more, when Slurm ended the task (scancel, time
 * limit), so the scheduler's state is what the client reports.
 */
export async function runOneTask(t: OneTask): Promise<boolean> {
  const startedAt = Date.now();
  const writeState = async (state: StateFile["state"]) => {
    if (t.rank !== 0) return;
    const file: StateFile = { state, host: HOST, jobId: t.jobId, pid: process.pid, at: Date.now() };
    await writeFileAtomic(t.folder.task(t.index).state, packr.pack(file));
  };
  await writeState("RUNNING");
  const blocked = t.checkAfter === false ? undefined : await dependencyGate(t.folder);
  if (blocked !== undefined) {
    // As Slurm's --kill-on-invalid-dep would: the task never runs, and ends CANCELLED.
    t.report(`slurmkit runner: task ${t.index} ${blocked[0]!.toLowerCase()}${blocked.slice(1)}\n`);
    const result: ResultFile = { ok: false, state: "CANCELLED", error: { name: "DependencyFailed", message: blocked, stack: blocked }, host: HOST, jobId: t.jobId, startedAt, endedAt: Date.now() };
    if (t.rank === 0) await writeFileAtomic(t.folder.result(t.index), packr.pack(result));
    await writeState("FAILED");
    return false;
  }
  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await runTask(await t.load(), t.logs) };
  } catch (error) {
    if (error instanceof Terminated) throw error;
    outcome = { error };
    const e = error as Error;
    t.report(`slurmkit runner: task ${t.index} failed on ${HOST}: ${e.stack ?? e.message}\n`);
  }
  const { bytes, ok } = resultBytes(outcome, { host: HOST, jobId: t.jobId, startedAt });
  await writeFileAtomic(t.folder.result(t.index, t.rank), bytes);
  await writeState(ok ? "COMPLETED" : "FAILED");
  return ok;
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

