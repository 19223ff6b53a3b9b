import { closeSync, openSync, writeSync } from "node:fs";
import type { RunFolder } from "../src/protocol/run-folder.js";
import { readSpecRecord } from "../src/protocol/spec-file.js";
import { routeOutput, Terminated } from "./execute.js";
import { runOneTask } from "./run-task.js";

/** What the worker tells a slot: run this task, or leave. */
export type ToSlot = { readonly run: number } | { readonly exit: true };
/** What a slot tells its worker: it is ready for tasks, or a task is done (its result and state are written). */
export type FromSlot = { readonly ready: true } | { readonly done: number; readonly ok: boolean };

/**
 * One slot of a worker, in its own process (`runner.js <dir> --slot`): it runs
 * the tasks its worker sends, one at a time, each with its own logs, result
 * and state. Function tasks run here, so slots run in parallel and a task
 * module is imported once per slot. The process ends when the worker says so
 * or goes away.
 */
export function runSlot(folder: RunFolder): Promise<number> {
  const jobId = process.env.SLURMKIT_WORKER_ID ?? "local";
  routeOutput();
  return new Promise((resolve) => {
    let busy = false;
    process.on("disconnect", () => {
      if (!busy) resolve(0);
    });
    process.on("message", (message: ToSlot) => {
      if ("exit" in message) return resolve(0);
      busy = true;
      const index = message.run;
      const paths = folder.task(index);
      const logs = { out: openSync(paths.stdout, "w"), err: openSync(paths.stderr, "w") };
      runOneTask({ folder, index, rank: 0, jobId, load: () => readSpecRecord(folder.spec, index), logs, report: (line) => writeSync(logs.err, line), checkAfter: false }).then(
        (ok) => {
          closeSync(logs.out);
          closeSync(logs.err);
          busy = false;
          if (!process.connected) return resolve(0);
          process.send?.({ done: index, ok } satisfies FromSlot);
        },
        (error: unknown) => {
          closeSync(logs.out);
          closeSync(logs.err);
          // Slurm or the worker ended the task: leave without a result; the worker decides what it was.
          if (error instanceof Terminated) resolve(143);
          else {
            process.stderr.write(`slurmkit runner: slot failed on task ${index}: ${(error as Error).stack ?? String(error)}\n`);
            resolve(2);
          }
        },
      );
    });
    process.send?.({ ready: true } satisfies FromSlot);
  });
}
