// Where a task's state and result records go: files per task (one task per
// element), or the record stream of the worker that runs it (packed). A
// worker's slots hand their records to the worker, which appends them to its
// one stream and group-commits.
import { readdir } from "node:fs/promises";
import { writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import { MAX_RECORD, readStream, StreamWriter } from "../src/protocol/record-stream.js";
import { failedResult } from "../src/protocol/results.js";
import type { ResultFile, StateFile, UsageRecord } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";
import type { LogTarget } from "./execute.js";
import { decodeTaskRecord, encodeLogChunk, encodeTaskRecord, parseTaskStreamName, withUsage, type TaskStreamRecord } from "../src/protocol/task-stream.js";

/** Where the runner writes a task's records. */
export interface TaskRecordSink {
  /** A task's state (rank 0's). */
  state(index: number, state: StateFile): Promise<void>;
  /** A task's result from rank `rank`; `bytes` is it packed (the result file's content). */
  result(index: number, rank: number, result: ResultFile, bytes: Buffer): Promise<void>;
  /** A result ends the task's records: no COMPLETED or FAILED state follows it (a worker's stream, where it would only repeat the result). */
  readonly resultEnds?: boolean;
}

/** Files per task: `state/<i>.state` and `results/<i>[.r<r>].result`, each written atomically. */
export function fileSink(folder: RunFolder): TaskRecordSink {
  return {
    state: (index, state) => writeFileAtomic(folder.task(index).state, packr.pack(state)),
    result: (index, rank, _result, bytes) => writeFileAtomic(folder.result(index, rank), bytes),
  };
}

/** What a slot sends its worker for each record: the payload (base64 of msgpack), and what the worker needs to know of it. */
export interface RecordMessage {
  readonly record: string;
  readonly index: number;
  /** The state it records, or "result". */
  readonly kind: StateFile["state"] | "result";
}

/** What a slot sends its worker for each chunk of a task's output: which stream, the task, and the bytes (base64). */
export interface LogMessage {
  readonly log: "out" | "err";
  readonly index: number;
  readonly data: string;
}

/**
 * A fault for tests (set in the environment the job inherits): the worker
 * kills itself (SIGKILL) right after it appended this task's result, before
 * any flush, as a worker killed in its group-commit window would be.
 */
const FAULT_KILL_AFTER_RESULT = Number(process.env.SLURMKIT_FAULT_KILL_AFTER_RESULT ?? Number.NaN);

/** The worker's streams are flushed at most this long after something was appended. */
const GROUP_COMMIT_MS = 20;
/** Its writers flush only when WorkerRecords says. */
const MANUAL = { groupCommitMs: false } as const;

/** Chunks larger than this go to the worker in parts: a stream record stays small. */
const LOG_CHUNK = 1 << 20;

/** A slot's task's stdout or stderr: chunks go to the worker over IPC, which frames them into its log stream. */
export function slotLog(log: "out" | "err", index: number): LogTarget {
  let last: Promise<void> = Promise.resolve();
  const sendOne = (bytes: Buffer): boolean => {
    let ok = true;
    last = new Promise<void>((resolve) => {
      const message: LogMessage = { log, index, data: bytes.toString("base64") };
      ok = process.send?.(message, () => resolve()) ?? true;
      if (!process.send) resolve();
    });
    return ok;
  };
  return {
    write(chunk) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let ok = true;
      for (let at = 0; at < bytes.length; at += LOG_CHUNK) ok = sendOne(bytes.subarray(at, at + LOG_CHUNK)) && ok;
      return ok;
    },
    // Messages go out in order: once the last one is sent, every one is.
    drained: () => last,
  };
}

/** A worker's slot: records go to the worker over IPC, in order, before the slot says the task is done. */
export function slotSink(): TaskRecordSink {
  const send = (record: TaskStreamRecord, kind: RecordMessage["kind"]) =>
    new Promise<void>((resolve) => {
      let payload = encodeTaskRecord(record);
      if (payload.length > MAX_RECORD && "result" in record) {
        const message = `The task's result is ${payload.length} bytes as msgpack, more than a record of its worker's stream holds (${MAX_RECORD} bytes): write large outputs to files, and return their paths`;
        const { host, jobId, startedAt } = record.result;
        payload = encodeTaskRecord({ index: record.index, result: failedResult({ name: "TypeError", message }, { host, jobId, startedAt }) });
      }
      const message: RecordMessage = { record: payload.toString("base64"), index: record.index, kind };
      // A worker that is gone cannot take it: the task's result is lost with the worker, as with a file on a dead node.
      if (!process.send?.(message, () => resolve())) resolve();
    });
  return {
    state: (index, state) => send({ index, state }, state.state),
    result: (index, _rank, result) => send({ index, result }, "result"),
    resultEnds: true,
  };
}

/**
 * A worker's streams, a new set for each attempt of the worker: its tasks'
 * records (`streams/<worker>.<n>.rec`) and their stdout and stderr in chunks
 * (`.out`, `.err`); what it has written, and what its earlier attempts wrote.
 * Everything is flushed at most 20 ms after it comes, and at once by
 * `flush()`: before a slot takes its next task, and before the worker exits.
 */
export class WorkerRecords {
  readonly #results = new Set<number>();
  readonly #states = new Map<number, StateFile["state"]>();
  /** One timer for all three streams, so that a task's output goes to disk no later than its result. */
  #timer: NodeJS.Timeout | undefined;
  /** Why a stream could not be written; from then on nothing more is appended, and the worker takes no more tasks. */
  #failure: Error | undefined;

  private constructor(
    private readonly writer: StreamWriter,
    private readonly logs: { readonly out: StreamWriter; readonly err: StreamWriter },
  ) {}

  /**
   * Opens this worker attempt's stream. A restarted worker first reads what
   * its earlier attempts wrote, so that it knows which of its tasks ended.
   */
  static async open(folder: RunFolder, worker: string): Promise<WorkerRecords> {
    const names = await readdir(folder.streamsDir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return [] as string[];
      throw e;
    });
    const earlier = names.flatMap((name) => {
      const parsed = parseTaskStreamName(name);
      return parsed?.worker === worker ? [{ name, attempt: parsed.attempt, kind: parsed.kind }] : [];
    });
    const records: TaskStreamRecord[] = [];
    for (const { name } of earlier.filter((e) => e.kind === "rec").sort((a, b) => a.attempt - b.attempt)) {
      const path = `${folder.streamsDir}/${name}`;
      for (const payload of (await readStream(path)).records) {
        try {
          records.push(decodeTaskRecord(payload, path));
        } catch {
          // A record no slurmkit wrote: skip it, as a reader would.
        }
      }
    }
    let attempt = earlier.reduce((n, e) => Math.max(n, e.attempt + 1), 0);
    let writer: StreamWriter | undefined;
    while (!writer) {
      writer = await StreamWriter.create(folder.taskStream(worker, attempt), MANUAL).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "EEXIST") return undefined;
        throw e;
      });
      attempt++;
    }
    attempt--;
    const logs = {
      out: await StreamWriter.create(folder.taskStream(worker, attempt, "out"), MANUAL),
      err: await StreamWriter.create(folder.taskStream(worker, attempt, "err"), MANUAL),
    };
    const out = new WorkerRecords(writer, logs);
    for (const r of records) {
      if ("result" in r) out.#note(r.index, "result");
      else if ("state" in r) out.#note(r.index, r.state.state);
    }
    return out;
  }

  /** The stream's path. */
  get path(): string {
    return this.writer.path;
  }

  #note(index: number, kind: RecordMessage["kind"]): void {
    if (kind === "result") this.#results.add(index);
    else this.#states.set(index, kind);
  }

  /** Why its streams could not be written, if they could not: the worker then takes no more tasks. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Appends to one stream, and flushes within GROUP_COMMIT_MS. Never throws: a failure is kept in `failure`. */
  #append(to: StreamWriter, payload: () => Uint8Array): void {
    if (this.#failure) return;
    try {
      to.append(payload());
    } catch (error) {
      this.#failure = error as Error;
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch(() => undefined);
    }, GROUP_COMMIT_MS);
  }

  /** Appends a record a slot sent; a result with what its task used, in one record where it can. */
  appendMessage(m: RecordMessage, usage?: UsageRecord | undefined): void {
    const payload = Buffer.from(m.record, "base64");
    const joined = usage && m.kind === "result" ? withUsage(payload, usage) : undefined;
    this.#append(this.writer, () => joined ?? payload);
    if (usage && !joined) this.appendUsage(m.index, usage);
    this.#note(m.index, m.kind);
    if (m.kind === "result" && m.index === FAULT_KILL_AFTER_RESULT) process.kill(process.pid, "SIGKILL");
  }

  /** Appends a task's result that the worker itself decided (a task it stopped, with what it used, or one that never started). */
  appendResult(index: number, result: ResultFile, usage?: UsageRecord | undefined): void {
    this.#append(this.writer, () => encodeTaskRecord(usage ? { index, result, usage } : { index, result }));
    this.#note(index, "result");
  }

  /** Appends what a task used, after its result, in a record of its own (where it could not go with the result). */
  appendUsage(index: number, usage: UsageRecord): void {
    this.#append(this.writer, () => encodeTaskRecord({ index, usage }));
  }

  /** Appends a chunk of a task's output that a slot sent. */
  appendLog(m: LogMessage): void {
    this.#append(this.logs[m.log], () => encodeLogChunk(m.index, Buffer.from(m.data, "base64")));
  }

  /** Whether the task has a result here (this attempt's or an earlier one's). */
  hasResult(index: number): boolean {
    return this.#results.has(index);
  }

  /** The task's last state recorded here. */
  lastState(index: number): StateFile["state"] | undefined {
    return this.#states.get(index);
  }

  /**
   * Writes and syncs what is queued: logs first, so that a task's output is
   * on disk once its result is. The records are flushed even when a log
   * stream fails; rejects with the first failure.
   */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const logs = await Promise.allSettled([this.logs.out.flush(), this.logs.err.flush()]);
    const records = await Promise.allSettled([this.writer.flush()]);
    this.#fail([...logs, ...records]);
  }

  /** Flushes and closes the streams, each whatever the others do. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    const logs = await Promise.allSettled([this.logs.out.close(), this.logs.err.close()]);
    const records = await Promise.allSettled([this.writer.close()]);
    this.#fail([...logs, ...records]);
  }

  #fail(settled: readonly PromiseSettledResult<void>[]): void {
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (!failed) return;
    this.#failure ??= failed.reason as Error;
    throw this.#failure;
  }
}
