import { closeSync, openSync, writeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { RunFolder } from "../src/protocol/run-folder.js";
import { readSpecRange } from "../src/protocol/spec-file.js";
import { children, routeOutput, Terminated } from "./execute.js";
import { jobIdOf, taskIndex } from "./node.js";
import { runOneTask } from "./run-task.js";

/**
 * Runs one array element's chunk of tasks, up to SLURM_CPUS_PER_TASK at once,
 * each with its own logs, result and state. Returns the exit code: 0 when all
 * succeeded, 1 when one failed, 130/143 when Slurm terminated the element.
 */
export async function runPacked(folder: RunFolder, perElement: number, offset: number): Promise<number> {
  const element = taskIndex({ ...process.env, SLURMKIT_INDEX_OFFSET: "0" }) + offset;
  const jobId = jobIdOf(process.env);
  const first = element * perElement;
  const records = await readSpecRange(folder.spec, first, first + perElement);
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
      try {
        const record = records[i]!;
        const ok = await runOneTask({ folder, index, rank: 0, jobId, load: async () => record, logs, report: (line) => writeSync(logs.err, line) });
        if (!ok) failed++;
      } catch (error) {
        if (!(error instanceof Terminated)) throw error;
        return;
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
