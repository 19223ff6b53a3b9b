import { plural } from "../base/words.js";
import { outcomeOf, type Job } from "../core/job.js";
import { JobEndedWithoutResultError, TaskFailedError, UsageError } from "../base/errors.js";
import { toJson } from "../report/json.js";
import { ascii, JsonLinesWriter } from "../report/json-lines.js";
import type { TaskRecords } from "../engine/task-records.js";
import { usageOf, viewer } from "../report/views.js";
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

/** A row's field names and fixed parts, as bytes. */
const F = {
  index: ascii('{"index":'),
  submission: ascii(',"submission":'),
  task: ascii(',"task":'),
  id: ascii(',"id":'),
  state: ascii(',"state":'),
  completed: ascii(',"state":"COMPLETED"'),
  host: ascii(',"host":'),
  startedAt: ascii(',"startedAt":'),
  endedAt: ascii(',"endedAt":'),
  result: ascii(',"result":'),
  error: ascii(',"error":'),
  close: ascii("}"),
  cpuMs: ascii(',"usage":{"cpuMs":'),
  memKb: ascii(',"memKb":'),
};

/**
 * `slurmkit results <folder> [--failed]`: JSON Lines, one object per task
 * (its latest run): index, submission, task, id, state, host and times, and
 * `result` (the value, msgpack decoded; see toJson for values JSON cannot
 * hold) or `error`. Tasks that have not ended have neither. `usage`: what an
 * ended task used, as recorded on its node (cpuMs, memKb, memSamples, slot,
 * gpu; see records.ts).
 */
export async function results(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("results", args, { failed: { type: "boolean" } });
  if (positionals.length > 1) throw new UsageError(`slurmkit results takes one folder, got ${plural(positionals.length, "argument")}`);
  // A packed task completed in its stream is read there, with no future made for it.
  const folder = await openFolder(positionals[0], values, "results", true);
  try {
    // Each row is written field by field as bytes: a million rows are not each an object, nor strings, to encode.
    const out = new JsonLinesWriter(process.stdout);
    const failedOnly = values.failed === true;
    const view = viewer();
    /** A completed task's `"result"`; an `"error"` if its value cannot be read (it is decoded from its record only now). */
    const result = (value: () => unknown, log: () => string) => {
      let json: string | undefined;
      try {
        const v = value() ?? null;
        if (typeof v === "number") return out.bytes(F.result).number(v);
        json = toJson(v);
      } catch (error) {
        return out.bytes(F.error).text(toJson(errorOf(error, log)));
      }
      return out.bytes(F.result).text(json);
    };
    /** A task's `"result"` from its stream: a number written as it is; anything else through result(). */
    const streamedResult = (r: TaskRecords, task: number) => {
      let v: unknown;
      let read = true;
      try {
        v = r.resultValue(task);
      } catch {
        read = false;
      }
      if (read && typeof v === "number") out.bytes(F.result).number(v);
      else result(read ? () => v : () => r.resultValue(task), () => r.folder.task(task).stderr);
    };
    /** A future's row; false when --failed leaves it out. */
    const jobRow = (job: Job<unknown>, i: number): boolean => {
      if (failedOnly && (!job.done() || job.state === "COMPLETED")) return false;
      const { index, submission, task, id, state, host, startedAt, endedAt } = view(job, i);
      out.bytes(F.index).number(index).bytes(F.submission).string(submission).bytes(F.task).number(task).bytes(F.id).string(id).bytes(F.state).string(state);
      if (host !== undefined) out.bytes(F.host).string(host);
      if (startedAt !== undefined) out.bytes(F.startedAt).number(startedAt);
      if (endedAt !== undefined) out.bytes(F.endedAt).number(endedAt);
      // Settled jobs are read as they are: a million rows do not each wait on a promise.
      const outcome = outcomeOf(job);
      const log = () => job.paths.stderr;
      if (outcome) {
        if ("error" in outcome) out.bytes(F.error).text(toJson(errorOf(outcome.error, log)));
        else result(() => outcome.value, log);
        const usage = usageOf(job, outcome.ran);
        if (usage) out.text(`,"usage":${JSON.stringify(usage)}`);
      }
      out.bytes(F.close);
      return true;
    };
    /** The end of a usage object, `,"memSamples":S,"slot":N}`, as bytes once per pair (a million rows repeat a few). */
    const usageEnds = new Map<number, Uint8Array>();
    /** A streamed task's `"usage"`, from its worker's record, field by field. */
    const streamedUsage = (r: TaskRecords, task: number) => {
      if (!r.hasUsage(task)) return;
      if (r.usageHasGpu(task)) {
        out.text(`,"usage":${JSON.stringify(r.usage(task))}`);
        return;
      }
      out.bytes(F.cpuMs).number(r.usageCpuMs(task));
      const memKb = r.usageMemKb(task);
      if (!Number.isNaN(memKb)) out.bytes(F.memKb).number(memKb);
      const samples = r.usageSamples(task);
      const slot = r.usageSlot(task);
      const key = samples < 2 ** 20 && slot < 2 ** 11 ? samples * 2 ** 12 + (slot + 1) : -1;
      let tail = key >= 0 ? usageEnds.get(key) : undefined;
      if (tail === undefined) {
        tail = ascii(`,"memSamples":${samples}${slot >= 0 ? `,"slot":${slot}` : ""}}`);
        if (key >= 0 && usageEnds.size < 10_000) usageEnds.set(key, tail);
      }
      out.bytes(tail);
    };
    if (!folder.parts) {
      for (const [i, job] of folder.jobs.entries()) if (jobRow(job, i) && out.end()) await out.flush();
    } else {
      let index = 0;
      for (const { submission, taskCount, jobs, streamed } of folder.parts) {
        let next = 0;
        // The fixed parts of a streamed row, as bytes once: up to the task's number, and from its job id to its start.
        const head = Buffer.from(`,"submission":${JSON.stringify(submission)},"task":`, "utf8");
        const middles = new Map<number, Uint8Array>();
        for (let task = 0; task < taskCount; task++, index++) {
          if (streamed?.settled[task] !== 1) {
            if (jobRow(jobs[next++]!, index) && out.end()) await out.flush();
            continue;
          }
          // Completed in its stream: the row its future would give, read from the records.
          if (failedOnly) continue;
          const r = streamed.records;
          const place = r.resultPlace(task);
          let middle = middles.get(place);
          if (middle === undefined) {
            middle = Buffer.from(`,"id":${JSON.stringify(r.resultJobId(task))},"state":"COMPLETED","host":${JSON.stringify(r.resultHost(task))},"startedAt":`);
            if (place >= 0) middles.set(place, middle);
          }
          out.bytes(F.index).number(index).bytes(head).number(task).bytes(middle).number(r.resultStartedAt(task)).bytes(F.endedAt).number(r.resultEndedAt(task));
          streamedResult(r, task);
          streamedUsage(r, task);
          out.bytes(F.close);
          if (out.end()) await out.flush();
        }
      }
    }
    await out.flush();
    return 0;
  } finally {
    folder.close();
  }
}
