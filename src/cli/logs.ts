import { plural } from "../base/words.js";
import { UsageError } from "../base/errors.js";
import { StringDecoder } from "node:string_decoder";
import { readJobLog, type Job } from "../core/job.js";
import { unlessUnreachable } from "../transport/transport.js";
import { runsOf } from "../engine/origin.js";
import { openFolder, pickTasks } from "./folder.js";
import { parse } from "./options.js";

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
  if (positionals.length !== 2) throw new UsageError(`slurmkit logs takes a folder and one task (an index, or a Slurm id such as 1234_7), got ${plural(positionals.length, "argument")}`);
  const folder = await openFolder(positionals[0], values, "logs");
  try {
    const [job] = pickTasks(folder.jobs, [positionals[1]!]);
    const read = (run: Job<unknown>) => readJobLog(run, values.err ? "err" : "out").catch(unlessUnreachable(Buffer.alloc(0)));
    if (values.attempt === undefined) {
      if (values.follow) return await follow(job!, read, Buffer.alloc(0));
      process.stdout.write(await read(job!));
      return 0;
    }
    const n = Number(values.attempt);
    const attempts = await attemptsOf(job!);
    if (!Number.isInteger(n) || n < 0 || n >= attempts.length) {
      throw new UsageError(`Expected --attempt to be an attempt of task ${positionals[1]}: 0${attempts.length > 1 ? ` to ${attempts.length - 1}` : ""}, got '${values.attempt}'`);
    }
    if (values.follow && n !== attempts.length - 1) throw new UsageError(`--follow follows the latest attempt (${attempts.length - 1}); attempt ${n} has ended`);
    const { run, local } = attempts[n]!;
    const bytes = await read(run);
    process.stdout.write(attemptSection(bytes.toString("utf8"), local) ?? "");
    return values.follow ? await follow(job!, read, bytes) : 0;
  } finally {
    folder.close();
  }
}

/** Prints the log as it grows, from the bytes already shown, until the task has ended; then what is left. */
async function follow(job: Job<unknown>, read: (run: Job<unknown>) => Promise<Buffer>, shown: Buffer): Promise<number> {
  const ended = job.wait().then(() => true);
  const decoder = new StringDecoder("utf8"); // a character split across two reads is printed whole
  let offset = shown.length;
  for (;;) {
    const done = job.done();
    const bytes = await read(job);
    if (bytes.length < offset) offset = 0; // rewritten from the start
    process.stdout.write(decoder.write(bytes.subarray(offset)));
    offset = bytes.length;
    if (done) {
      process.stdout.write(decoder.end());
      return 0;
    }
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
  }
}
