/**
 * The slurmkit runner, started on the node by the sbatch script (or by
 * LocalExecutor) through its scheduler's entry (src/<scheduler>/runner.ts),
 * which calls runRunner with the scheduler's node side:
 *
 * Its options are one codec, src/protocol/runner-args.ts, which the plan and
 * the worker (for its slots) write with:
 *
 *     runner.js <run folder> [--element-offset O] [--warning SIG --max-requeues N [--forward-warning]]
 *         runs one task: O + the element's index in its array; every
 *         rank of a multi-rank job runs it, and rank r > 0 writes its own result;
 *         on SIG (Slurm's warning) a task that checkpoints is requeued
 *     runner.js <run folder> --worker W --workers N --slots K --cpus-per-task C [--task-time T] [--walltime S] [--task-mem M [--task-mem-pss]]
 *               [--warning SIG --warn-seconds S --max-requeues N [--forward-warning]]
 *         a worker element of a packed submission: claims tasks and runs each
 *         in one of K slot processes, started as `runner.js <run folder> --slot [--warning ...]`
 *
 * Exit code: 0 when the task (or every task a worker ran) succeeded, 1 when
 * one failed, 2 when the runner itself could not work.
 */
import { mkdir } from "node:fs/promises";
import { RunFolder } from "../src/protocol/run-folder.js";
import { readSpecRecord } from "../src/protocol/spec-file.js";
import { openSync } from "node:fs";
import { fileTarget, routeOutput, Terminated, type TaskLogs } from "./execute.js";
import type { NodeSide } from "../src/core/node-side.js";
import { jobIdOf, taskIndex, useNodeSide } from "./node.js";
import { decodeRunnerArgs, RUNNER_USAGE } from "../src/protocol/runner-args.js";
import { earlyWarning, listenForWarning, requeuedBefore } from "./attempts.js";
import { runOneTask } from "./run-task.js";
import { runSlot } from "./slot.js";
import { runWorker } from "./worker.js";
import { ElementMeter } from "./usage.js";
import { useContainer } from "./container.js";

/** Opens a task's own log files (appending: a requeued task keeps each attempt's), and sends what a function task prints there. */
function openLogs(folder: RunFolder, index: number): TaskLogs {
  const paths = folder.task(index);
  routeOutput();
  return { out: fileTarget(openSync(paths.stdout, "a")), err: fileTarget(openSync(paths.stderr, "a")) };
}

async function main(node: NodeSide): Promise<number> {
  useNodeSide(node);
  const dir = process.argv[2];
  if (!dir || dir.startsWith("--")) {
    process.stderr.write(`slurmkit runner: usage: ${RUNNER_USAGE}\n`);
    return 2;
  }
  const folder = new RunFolder(dir);
  const args = decodeRunnerArgs(process.argv.slice(3));
  useContainer(args.container, folder.dir);
  if (args.mode === "slot") return runSlot(folder, args.warning);
  // A warning that came before the runner listens (the batch script kept it, or it comes while a worker sets up) is not lost.
  const warnedEarly = earlyWarning(args.warning?.signal);
  if (args.mode === "worker") {
    const w = args.worker;
    return runWorker(folder, {
      workerIndex: taskIndex(process.env, w.firstWorker),
      workerCount: w.workers,
      slots: w.slots,
      cpusPerTask: w.cpusPerTask,
      taskTimeSeconds: w.taskTimeSeconds,
      walltimeSeconds: w.walltimeSeconds,
      taskMemMb: w.taskMemMb,
      taskMemPss: w.taskMemPss,
      warning: args.warning,
      warnedEarly,
    });
  }
  // Listen for the scheduler's warning first thing, so that none is missed.
  const { warning, elementOffset: offset } = args;
  const requeueable = node.requeueableJob(process.env);
  if (warning) listenForWarning(warning.signal, requeueable, (line) => process.stderr.write(line), warnedEarly());
  const index = taskIndex(process.env, offset ?? 0);
  const here = node.environment(process.env);
  const rank = here.rank;
  await mkdir(folder.stateDir, { recursive: true });
  await mkdir(folder.resultsDir, { recursive: true });
  // A split array's element is not the task's index, so Slurm's own log is the element's: rank 0 writes the task's logs.
  const logs = offset !== undefined && rank === 0 ? openLogs(folder, index) : undefined;
  try {
    const ok = await runOneTask({
      folder,
      index,
      rank,
      jobId: jobIdOf(process.env),
      load: () => readSpecRecord(folder.spec, index),
      meter: () => new ElementMeter(),
      ...(logs ? { logs } : {}),
      ...(warning
        ? {
            requeue: {
              maxRequeues: warning.maxRequeues,
              requeue: requeueable === undefined ? undefined : () => node.requeue(requeueable),
              restarted: here.restarts > 0 || (node.restartsUnknown === true && (await requeuedBefore(folder, index, jobIdOf(process.env)))),
              forward: node.inStep(process.env) ? undefined : warning.signal,
              forwardAll: warning.forwardAll,
            },
          }
        : {}),
      report: (line) => (logs ? logs.err.write(line) : process.stderr.write(line)),
    });
    return ok ? 0 : 1;
  } catch (error) {
    if (!(error instanceof Terminated)) throw error;
    process.stderr.write(`slurmkit runner: task ${index} ${error.message}; no result written\n`);
    const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
    return 128 + (numbers[error.signal] ?? 15);
  }
}

/** Runs the runner on this node with its scheduler's node side, and exits with its code. */
export function runRunner(node: NodeSide): void {
  // Stacks of bundled function tasks name the user's own files and lines.
  process.setSourceMapsEnabled(true);

  // Without a handler, SIGUSR1 (a common pre-timeout signal) would open Node's
  // inspector on the node. Tasks may add their own handlers.
  // SIGUSR2 (Slurm's warning by default) would end the process: the task decides what it means.
  process.on("SIGUSR1", () => {});
  process.on("SIGUSR2", () => {});

  // Exit once the result is written, even if the task left timers or sockets open.
  main(node).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`slurmkit runner: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(2);
    },
  );
}
