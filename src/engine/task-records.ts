// What the client knows of a packed submission's task states and results,
// from its workers' record streams: each poll reads only what the streams
// gained (StreamFollower), so it costs one listing and one read per worker
// stream, whatever the number of tasks.
import { RunFolderError } from "../base/errors.js";
import { packr } from "../protocol/codec.js";
import { NOT_SCALAR, scalarAt } from "../protocol/msgpack-peek.js";
import type { ResultFile, StateFile, UsageRecord } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { decodeTaskRecord, isRecordStream, parseTaskStreamName, peekedRecord, peekTaskRecord, type PeekedTaskRecord } from "../protocol/task-stream.js";
import type { Transport } from "../transport/transport.js";
import { StreamFollower } from "./stream-follower.js";

/** What TaskRecords reads with. */
export type StreamFiles = Pick<Transport, "list" | "readFrom" | "readFile">;

/** A problem found in a stream: a corrupt tail (nothing after it is read), or a record that is not slurmkit's. */
export interface StreamProblem {
  readonly stream: string;
  readonly message: string;
}

/** What a task's result says without its value: enough to settle its future (a completed task's value is decoded when asked for). */
export interface ResultSummary {
  readonly ok: boolean;
  readonly host: string;
  readonly jobId: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

const STATES: readonly StateFile["state"][] = ["RUNNING", "COMPLETED", "FAILED", "REQUEUED"];
/** No submission has more tasks than this (2^28): a record beyond it is foreign, not a reason to allocate gigabytes. */
const MAX_TASK_INDEX = 2 ** 28 - 1;
/** How a task's result is kept: an ok result's value alone (its record was checked when read), or a whole record (ok or failed) to decode. */
const VALUE_ONLY = 1;
const OK_RECORD = 2;
const FAILED_RECORD = 3;
/** Results' bytes are kept in blocks of this size (a larger result in a block of its own). */
const RESULT_BLOCK = 2 ** 20;

/**
 * The states and results of one packed submission's tasks, as its workers'
 * streams hold them. A task's first result is its result (a worker writes
 * one per task; a second could only come from a worker that ran the task
 * again after a crash, and is ignored). Its state is the latest by time.
 *
 * Kept compact, for a million tasks: typed arrays by task index, strings
 * (hosts, job ids) once each, and each result's bytes (a completed task's
 * value alone) copied into shared blocks, decoded only when someone asks
 * for the result.
 */
export class TaskRecords {
  readonly #follower: StreamFollower;
  readonly #problems: StreamProblem[] = [];
  readonly #workers = new Set<string>();
  #recorded = 0;
  #reading: Promise<boolean> | undefined;
  /** The task index of every record read, in order (the first #logged entries): what changed, for those that keep a cursor. */
  #log = new Uint32Array(1024);
  #logged = 0;
  /** Strings (hosts, job ids) by id, and ids by string. */
  readonly #strings: string[] = [];
  readonly #stringIds = new Map<string, number>();
  readonly #lastString: [string | undefined, string | undefined] = [undefined, undefined];
  readonly #lastId = new Uint32Array(2);
  /** Tasks the arrays below have room for. */
  #capacity = 0;
  /** By task: 1 + the index of its latest state in STATES (0: none), and that state's time, pid, host and job id. */
  #state = new Uint8Array(0);
  #stateAt = new Float64Array(0);
  #statePid = new Float64Array(0);
  #stateHost = new Uint32Array(0);
  #stateJob = new Uint32Array(0);
  /**
   * By task: 0 no result, else VALUE_ONLY, OK_RECORD or FAILED_RECORD; its times, host and job id; where
   * its bytes are (a block of #chunks, and the offset there):
   * an ok result's value alone, as the record was checked when it was read,
   * or a failed task's whole record.
   */
  #result = new Uint8Array(0);
  #resultStarted = new Float64Array(0);
  #resultEnded = new Float64Array(0);
  #resultHost = new Uint32Array(0);
  #resultJob = new Uint32Array(0);
  #resultChunk = new Uint32Array(0);
  #resultAt = new Float64Array(0);
  #resultLength = new Uint32Array(0);
  /** By task: the id (in #strings) of the stream its result came from. */
  #resultStream = new Uint32Array(0);
  /** Blocks that hold the results' bytes, copied out of the windows the streams are read in; #blockUsed bytes of the last are taken. */
  readonly #chunks: Buffer[] = [];
  #blockUsed = 0;
  /** The stream being read (the last one entered). */
  #lastStream = "";
  /** Records taken in so far. */
  #taken = 0;
  /** Its id in #strings (kept here: the two last strings #idOf keeps are a record's host and job id). */
  #lastStreamId = 0;
  readonly #peeked: PeekedTaskRecord = peekedRecord();
  /**
   * By task, once usage comes (manifest version 4, beside a result or alone): 1 when it has one; its CPU ms, peak KiB
   * (NaN: not sampled), samples and slot (-1: none); GPUs, rare, in a map.
   */
  #usage = new Uint8Array(0);
  #usageCpu = new Float64Array(0);
  #usageMem = new Float64Array(0);
  #usageSamples = new Float64Array(0);
  #usageSlot = new Int32Array(0);
  readonly #usageGpu = new Map<number, NonNullable<UsageRecord["gpu"]>>();

  constructor(
    files: StreamFiles,
    /** The submission's folder. */
    readonly folder: RunFolder,
  ) {
    this.#follower = new StreamFollower(files as Transport, folder.streamsDir, isRecordStream);
  }

  /** Makes room for tasks `[0, tasks)` at once (a submission's size, known up front), rather than growing as records arrive. */
  reserve(tasks: number): void {
    if (tasks > this.#capacity && tasks <= MAX_TASK_INDEX + 1) this.#grow(tasks);
  }

  /** Reads what the streams gained since the last read; resolves whether anything was new. Calls made while one runs share it. */
  refresh(): Promise<boolean> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<boolean> {
    const before = this.#taken;
    const { corrupt } = await this.#follower.scan(this.#take, this.#enter);
    for (const name of corrupt) {
      if (!this.#problems.some((p) => p.stream === name)) {
        this.#problems.push({ stream: name, message: `${this.folder.streamsDir}/${name} is corrupt at byte ${this.#follower.offset(name)}: nothing after it is read` });
      }
    }
    return this.#taken !== before;
  }

  /** The stream whose records come next: its worker is known. */
  readonly #enter = (name: string): void => {
    this.#lastStream = name;
    this.#lastStreamId = this.#idOf(name);
    const worker = parseTaskStreamName(name)?.worker;
    if (worker) this.#workers.add(worker);
  };

  /** One record of the stream entered last: peeked at in place, or decoded whole when it is not the common shape. */
  readonly #take = (bytes: Buffer, start: number, end: number): void => {
    this.#taken++;
    try {
      this.#takeRecord(this.#lastStream, bytes, start, end);
    } catch (error) {
      // Never let one record stop the stream: it is reported, and reading goes on.
      this.#problems.push({ stream: this.#lastStream, message: `${this.folder.streamsDir}/${this.#lastStream} holds a record that cannot be taken in: ${(error as Error).message}` });
    }
  };

  #takeRecord(name: string, bytes: Buffer, start: number, end: number): void {
    const p = this.#peeked;
    if (peekTaskRecord(bytes, start, end, p)) {
      if (p.kind === "state") this.#noteState(p.index, p.state, p.at, p.pid, p.host, p.jobId);
      else if (p.kind === "usage") this.#noteUsage(p.index, p.cpuMs, p.memKb, p.memSamples, p.slot, undefined);
      else {
        this.#noteResult(p.index, VALUE_ONLY, p.at, p.endedAt, p.host, p.jobId, bytes, p.valueStart, p.valueEnd);
        if (p.hasUsage) this.#noteUsage(p.index, p.cpuMs, p.memKb, p.memSamples, p.slot, undefined);
      }
      return;
    }
    const path = `${this.folder.streamsDir}/${name}`;
    let r: ReturnType<typeof decodeTaskRecord>;
    try {
      r = decodeTaskRecord(bytes.subarray(start, end), path);
    } catch (error) {
      this.#problems.push({ stream: name, message: (error as Error).message });
      return;
    }
    if ("result" in r) this.#noteResult(r.index, r.result.ok ? OK_RECORD : FAILED_RECORD, r.result.startedAt, r.result.endedAt, r.result.host, r.result.jobId, bytes, start, end);
    if ("usage" in r && r.usage) {
      const u = r.usage;
      this.#noteUsage(r.index, u.cpuMs, u.memKb ?? Number.NaN, u.memSamples, u.slot ?? -1, u.gpu);
    }
    if ("state" in r) this.#noteState(r.index, r.state.state, r.state.at, r.state.pid, r.state.host, r.state.jobId);
  }

  #noteState(index: number, state: StateFile["state"], at: number, pid: number, host: string, jobId: string): void {
    this.#arrive(index);
    if (this.#state[index] !== 0 && at < this.#stateAt[index]!) return;
    this.#state[index] = STATES.indexOf(state) + 1;
    this.#stateAt[index] = at;
    this.#statePid[index] = pid;
    this.#stateHost[index] = this.#idOf(host);
    this.#stateJob[index] = this.#idOf(jobId);
  }

  #noteUsage(index: number, cpuMs: number, memKb: number, memSamples: number, slot: number, gpu: UsageRecord["gpu"]): void {
    if (index > MAX_TASK_INDEX) throw new RangeError(`task ${index} is beyond any submission (at most ${MAX_TASK_INDEX + 1} tasks)`);
    if (index >= this.#capacity) this.#grow(index + 1);
    if (this.#usage.length < this.#capacity) this.#growUsage();
    // The first one counts, as the first result does.
    if (this.#usage[index] === 1) return;
    this.#usage[index] = 1;
    this.#usageCpu[index] = cpuMs;
    this.#usageMem[index] = memKb;
    this.#usageSamples[index] = memSamples;
    this.#usageSlot[index] = slot;
    if (gpu) this.#usageGpu.set(index, gpu);
  }

  #growUsage(): void {
    const size = this.#capacity;
    const grow = <A extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: A, make: new (n: number) => A): A => {
      const out = new make(size);
      out.set(a);
      return out;
    };
    this.#usage = grow(this.#usage, Uint8Array);
    this.#usageCpu = grow(this.#usageCpu, Float64Array);
    this.#usageMem = grow(this.#usageMem, Float64Array);
    this.#usageSamples = grow(this.#usageSamples, Float64Array);
    this.#usageSlot = grow(this.#usageSlot, Int32Array);
  }

  #noteResult(index: number, kind: number, startedAt: number, endedAt: number, host: string, jobId: string, bytes: Buffer, start: number, end: number): void {
    this.#arrive(index);
    if (this.#result[index] !== 0) return;
    this.#result[index] = kind;
    this.#resultStarted[index] = startedAt;
    this.#resultEnded[index] = endedAt;
    this.#resultHost[index] = this.#idOf(host);
    this.#resultJob[index] = this.#idOf(jobId);
    const length = end - start;
    let block = this.#chunks.at(-1);
    if (block === undefined || this.#blockUsed + length > block.length) {
      block = Buffer.allocUnsafe(Math.max(RESULT_BLOCK, length));
      this.#chunks.push(block);
      this.#blockUsed = 0;
    }
    const at = this.#blockUsed;
    // A small value (most are) is copied byte by byte: cheaper than a call into Buffer.copy.
    if (length <= 32) for (let k = 0; k < length; k++) block[at + k] = bytes[start + k]!;
    else bytes.copy(block, at, start, end);
    this.#blockUsed += length;
    this.#resultChunk[index] = this.#chunks.length - 1;
    this.#resultAt[index] = at;
    this.#resultLength[index] = length;
    this.#resultStream[index] = this.#lastStreamId;
  }

  /** A record of task `index` arrived: room for it, a count if it is the task's first, and a line in the change log. */
  #arrive(index: number): void {
    if (index > MAX_TASK_INDEX) throw new RangeError(`task ${index} is beyond any submission (at most ${MAX_TASK_INDEX + 1} tasks)`);
    if (index >= this.#capacity) this.#grow(index + 1);
    if (this.#state[index] === 0 && this.#result[index] === 0) this.#recorded++;
    if (this.#logged === this.#log.length) {
      const grown = new Uint32Array(this.#log.length * 2);
      grown.set(this.#log);
      this.#log = grown;
    }
    this.#log[this.#logged++] = index;
  }

  #grow(needed: number): void {
    const size = Math.min(Math.max(needed, this.#capacity * 2, 1024), MAX_TASK_INDEX + 1);
    const grow = <A extends Uint8Array | Uint32Array | Float64Array>(a: A, make: new (n: number) => A): A => {
      const out = new make(size);
      out.set(a);
      return out;
    };
    this.#state = grow(this.#state, Uint8Array);
    this.#stateAt = grow(this.#stateAt, Float64Array);
    this.#statePid = grow(this.#statePid, Float64Array);
    this.#stateHost = grow(this.#stateHost, Uint32Array);
    this.#stateJob = grow(this.#stateJob, Uint32Array);
    this.#result = grow(this.#result, Uint8Array);
    this.#resultStarted = grow(this.#resultStarted, Float64Array);
    this.#resultEnded = grow(this.#resultEnded, Float64Array);
    this.#resultHost = grow(this.#resultHost, Uint32Array);
    this.#resultJob = grow(this.#resultJob, Uint32Array);
    this.#resultChunk = grow(this.#resultChunk, Uint32Array);
    this.#resultAt = grow(this.#resultAt, Float64Array);
    this.#resultLength = grow(this.#resultLength, Uint32Array);
    this.#resultStream = grow(this.#resultStream, Uint32Array);
    this.#capacity = size;
  }

  #idOf(s: string): number {
    // Records of one worker repeat the same strings: the last two looked up are kept.
    if (s === this.#lastString[0]) return this.#lastId[0]!;
    if (s === this.#lastString[1]) return this.#lastId[1]!;
    let id = this.#stringIds.get(s);
    if (id === undefined) {
      id = this.#strings.push(s) - 1;
      this.#stringIds.set(s, id);
    }
    this.#lastString[1] = this.#lastString[0]!;
    this.#lastId[1] = this.#lastId[0]!;
    this.#lastString[0] = s;
    this.#lastId[0] = id;
    return id;
  }

  /**
   * The tasks whose records were read after `cursor` (a task may appear more
   * than once), and the cursor to pass next time; 0 starts from the first.
   */
  changedSince(cursor: number): { readonly tasks: Uint32Array; readonly cursor: number } {
    return { tasks: this.#log.subarray(cursor, this.#logged), cursor: this.#logged };
  }

  /** Whether a stream holds the task's result. */
  hasResult(index: number): boolean {
    return index < this.#capacity && this.#result[index] !== 0;
  }

  /** The task's result, once a stream holds it, decoded now (a RunFolderError if it cannot be). */
  result(index: number): ResultFile | undefined {
    if (!this.hasResult(index)) return undefined;
    const at = this.#resultAt[index]!;
    const bytes = this.#chunks[this.#resultChunk[index]!]!.subarray(at, at + this.#resultLength[index]!);
    const stream = () => `${this.folder.streamsDir}/${this.#strings[this.#resultStream[index]!]}`;
    if (this.#result[index] === VALUE_ONLY) {
      const summary = this.resultSummary(index)!;
      let value: unknown;
      try {
        value = packr.unpack(bytes);
      } catch (error) {
        throw new RunFolderError(stream(), `${stream()} holds task ${index}'s result, whose value is not msgpack: ${(error as Error).message}`, { cause: error });
      }
      return { ok: true, value, host: summary.host, jobId: summary.jobId, startedAt: summary.startedAt, endedAt: summary.endedAt };
    }
    const record = decodeTaskRecord(bytes, stream());
    return "result" in record ? record.result : undefined;
  }

  /** A completed task's value, decoded now, without the rest of its result; undefined for a failed task or none. */
  resultValue(index: number): unknown {
    if (!this.hasResult(index)) return undefined;
    if (this.#result[index] !== VALUE_ONLY) {
      const result = this.result(index);
      return result?.ok ? result.value : undefined;
    }
    const at = this.#resultAt[index]!;
    const block = this.#chunks[this.#resultChunk[index]!]!;
    const scalar = scalarAt(block, at, at + this.#resultLength[index]!);
    if (scalar !== NOT_SCALAR) return scalar;
    try {
      return packr.unpack(block.subarray(at, at + this.#resultLength[index]!));
    } catch {
      // result() throws the error that says what is wrong with it.
      const result = this.result(index);
      return result?.ok ? result.value : undefined;
    }
  }

  /** Whether the task's result says it completed; undefined while it has none. Allocates nothing (a million tasks settle through it). */
  resultOk(index: number): boolean | undefined {
    return this.hasResult(index) ? this.#result[index] !== FAILED_RECORD : undefined;
  }

  /** The job id in the task's result ("" while it has none). */
  resultJobId(index: number): string {
    return this.hasResult(index) ? this.#strings[this.#resultJob[index]!]! : "";
  }

  /** When the task's result says it started and ended, and where it ran (NaN, NaN and "" while it has none); these allocate nothing. */
  resultStartedAt(index: number): number {
    return this.hasResult(index) ? this.#resultStarted[index]! : Number.NaN;
  }

  resultEndedAt(index: number): number {
    return this.hasResult(index) ? this.#resultEnded[index]! : Number.NaN;
  }

  resultHost(index: number): string {
    return this.hasResult(index) ? this.#strings[this.#resultHost[index]!]! : "";
  }

  /**
   * A number that two results share exactly when their job id and host are the
   * same: a key for what a report writes once per worker. -1 while it has
   * none, and beyond 2^21 strings (never seen: one per worker and host).
   */
  resultPlace(index: number): number {
    if (!this.hasResult(index) || this.#resultHost[index]! >= 2 ** 21) return -1;
    return this.#resultJob[index]! * 2 ** 21 + this.#resultHost[index]!;
  }

  /** What the task's result says, without decoding its value. */
  resultSummary(index: number): ResultSummary | undefined {
    if (!this.hasResult(index)) return undefined;
    return {
      ok: this.#result[index] !== FAILED_RECORD,
      host: this.#strings[this.#resultHost[index]!]!,
      jobId: this.#strings[this.#resultJob[index]!]!,
      startedAt: this.#resultStarted[index]!,
      endedAt: this.#resultEnded[index]!,
    };
  }

  /** Whether a stream holds what the task used (its worker writes it after the result). */
  hasUsage(index: number): boolean {
    return index < this.#usage.length && this.#usage[index] === 1;
  }

  /** What the task used, as its worker recorded it; undefined while none is read (or before manifest version 4). */
  usage(index: number): UsageRecord | undefined {
    if (!this.hasUsage(index)) return undefined;
    const memKb = this.#usageMem[index]!;
    const slot = this.#usageSlot[index]!;
    const gpu = this.#usageGpu.get(index);
    return {
      cpuMs: this.#usageCpu[index]!,
      ...(Number.isNaN(memKb) ? {} : { memKb }),
      memSamples: this.#usageSamples[index]!,
      ...(slot >= 0 ? { slot } : {}),
      ...(gpu ? { gpu } : {}),
    };
  }

  /** The task's CPU ms and peak memory KiB (NaN when unknown), without an object: totals over a million tasks. */
  usageCpuMs(index: number): number {
    return this.hasUsage(index) ? this.#usageCpu[index]! : Number.NaN;
  }

  usageMemKb(index: number): number {
    return this.hasUsage(index) ? this.#usageMem[index]! : Number.NaN;
  }

  /** The task's memory samples, and its slot (-1: none); 0 and -1 without usage. */
  usageSamples(index: number): number {
    return this.hasUsage(index) ? this.#usageSamples[index]! : 0;
  }

  usageSlot(index: number): number {
    return this.hasUsage(index) ? this.#usageSlot[index]! : -1;
  }

  /** Whether the task's usage has GPU figures (then usage() has them all). */
  usageHasGpu(index: number): boolean {
    return this.#usageGpu.has(index);
  }

  /** The task's latest state record. */
  state(index: number): StateFile | undefined {
    const code = index < this.#capacity ? this.#state[index]! : 0;
    if (code === 0) return undefined;
    return {
      state: STATES[code - 1]!,
      host: this.#strings[this.#stateHost[index]!]!,
      jobId: this.#strings[this.#stateJob[index]!]!,
      pid: this.#statePid[index]!,
      at: this.#stateAt[index]!,
    };
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
