import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { RunFolder } from "../src/protocol/run-folder.js";
import { SpecReader } from "../src/protocol/spec-file.js";
import type { WarningArgs } from "../src/protocol/runner-args.js";
import { forgetWarning, passWarning } from "./attempts.js";
import type { Ending } from "../src/core/node-side.js";
import { routeOutput, Terminated } from "./execute.js";
import { SLOT_MARGIN_MB } from "../src/protocol/worker-memory.js";
import { footprintKb, type MemoryMeasure } from "./memory.js";
import { runOneTask } from "./run-task.js";
import { OwnCpu } from "./usage.js";
import { onAdopted } from "./container.js";
import { slotLog, slotSink, type LogMessage, type RecordMessage } from "./task-records.js";

/** What the worker tells a slot: run this task, pass Slurm's warning on to it, or leave. */
/** `fresh`: the task never ran before (a block this worker claimed first, in its first attempt), so it has no earlier attempts to read. */
export type ToSlot = { readonly run: number; readonly fresh?: true } | { readonly warn: Ending; readonly deadline: number | undefined } | { readonly exit: true };
/**
 * What a slot tells its worker: it is ready for tasks, a task's state or
 * result record (for the worker's stream), a task is done (its records were
 * sent), or a task checkpointed and asks to be run again (its records are
 * sent; the worker stops this process). `retire`: the process leaves after
 * this task (it grew), and the next gets a new one. `adopt`: a process of
 * the task outside the slot's tree started (`joined`) or ended.
 */
/** `cpu`: the slot process's CPU ms so far (its own and its reaped children's, OwnCpu), for its worker to tell each task's; `cpuNext`: the same after the slot's own check that follows a task, where the next task's starts. */
export type FromSlot =
  | { readonly ready: true; readonly cpu?: number | undefined }
  | RecordMessage
  | LogMessage
  | { readonly done: number; readonly ok: boolean; readonly retire?: boolean; readonly cpu?: number | undefined; readonly cpuNext?: number | undefined }
  | { readonly requeued: number }
  | { readonly adopt: number; readonly joined: boolean; readonly client?: number | undefined };

/**
 * One slot of a worker, in its own process (`runner.js <dir> --slot`): it runs
 * the tasks its worker sends, one at a time, each with its own logs; their
 * states and results go to the worker's stream. Function tasks run here, so slots run in parallel and a task
 * module is imported once per slot. The process ends when the worker says so
 * or goes away.
 */
export function runSlot(folder: RunFolder, warning: WarningArgs | undefined): Promise<number> {
  const jobId = process.env.SLURMKIT_WORKER_ID ?? "local";
  // Set by a worker whose tasks get Slurm's warning.
  const signal = warning?.signal;
  // The slot sends the warning signal to itself for a command task to get it: it must not end the slot.
  if (signal) process.on(signal, () => undefined);
  routeOutput();
  const grown = growthCheck();
  const sink = slotSink();
  // One open spec file for the slot's life: a task costs one read of it, not an open, three reads and a close.
  const spec = new SpecReader(folder.spec);
  const cpu = new OwnCpu();
  // Its task's container processes that are not its children (podman's): its worker counts them, and kills them with the task.
  onAdopted((pid, joined, client) => process.send?.({ adopt: pid, joined, client } satisfies FromSlot, () => undefined));
  return new Promise((resolve) => {
    let busy = false;
    process.on("disconnect", () => {
      if (!busy) resolve(0);
    });
    process.on("message", (message: ToSlot) => {
      if ("exit" in message) return resolve(0);
      if ("warn" in message) {
        passWarning({ ending: message.warn, deadline: message.deadline });
        // A command task gets the signal itself (runCommand passes it on), as it would in its own element.
        if (signal) process.kill(process.pid, signal);
        return;
      }
      busy = true;
      forgetWarning();
      const index = message.run;
      // Into the worker's log streams, framed by task: a task run again after a requeue keeps each attempt's output.
      const logs = { out: slotLog("out", index), err: slotLog("err", index) };
      const requeue = signal
        ? {
            requeue: {
              forward: signal,
              forwardAll: warning!.forwardAll,
              maxRequeues: warning!.maxRequeues,
              restarted: !("fresh" in message && message.fresh),
              requeue: async () => {
                process.send?.({ requeued: index } satisfies FromSlot);
                return undefined;
              },
            },
          }
        : {};
      runOneTask({ folder, index, rank: 0, jobId, load: () => spec.read(index), logs, report: (line) => logs.err.write(line), checkAfter: false, sink, ...requeue }).then(
        async (ok) => {
          await Promise.all([logs.out.drained(), logs.err.drained()]);
          busy = false;
          if (!process.connected) return resolve(0);
          // Before the slot's own check, which may collect garbage: that is neither this task's nor the next's.
          const cpuMs = cpu.ms();
          const retire = grown();
          const cpuNext = cpu.ms();
          // The worker tells a slot that retires to leave.
          // A worker that died meanwhile cannot take it: the slot's disconnect ends it (no unhandled EPIPE).
          process.send?.({ done: index, ok, ...(retire ? { retire } : {}), cpu: cpuMs, cpuNext } satisfies FromSlot, () => undefined);
        },
        async (error: unknown) => {
          // What the task wrote last reaches the worker first, if it can within a moment.
          await Promise.race([Promise.all([logs.out.drained(), logs.err.drained()]), new Promise((r) => setTimeout(r, 2_000))]);
          // Slurm, the worker or the kernel ended the task: leave without a result; the worker decides what it was.
          if (error instanceof Terminated) resolve(error.signal === "SIGKILL" ? 137 : 143);
          else {
            process.stderr.write(`slurmkit runner: slot failed on task ${index}: ${(error as Error).stack ?? String(error)}\n`);
            resolve(2);
          }
        },
      );
    });
    process.send?.({ ready: true, cpu: cpu.ms() } satisfies FromSlot);
  });
}

/**
 * Whether this slot process has grown, after a task, past its footprint at
 * the start by more than SLOT_MARGIN_MB (after a garbage collection), as its
 * worker counts memory: then it retires, and the next task gets a new
 * process. Up to that margin, the worker does not charge a task with what
 * its slot carries, and asks Slurm for it on top. Never, when its worker
 * enforces no `mem`.
 */
function growthCheck(): () => boolean {
  const measure = process.env.SLURMKIT_MEMORY_MEASURE as MemoryMeasure | undefined;
  if (measure !== "resident" && measure !== "proportional" && measure !== "charged") return () => false;
  const start = footprintKb(process.pid, measure) ?? 0;
  const limit = start + SLOT_MARGIN_MB * 1024;
  const over = () => (footprintKb(process.pid, measure) ?? 0) > limit;
  return () => {
    if (!over()) return false;
    collectGarbage();
    return over();
  };
}

let gc: (() => void) | undefined;

/** A full garbage collection, without exposing `gc` to the tasks. */
function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
}
