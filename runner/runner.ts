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
import { mkdir } from "node:fs/promises";
import { RunFolder } from "../src/protocol/run-folder.js";
import { readSpecRecord } from "../src/protocol/spec-file.js";
import { Terminated } from "./execute.js";
import { jobIdOf, taskIndex } from "./node.js";
import { runPacked } from "./packed.js";
import { runOneTask } from "./run-task.js";

/** Reads `--name value` from argv. */
function option(argv: readonly string[], name: string): number | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const value = Number(argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`Bad ${name} '${argv[i + 1]}': expected a non-negative integer`);
  return value;
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
  await mkdir(folder.stateDir, { recursive: true });
  await mkdir(folder.resultsDir, { recursive: true });
  try {
    const ok = await runOneTask({
      folder,
      index,
      rank: Number(process.env.SLURM_PROCID ?? "0"),
      jobId: jobIdOf(process.env),
      load: () => readSpecRecord(folder.spec, index),
      report: (line) => process.stderr.write(line),
    });
    return ok ? 0 : 1;
  } catch (error) {
    if (!(error instanceof Terminated)) throw error;
    process.stderr.write(`slurmkit runner: task ${index} ${error.message}; no result written\n`);
    const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
    return 128 + (numbers[error.signal] ?? 15);
  }
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
