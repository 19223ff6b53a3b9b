import { outcomeOf, type Job } from "../core/job.js";
import { JobEndedWithoutResultError, TaskFailedError, UsageError } from "../base/errors.js";
import { toJson } from "../report/json.js";
import { viewer } from "../report/views.js";
import { openFolder } from "./folder.js";
import { parse } from "./options.js";

/** What a failed task's row says about its error; `log` gives the task's stderr, named when the error carries no log of its own. */
function errorOf(error: unknown, log: () => string): Record<string, unknown> {
  if (error instanceof TaskFailedError) {
    return { name: error.remote.name, message: error.remote.message, stack: error.remote.stack, host: error.host, log: error.logPath, exitCode: error.exitCode, signal: error.signal };
  }
  if (error instanceof JobEndedWithoutResultError) return { name: error.name, message: error.shortMessage, log: error.logPath, logTail: error.logTail };
  const e = error as Error;
  return { name: e.name, message: e.message, log: log() };
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
  // A packed task completed in its stream is read there, with no future made for it.
  const folder = await openFolder(positionals[0], values, "results", true);
  try {
    const out = new LineWriter(process.stdout);
    const quoted = new Map<string, string>();
    /** A string as JSON, once per distinct string (submissions, hosts and ids repeat). */
    const quote = (s: string) => {
      let q = quoted.get(s);
      if (q === undefined) {
        q = JSON.stringify(s);
        if (quoted.size < 10_000) quoted.set(s, q);
      }
      return q;
    };
    const failedOnly = values.failed === true;
    const view = viewer();
    /** A future's row. */
    const jobLine = (job: Job<unknown>, i: number): string | undefined => {
      if (failedOnly && (!job.done() || job.state === "COMPLETED")) return undefined;
      const { index, submission, task, id, state, host, startedAt, endedAt } = view(job, i);
      // The row as toJson writes it, field by field: a million rows are not each an object to encode.
      let line = `{"index":${index},"submission":${quote(submission)},"task":${task},"id":${quote(id)},"state":${quote(state)}`;
      if (host !== undefined) line += `,"host":${quote(host)}`;
      if (startedAt !== undefined) line += `,"startedAt":${toJson(startedAt)}`;
      if (endedAt !== undefined) line += `,"endedAt":${toJson(endedAt)}`;
      // Settled jobs are read as they are: a million rows do not each wait on a promise.
      const outcome = outcomeOf(job);
      if (outcome)
        line +=
          "error" in outcome
            ? `,"error":${toJson(errorOf(outcome.error, () => job.paths.stderr))}`
            : resultField(
                () => outcome.value,
                () => job.paths.stderr,
              );
      return `${line}}`;
    };
    if (!folder.parts) {
      for (const [i, job] of folder.jobs.entries()) {
        const line = jobLine(job, i);
        if (line !== undefined && out.line(line)) await out.flush();
      }
    } else {
      let index = 0;
      for (const { submission, taskCount, jobs, streamed } of folder.parts) {
        let next = 0;
        for (let task = 0; task < taskCount; task++, index++) {
          let line: string | undefined;
          if (streamed?.settled[task] === 1) {
            // Completed in its stream: the row its future would give, read from the records.
            if (failedOnly) continue;
            const r = streamed.records;
            line =
              `{"index":${index},"submission":${quote(submission)},"task":${task},"id":${quote(r.resultJobId(task))},"state":"COMPLETED","host":${quote(r.resultHost(task))}` +
              `,"startedAt":${toJson(r.resultStartedAt(task))},"endedAt":${toJson(r.resultEndedAt(task))}${resultField(
                () => r.resultValue(task),
                () => r.folder.task(task).stderr,
              )}}`;
          } else line = jobLine(jobs[next++]!, index);
          if (line !== undefined && out.line(line)) await out.flush();
        }
      }
    }
    await out.flush();
    return 0;
  } finally {
    folder.close();
  }
}

/** A completed task's `"result"` member; an `"error"` one if its value cannot be read (it is decoded from its record only now). */
function resultField(value: () => unknown, log: () => string): string {
  try {
    return `,"result":${toJson(value() ?? null)}`;
  } catch (error) {
    return `,"error":${toJson(errorOf(error, log))}`;
  }
}

/** Lines to a stream in chunks of about 64 KiB: one write per line costs a system call each, a million of them. */
class LineWriter {
  #lines: string[] = [];
  #size = 0;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  /** Adds a line; true once the chunk is full and should be flushed. */
  line(text: string): boolean {
    this.#lines.push(text);
    this.#size += text.length + 1;
    return this.#size >= 64 * 1024;
  }

  /** Writes the lines added so far, waiting while the stream is full. */
  async flush(): Promise<void> {
    if (this.#lines.length === 0) return;
    const chunk = `${this.#lines.join("\n")}\n`;
    this.#lines = [];
    this.#size = 0;
    if (!this.stream.write(chunk)) await new Promise<void>((resolve) => this.stream.once("drain", () => resolve()));
  }
}
