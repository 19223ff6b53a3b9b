import { writeFileAtomicSync } from "../src/protocol/atomic.js";
import { inspect } from "node:util";
import { travelProblem } from "../src/protocol/travels.js";
import { failedResult } from "../src/protocol/results.js";
import { packr } from "../src/protocol/codec.js";
import type { ResultFile, StateFile, UsageRecord } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";
import type { TaskContext, TaskRecord } from "../src/protocol/task-record.js";
import { expandDeep } from "../src/protocol/runtime-value.js";
import { TaskInterruptedError } from "../src/base/errors.js";
import { CommandFailed, findTask, inLogs, runTask, taskContainer, Terminated, type TaskLogs } from "./execute.js";
import { dependencyGate } from "./after.js";
import { forgetRequeue, readCheckpoint, readHistory, recordRequeue, watchWarning, type History } from "./attempts.js";
import type { Ending, WarningNews } from "../src/core/node-side.js";
import { HOST } from "./node.js";
import { fileSink, type TaskRecordSink } from "./task-records.js";

/** One task to run, and where its files go. */
export interface OneTask {
  readonly folder: RunFolder;
  readonly index: number;
  /** The rank (as the scheduler numbers it); only rank 0 writes state files, rank r > 0 writes `<i>.r<r>.result`. */
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
  /** Slurm's warning before the time limit or on preemption, and how many timeouts may be requeued; none for packed tasks. */
  readonly requeue?: RequeueOptions;
  /** Where its state and result records go. @default files per task */
  readonly sink?: TaskRecordSink;
  /** Measures what the task uses from its start, for its result (one per element; a worker measures its slots' tasks itself). */
  readonly meter?: () => { stop(): UsageRecord | undefined };
}

/** What the runner needs to requeue a task that Slurm warns about (the warning itself comes through attempts.ts). */
export interface RequeueOptions {
  /** Requeues after a timeout at most this many times (preemptions do not count). */
  readonly maxRequeues: number;
  /**
   * Requeues the task once its records are written: `scontrol requeue` of its
   * element, or a slot asking its worker to run the task again. Returns an
   * error message, or undefined when the requeue was taken. Undefined: the
   * task cannot be requeued (outside Slurm).
   */
  readonly requeue: (() => Promise<string | undefined>) | undefined;
  /** Whether earlier attempts may exist (the scheduler restarted the job, or a worker's slot): then their records are read. */
  readonly restarted: boolean;
  /** The signal a command task is sent on the warning: none inside srun's step, where Slurm itself signals every process. */
  readonly forward: NodeJS.Signals | undefined;
  /** Send it to every command (the user set `signal`), not only to those with `requeue`. */
  readonly forwardAll: boolean;
}

/** How long a requeued attempt waits for Slurm to end it before it exits by itself. */
const REQUEUE_WAIT_MS = 300_000;
/** A task that still runs this long before the deadline is checkpointed and requeued anyway. */
const DEADLINE_MARGIN_MS = 5_000;

/**
 * The one place that runs a task: state RUNNING, the task, its result file,
 * then state COMPLETED or FAILED (not in a worker's stream, where the result
 * says it). Returns whether it succeeded. Throws
 * Terminated, writing nothing more, when Slurm ended the task (scancel, time
 * limit), so the scheduler's state is what the client reports.
 */
export async function runOneTask(t: OneTask): Promise<boolean> {
  const startedAt = Date.now();
  const meter = t.meter?.();
  const writeState = async (state: StateFile["state"]) => {
    if (t.rank === 0) await writeTaskState(t, state);
  };
  await writeState("RUNNING");
  const blocked = t.checkAfter === false ? undefined : await dependencyGate(t.folder);
  if (blocked !== undefined) {
    // As Slurm's --kill-on-invalid-dep would: the task never runs, and ends CANCELLED.
    t.report(`slurmkit runner: task ${t.index} ${blocked[0]!.toLowerCase()}${blocked.slice(1)}\n`);
    const result = failedResult({ name: "DependencyFailed", message: blocked }, { host: HOST, jobId: t.jobId, startedAt }, "CANCELLED");
    if (t.rank === 0) await sinkOf(t).result(t.index, 0, result, packr.pack(result));
    if (!sinkOf(t).resultEnds) await writeState("FAILED");
    return false;
  }
  const history = await readHistory(t.folder, t.index, t.requeue?.restarted ?? false);
  if (history.attempt > 0 && t.rank === 0) {
    const header = `\n===== slurmkit: task ${t.index}, attempt ${history.attempt}, on ${HOST} at ${new Date().toISOString()} =====\n`;
    if (t.logs) for (const target of [t.logs.out, t.logs.err]) target.write(header);
    else for (const stream of [process.stdout, process.stderr]) stream.write(header);
  }
  const warning = watchWarning(history.attempt);
  // A task that only waits for the warning has nothing else keeping Node's event loop alive.
  const alive = setInterval(() => undefined, 1 << 30);
  let exitHook: ((code: number) => void) | undefined;
  let ending: ((signal: NodeJS.Signals) => void) | undefined;
  // The TERM or INT that reached this process while a function task ran: Slurm's cancel or time limit.
  let stopped: NodeJS.Signals | undefined;
  try {
    const ctx: TaskContext = { signal: warning.signal, attempt: history.attempt, container: taskContainer(t.logs) };
    let outcome: Outcome;
    const attempt: Attempt = { settled: undefined, requeuing: false, decision: undefined, closed: false };
    try {
      const record = await t.load();
      const checkpoint = record.kind === "function" && history.attempt > 0 ? await readCheckpoint(t.folder, t.index) : undefined;
      const arg = checkpoint ? { value: checkpoint.arg } : undefined;
      if (record.kind === "function") {
        // An exit or a failure after Slurm (or a worker) ended the task, in its own SIGTERM handler, is that ending: CANCELLED, TIMEOUT or a requeue.
        ending = (signal: NodeJS.Signals) => {
          stopped ??= signal;
          // Alone, this listener must not keep the process alive: the signal's default (the process ends) still happens.
          if (process.listenerCount(signal) === 1) {
            process.off(signal, ending!);
            process.kill(process.pid, signal);
          }
        };
        for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, ending);
      }
      // A function task that ends the process (process.exit, an uncaught exception) writes no result by itself: say how it ended (a slot's worker says it).
      if (!t.sink && record.kind === "function") {
        exitHook = (code: number) => {
          if (attempt.settled !== undefined || attempt.requeuing || warning.came || stopped) return;
          const message = `The task's process exited with code ${code} before the task returned (process.exit(${code}), or an uncaught exception: see the log)`;
          const result = failedResult({ name: "ProcessExited", message, exitCode: code }, { host: HOST, jobId: t.jobId, startedAt });
          try {
            writeFileAtomicSync(t.folder.result(t.index, t.rank), packr.pack(result));
          } catch (error) {
            process.stderr.write(`slurmkit runner: could not record that task ${t.index} exited with code ${code}: ${(error as Error).message}\n`);
          }
        };
        process.on("exit", exitHook);
      }
      const running = runTask(record, { ...(t.logs ? { logs: t.logs } : {}), ctx, ...(arg ? { arg } : {}), ...(forwardTo(record, t.requeue) ? { forward: t.requeue!.forward! } : {}) });
      running.then(
        () => (attempt.settled = "value"),
        () => (attempt.settled = "error"),
      );
      void warning.arrived.then((w) => {
        if (t.rank === 0 && t.requeue && !attempt.closed)
          attempt.decision = decide(t, t.requeue, record, history, w, running, attempt, ctx, arg ? arg.value : record.kind === "function" ? record.arg : undefined, startedAt);
      });
      outcome = { value: await running };
    } catch (error) {
      if (error instanceof Terminated) throw error;
      outcome = { error };
    }
    // A warning that comes from here on is too late: the task has ended, and its result follows.
    attempt.closed = !warning.came;
    if (warning.came) {
      // After Slurm's warning rank 0 decides whether the task is requeued; a requeued attempt writes no result.
      const { ending } = await warning.arrived;
      const decided = await attempt.decision;
      if (attempt.requeuing || decided === "requeue") await waitForSlurm();
      if ("error" in outcome && isInterruption(outcome.error, warning.signal)) {
        if (t.rank !== 0) await waitForSlurm();
        outcome = { ...outcome, ending };
      }
    }
    if ("error" in outcome) {
      const e = outcome.error;
      const told = e instanceof Error ? (e.stack ?? e.message) : `thrown ${inspect(e, { depth: 3, breakLength: Infinity })}`;
      // Failed after a TERM or INT reached it (its own handler kept the process alive, then gave up): that stop ended it, with no result.
      const stop = outcome.ending ? undefined : stopped;
      t.report(`slurmkit runner: task ${t.index} ${outcome.ending ? `stopped at Slurm's warning (${outcome.ending})` : stop ? `failed after ${stop}` : "failed"} on ${HOST}: ${told}\n`);
      if (stop) throw new Terminated(stop);
    }
    const usage = meter?.stop();
    const { result, bytes, ok } = resultBytes(outcome, { host: HOST, jobId: t.jobId, startedAt }, usage);
    await sinkOf(t).result(t.index, t.rank, result, bytes);
    if (!sinkOf(t).resultEnds) await writeState(ok ? "COMPLETED" : "FAILED");
    return ok;
  } finally {
    meter?.stop();
    warning.dispose();
    clearInterval(alive);
    if (exitHook) process.off("exit", exitHook);
    if (ending) for (const signal of ["SIGTERM", "SIGINT"] as const) process.off(signal, ending);
  }
}

/** Whether a command gets the warning signal: it asked for `requeue`, or the user set `signal`. */
function forwardTo(record: TaskRecord, o: RequeueOptions | undefined): boolean {
  return o?.forward !== undefined && record.kind === "command" && (o.forwardAll || record.requeue !== undefined);
}

/** A task's value, or its error and, when it stopped at Slurm's warning without a requeue, how the attempt ended. */
type Outcome = { readonly value: unknown } | { readonly error: unknown; readonly ending?: Ending };

/** What one attempt knows while it decides about a requeue. */
interface Attempt {
  /** How the task's code ended, once it did. */
  settled: "value" | "error" | undefined;
  /** Set when the requeue is decided, before anything is written: the task's result no longer counts. */
  requeuing: boolean;
  decision: Promise<"requeue" | "end"> | undefined;
  /** The task ended before any warning came: no requeue is decided any more. */
  closed: boolean;
}

/** Whether a task's error is its answer to the warning: the abort reason, an AbortError, or a command that stopped. */
function isInterruption(error: unknown, signal: AbortSignal): boolean {
  return error === signal.reason || error instanceof TaskInterruptedError || (error as Error | null)?.name === "AbortError" || error instanceof CommandFailed;
}

/** A requeued attempt waits for Slurm to end it (TERM); if Slurm does not, it exits without a result. */
async function waitForSlurm(): Promise<never> {
  await new Promise((resolve) => setTimeout(resolve, REQUEUE_WAIT_MS));
  throw new Terminated("SIGTERM");
}

/**
 * Rank 0, after Slurm's warning: lets the task stop at a safe point (it ends,
 * or it runs on until just before Slurm would end it), then asks its
 * checkpoint for the next argument (a command with `requeue` has saved its
 * own state), records the attempt and requeues the task. No requeue when
 * the task finished or failed by itself, has no checkpoint (or it returned
 * nothing), or has used its `maxRequeues` timeouts.
 */
async function decide(
  t: OneTask,
  o: RequeueOptions,
  record: TaskRecord,
  history: History,
  w: WarningNews,
  running: Promise<unknown>,
  attempt: Attempt,
  ctx: TaskContext,
  arg: unknown,
  startedAt: number,
): Promise<"requeue" | "end"> {
  const wanted = record.kind === "function" ? record.checkpoint === true : w.ending === "TIMEOUT" ? record.requeue?.onTimeout === true : record.requeue?.onPreempt === true;
  if (!wanted || o.requeue === undefined) return "end";
  if (w.ending === "TIMEOUT" && history.timeouts >= o.maxRequeues) {
    t.report(`slurmkit runner: task ${t.index} is not requeued: it reached maxRequeues (${o.maxRequeues}) timeouts\n`);
    return "end";
  }
  const left = w.deadline === undefined ? 30_000 : Math.max(0, w.deadline - Date.now() - DEADLINE_MARGIN_MS);
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    running.then(
      () => "finished" as const,
      (error: unknown) => (isInterruption(error, ctx.signal) ? ("stopped" as const) : ("failed" as const)),
    ),
    new Promise<"running">((resolve) => (timer = setTimeout(() => resolve("running"), left))),
  ]);
  clearTimeout(timer);
  if (ended === "finished" || ended === "failed") return "end";
  let next: { value: unknown } | undefined;
  if (record.kind === "function") {
    try {
      const found = await findTask(record);
      const value = await inLogs(t.logs, async () => found.checkpoint?.(expandDeep(arg, process.env, HOST), ctx));
      if (value === undefined) return "end";
      next = { value };
    } catch (error) {
      t.report(`slurmkit runner: task ${t.index}'s checkpoint failed, so it is not requeued: ${(error as Error).stack ?? String(error)}\n`);
      return "end";
    }
  }
  if (attempt.settled === "value") return "end";
  attempt.requeuing = true;
  const at = Date.now();
  await recordRequeue(
    t.folder,
    t.index,
    { attempt: history.attempt, ended: w.ending, host: HOST, jobId: t.jobId, startedAt, endedAt: at },
    next ? { attempt: history.attempt, arg: next.value } : undefined,
  );
  await writeTaskState(t, "REQUEUED", at);
  // Said first: a scheduler may end this process as it takes the request (PBS's qrerun from inside the job).
  t.report(`slurmkit runner: task ${t.index} asks for a requeue after attempt ${history.attempt} (${w.ending})\n`);
  const failed = await o.requeue();
  if (failed === undefined) {
    t.report(`slurmkit runner: task ${t.index} requeued after attempt ${history.attempt} (${w.ending})\n`);
    return "requeue";
  }
  t.report(`slurmkit runner: task ${t.index} could not be requeued: ${failed}\n`);
  await forgetRequeue(t.folder, t.index, history.attempt);
  await writeTaskState(t, "RUNNING");
  attempt.requeuing = false;
  return "end";
}

/** Records the task's state (rank 0's job): what it is doing, where, and since when. */
async function writeTaskState(t: OneTask, state: StateFile["state"], at = Date.now()): Promise<void> {
  await sinkOf(t).state(t.index, { state, host: HOST, jobId: t.jobId, pid: process.pid, at });
}

const fileSinks = new WeakMap<RunFolder, TaskRecordSink>();

/** The task's sink: its own, or files per task in its folder. */
function sinkOf(t: OneTask): TaskRecordSink {
  if (t.sink) return t.sink;
  const sink = fileSinks.get(t.folder) ?? fileSink(t.folder);
  fileSinks.set(t.folder, sink);
  return sink;
}

/** A task's outcome as a result and its bytes; a result msgpack cannot carry becomes a TypeError result. */
function resultBytes(outcome: Outcome, meta: { host: string; jobId: string; startedAt: number }, usage: UsageRecord | undefined): { result: ResultFile; bytes: Buffer; ok: boolean } {
  let result: ResultFile;
  const refused = "value" in outcome ? travelProblem(outcome.value, "result") : undefined;
  if (refused !== undefined) {
    const message = `The task's result cannot come back: ${refused}`;
    result = failedResult({ name: "TypeError", message, stack: `TypeError: ${message}` }, meta);
  } else if ("value" in outcome) result = { ok: true, value: outcome.value, ...meta, endedAt: Date.now() };
  else if (!(outcome.error instanceof Error)) {
    // A thrown string or object is reported as itself: a stack made here would point into slurmkit, not the task.
    const thrown = outcome.error;
    const message = typeof thrown === "string" ? thrown : inspect(thrown, { depth: 3, breakLength: Infinity });
    const name = `thrown ${thrown === null ? "null" : typeof thrown === "object" ? (Object.getPrototypeOf(thrown)?.constructor?.name ?? "object") : typeof thrown}`;
    result = failedResult({ name, message, stack: `${name}: ${message}` }, meta, outcome.ending);
  } else {
    const e = outcome.error;
    const command = e instanceof CommandFailed ? { exitCode: e.exitCode, signal: e.signal || undefined } : {};
    result = failedResult({ name: e.name, message: e.message, stack: e.stack ?? `${e.name}: ${e.message}`, ...command }, meta, outcome.ending);
  }
  if (usage) result.usage = usage;
  try {
    return { result, bytes: packr.pack(result), ok: result.ok };
  } catch (error) {
    const message = `The task's result cannot be sent through msgpack: ${(error as Error).message}`;
    const failed = failedResult({ name: "TypeError", message, stack: (error as Error).stack ?? message }, meta);
    return { result: failed, bytes: packr.pack(failed), ok: false };
  }
}
