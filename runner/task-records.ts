// Where a task's state and result records go: files per task (one task per
// element), or the record stream of the worker that runs it (packed). A
// worker's slots hand their records to the worker, which appends them to its
// one stream and group-commits.
import { readdir } from "node:fs/promises";
import { writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import { readStream, StreamWriter } from "../src/protocol/record-stream.js";
import type { ResultFile, StateFile } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";
import { decodeTaskRecord, encodeTaskRecord, parseTaskStreamName, type TaskStreamRecord } from "../src/protocol/task-stream.js";

/** Where the runner writes a task's records. */
export interface TaskRecordSink {
  /** A task's state (rank 0's). */
  state(index: number, state: StateFile): Promise<void>;
  /** A task's result from rank `rank`; `bytes` is it packed (the result file's content). */
  result(index: number, rank: number, result: ResultFile, bytes: Buffer): Promise<void>;
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

/** A worker's slot: records go to the worker over IPC, in order, before the slot says the task is done. */
export function slotSink(): TaskRecordSink {
  const send = (record: TaskStreamRecord, kind: RecordMessage["kind"]) =>
    new Promise<void>((resolve) => {
      const message: RecordMessage = { record: encodeTaskRecord(record).toString("base64"), index: record.index, kind };
      // A worker that is gone cannot take it: the task's result is lost with the worker, as with a file on a dead node.
      if (!process.send?.(message, () => resolve())) resolve();
    });
  return {
    state: (index, state) => send({ index, state }, state.state),
    result: (index, _rank, result) => send({ index, result }, "result"),
  };
}

/**
 * A worker's records: its own stream (`streams/<worker>.<n>.rec`, a new one
 * for each attempt of the worker), what it has written there, and what its
 * earlier attempts wrote. Records are flushed at most 20 ms after they come,
 * and at once by `flush()`: before a slot takes its next task, and before the
 * worker exits.
 */
export class WorkerRecords {
  readonly #results = new Set<number>();
  readonly #states = new Map<number, StateFile["state"]>();

  private constructor(private readonly writer: StreamWriter) {}

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
      return parsed?.worker === worker ? [{ name, attempt: parsed.attempt }] : [];
    });
    const records: TaskStreamRecord[] = [];
    for (const { name } of earlier.sort((a, b) => a.attempt - b.attempt)) {
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
      writer = await StreamWriter.create(folder.taskStream(worker, attempt)).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "EEXIST") return undefined;
        throw e;
      });
      attempt++;
    }
    const out = new WorkerRecords(writer);
    for (const r of records) out.#note(r.index, "result" in r ? "result" : r.state.state);
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

  /** Appends a record a slot sent. */
  appendMessage(m: RecordMessage): void {
    this.writer.append(Buffer.from(m.record, "base64"));
    this.#note(m.index, m.kind);
  }

  /** Appends a task's result that the worker itself decided (a task it stopped, or one that never started). */
  appendResult(index: number, result: ResultFile): void {
    this.writer.append(encodeTaskRecord({ index, result }));
    this.#note(index, "result");
  }

  /** Whether the task has a result here (this attempt's or an earlier one's). */
  hasResult(index: number): boolean {
    return this.#results.has(index);
  }

  /** The task's last state recorded here. */
  lastState(index: number): StateFile["state"] | undefined {
    return this.#states.get(index);
  }

  /** Writes and syncs what is queued. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Flushes and closes the stream. */
  close(): Promise<void> {
    return this.writer.close();
  }
}
