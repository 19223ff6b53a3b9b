// What the client knows of a packed submission's task states and results,
// from its workers' record streams: each poll reads only what the streams
// gained (StreamFollower), so it costs one listing and one read per worker
// stream, whatever the number of tasks.
import type { ResultFile, StateFile } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { decodeTaskRecord, isRecordStream, parseTaskStreamName } from "../protocol/task-stream.js";
import type { Transport } from "../transport/transport.js";
import { StreamFollower } from "./stream-follower.js";

/** What TaskRecords reads with. */
export type StreamFiles = Pick<Transport, "list" | "readFrom" | "readFile">;

/** A problem found in a stream: a corrupt tail (nothing after it is read), or a record that is not slurmkit's. */
export interface StreamProblem {
  readonly stream: string;
  readonly message: string;
}

/**
 * The states and results of one packed submission's tasks, as its workers'
 * streams hold them. A task's first result is its result (a worker writes
 * one per task; a second could only come from a worker that ran the task
 * again after a crash, and is ignored). Its state is the latest by time.
 */
export class TaskRecords {
  readonly #follower: StreamFollower;
  readonly #results = new Map<number, ResultFile>();
  readonly #states = new Map<number, StateFile>();
  readonly #problems: StreamProblem[] = [];
  readonly #workers = new Set<string>();
  #recorded = 0;
  #reading: Promise<boolean> | undefined;
  /** The task index of every record read, in order (the first #logged entries): what changed, for those that keep a cursor. */
  #log = new Uint32Array(1024);
  #logged = 0;

  constructor(
    files: StreamFiles,
    /** The submission's folder. */
    readonly folder: RunFolder,
  ) {
    this.#follower = new StreamFollower(files as Transport, folder.streamsDir, isRecordStream);
  }

  /** Reads what the streams gained since the last read; resolves whether anything was new. Calls made while one runs share it. */
  refresh(): Promise<boolean> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<boolean> {
    const { records, corrupt } = await this.#follower.poll();
    for (const name of corrupt) {
      if (!this.#problems.some((p) => p.stream === name)) {
        this.#problems.push({ stream: name, message: `${this.folder.streamsDir}/${name} is corrupt at byte ${this.#follower.offset(name)}: nothing after it is read` });
      }
    }
    for (const [name, payloads] of records) {
      const worker = parseTaskStreamName(name)?.worker;
      if (worker) this.#workers.add(worker);
      const path = `${this.folder.streamsDir}/${name}`;
      for (const payload of payloads) {
        let r: ReturnType<typeof decodeTaskRecord>;
        try {
          r = decodeTaskRecord(payload, path);
        } catch (error) {
          this.#problems.push({ stream: name, message: (error as Error).message });
          continue;
        }
        this.#note(r.index);
        const before = this.#states.get(r.index);
        if (!before && !this.#results.has(r.index)) this.#recorded++;
        if ("result" in r) {
          if (!this.#results.has(r.index)) this.#results.set(r.index, r.result);
        } else if (!before || r.state.at >= before.at) {
          this.#states.set(r.index, r.state);
        }
      }
    }
    return records.size > 0;
  }

  #note(index: number): void {
    if (this.#logged === this.#log.length) {
      const grown = new Uint32Array(this.#log.length * 2);
      grown.set(this.#log);
      this.#log = grown;
    }
    this.#log[this.#logged++] = index;
  }

  /**
   * The tasks whose records were read after `cursor` (a task may appear more
   * than once), and the cursor to pass next time; 0 starts from the first.
   */
  changedSince(cursor: number): { readonly tasks: Uint32Array; readonly cursor: number } {
    return { tasks: this.#log.subarray(cursor, this.#logged), cursor: this.#logged };
  }

  /** The task's result, once a stream holds it. */
  result(index: number): ResultFile | undefined {
    return this.#results.get(index);
  }

  /** The task's latest state record. */
  state(index: number): StateFile | undefined {
    return this.#states.get(index);
  }

  /** How many tasks have a record (a state or a result): tasks that workers took up. */
  get recorded(): number {
    return this.#recorded;
  }

  /** The workers (`A_w`) that wrote records. */
  get workers(): ReadonlySet<string> {
    return this.#workers;
  }

  /** Corrupt tails and foreign records seen so far. */
  get problems(): readonly StreamProblem[] {
    return this.#problems;
  }
}

const known = new WeakMap<object, Map<string, TaskRecords>>();

/** The one TaskRecords of a folder read through `files` (a transport), made on first use. */
export function taskRecords(files: StreamFiles, folder: RunFolder): TaskRecords {
  const byDir = known.get(files) ?? new Map<string, TaskRecords>();
  known.set(files, byDir);
  const records = byDir.get(folder.dir) ?? new TaskRecords(files, folder);
  byDir.set(folder.dir, records);
  return records;
}

/** The TaskRecords of a folder, if something already follows it through `files`. */
export function followedRecords(files: StreamFiles, folder: RunFolder): TaskRecords | undefined {
  return known.get(files)?.get(folder.dir);
}
