// A packed task's stdout and stderr, from its worker's log streams
// (`streams/<worker>.<n>.out|.err`): chunks framed by task index, read on
// from where the last read stopped.
import type { RunFolder } from "../protocol/run-folder.js";
import { decodeLogChunk, parseTaskStreamName } from "../protocol/task-stream.js";
import type { Transport } from "../transport/transport.js";
import { StreamFollower } from "./stream-follower.js";

/** What the logs are read with. */
export type LogFiles = Pick<Transport, "list" | "readFrom" | "readFile">;

/** One worker's (or every worker's) stdout or stderr streams, split by task. */
class WorkerLogs {
  readonly #follower: StreamFollower;
  readonly #chunks = new Map<number, Buffer[]>();
  #reading: Promise<void> | undefined;

  constructor(files: LogFiles, folder: RunFolder, which: "out" | "err", worker: string | undefined) {
    this.#follower = new StreamFollower(files as Transport, folder.streamsDir, (name) => {
      const parsed = parseTaskStreamName(name);
      return parsed?.kind === which && (worker === undefined || parsed.worker === worker);
    });
  }

  async read(index: number): Promise<Buffer> {
    this.#reading ??= this.#poll().finally(() => (this.#reading = undefined));
    await this.#reading;
    return Buffer.concat(this.#chunks.get(index) ?? []);
  }

  async #poll(): Promise<void> {
    const { records } = await this.#follower.poll();
    for (const [name, payloads] of records) {
      for (const payload of payloads) {
        let chunk: { index: number; data: Buffer };
        try {
          chunk = decodeLogChunk(payload, name);
        } catch {
          continue; // too short to be a chunk: not slurmkit's
        }
        const list = this.#chunks.get(chunk.index) ?? [];
        list.push(chunk.data);
        this.#chunks.set(chunk.index, list);
      }
    }
  }
}

const known = new WeakMap<object, Map<string, WorkerLogs>>();

/**
 * A packed task's stdout (`out`) or stderr (`err`) so far, from the log
 * streams of `worker` (the one that ran it, from its state record), or of
 * every worker when that is not known. The first read of a worker's streams
 * reads them whole; later reads only what was added.
 */
export function readTaskLog(files: LogFiles, folder: RunFolder, index: number, which: "out" | "err", worker?: string): Promise<Buffer> {
  const byKey = known.get(files) ?? new Map<string, WorkerLogs>();
  known.set(files, byKey);
  const key = `${folder.dir}\0${which}\0${worker ?? ""}`;
  const logs = byKey.get(key) ?? new WorkerLogs(files, folder, which, worker);
  byKey.set(key, logs);
  return logs.read(index);
}
