import type { Job } from "../api/job.js";
import { runsOf } from "../api/origin.js";
import { openFolder, pickTasks } from "./folder.js";
import { parse, UsageError } from "./options.js";

/** The runner's line that starts each later attempt in a task's log (see runner/run-task.ts). */
const ATTEMPT_HEADER = /^===== slurmkit: task \d+, attempt (\d+), on .* =====$/m;

/** One attempt's part of a log that holds several: attempt 0 is before the first header. */
export function attemptSection(text: string, attempt: number): string | undefined {
  const parts = text.split(new RegExp(`\\n?${ATTEMPT_HEADER.source}\\n?`, "m"));
  // split with a capture group: [before, n1, section1, n2, section2, ...]
  if (attempt === 0) return parts[0];
  for (let i = 1; i + 1 < parts.length; i += 2) if (Number(parts[i]) === attempt) return parts[i + 1];
  return undefined;
}

/** Every attempt of the task, oldest first, across requeues and reruns: the run that made it and its number there. */
async function attemptsOf(job: Job<unknown>): Promise<Array<{ run: Job<unknown>; local: number }>> {
  const all: Array<{ run: Job<unknown>; local: number }> = [];
  for (const run of runsOf(job)) for (const a of await run.attempts()) all.push({ run, local: a.attempt });
  return all;
}

/**
 * `slurmkit logs <folder> <task> [--err] [--follow] [--attempt N]`: the task's
 * stdout (stderr with --err) from its latest run, every attempt of it;
 * `--attempt N` picks one attempt, counted from 0 across requeues and reruns.
 */
export async function logs(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("logs", args, { err: { type: "boolean" }, follow: { type: "boolean", short: "f" }, attempt: { type: "string" } });
  if (positionals.length !== 2) throw new UsageError(`slurmkit logs takes a folder and one task (an index, or a Slurm id such as 1234_7), got ${positionals.length} arguments`);
  const folder = await openFolder(positionals[0], values, "logs");
  try {
    const [job] = pickTasks(folder.jobs, [positionals[1]!]);
    const read = (run: Job<unknown>) => (values.err ? run.stderr() : run.stdout());
    if (values.attempt !== undefined) {
      const n = Number(values.attempt);
      const attempts = await attemptsOf(job!);
      if (!Number.isInteger(n) || n < 0 || n >= attempts.length) {
        throw new UsageError(`Expected --attempt to be an attempt of task ${positionals[1]}: 0${attempts.length > 1 ? ` to ${attempts.length - 1}` : ""}, got '${values.attempt}'`);
      }
      const { run, local } = attempts[n]!;
      if (values.follow && run !== job) throw new UsageError(`--follow follows the latest attempt (${attempts.length - 1}); attempt ${n} has ended`);
      const section = attemptSection(await read(run), local) ?? "";
      process.stdout.write(section);
      if (!values.follow) return 0;
    }
    if (!values.follow) {
      process.stdout.write(await read(job!));
      return 0;
    }
    return await follow(job!, read, values.attempt !== undefined);
  } finally {
    folder.close();
  }
}

/** Prints the log as it grows until the task has ended, then what is left. */
async function follow(job: Job<unknown>, read: (run: Job<unknown>) => Promise<string>, printed: boolean): Promise<number> {
  const ended = job.wait().then(() => true);
  let shown = printed ? (await read(job)).length : 0;
  for (;;) {
    const done = job.done();
    const text = await read(job);
    if (text.length < shown) shown = 0; // rewritten from the start
    process.stdout.write(text.slice(shown));
    shown = text.length;
    if (done) return 0;
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
  }
}
