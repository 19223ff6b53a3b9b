import type { Job } from "../core/job.js";
import { JobEndedWithoutResultError, TaskFailedError, UsageError } from "../base/errors.js";
import { toJson } from "../report/json.js";
import { viewsOf } from "../report/views.js";
import { openFolder } from "./folder.js";
import { parse } from "./options.js";

/** What a failed task's row says about its error. */
function errorOf(error: unknown, job: Job<unknown>): Record<string, unknown> {
  if (error instanceof TaskFailedError) {
    return { name: error.remote.name, message: error.remote.message, stack: error.remote.stack, host: error.host, log: error.logPath, exitCode: error.exitCode, signal: error.signal };
  }
  if (error instanceof JobEndedWithoutResultError) return { name: error.name, message: error.shortMessage, log: error.logPath, logTail: error.logTail };
  const e = error as Error;
  return { name: e.name, message: e.message, log: job.paths.stderr };
}

/**
 * `slurmkit results <folder> [--failed]`: JSON Lines, one object per task
 * (its latest run): index, submission, task, id, state, host and times, and
 * `result` (the value, msgpack decoded; see toJson for values JSON cannot
 * hold) or `error`. Tasks that have not ended have neither.
 */
export async function results(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("results", args, { failed: { type: "boolean" } });
  if (positionals.length > 1) throw new UsageError(`slurmkit results takes one folder, got ${positionals.length} arguments`);
  const folder = await openFolder(positionals[0], values, "results");
  try {
    const views = viewsOf(folder.jobs);
    for (const [i, job] of folder.jobs.entries()) {
      if (values.failed && (!job.done() || job.state === "COMPLETED")) continue;
      const { index, submission, task, id, state, host, startedAt, endedAt } = views[i]!;
      const row: Record<string, unknown> = { index, submission, task, id, state, host, startedAt, endedAt };
      if (job.done()) {
        await job.result().then(
          (value) => (row.result = value ?? null),
          (error: unknown) => (row.error = errorOf(error, job)),
        );
      }
      process.stdout.write(`${toJson(row)}\n`);
    }
    return 0;
  } finally {
    folder.close();
  }
}
