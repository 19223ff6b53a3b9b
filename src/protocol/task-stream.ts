// What a worker writes to its record stream (record-stream.ts): one msgpack
// map per record, either a task's state or its result, with the same shapes
// as the per-task state and result files of one-per-element submissions.
import * as z from "zod/mini";
import { RunFolderError } from "../base/errors.js";
import { packr } from "./codec.js";
import { MsgpackCursor } from "./msgpack-peek.js";
import { resultSchema, stateSchema, type ResultFile, type StateFile } from "./records.js";

/** One record of a worker's stream: `{ index, state }` or `{ index, result }`. */
export type TaskStreamRecord = { readonly index: number; readonly state: StateFile } | { readonly index: number; readonly result: ResultFile };

const recordSchema = z.union([z.object({ index: z.int().check(z.nonnegative()), state: stateSchema }), z.object({ index: z.int().check(z.nonnegative()), result: resultSchema })]);

/** A record's payload (msgpack); throws when msgpack cannot carry the result's value. */
export function encodeTaskRecord(record: TaskStreamRecord): Buffer {
  return packr.pack(record);
}

/** Decodes one record's payload; a foreign or corrupt one is a RunFolderError that names the stream. */
export function decodeTaskRecord(payload: Uint8Array, stream: string): TaskStreamRecord {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch (error) {
    throw new RunFolderError(stream, `${stream} holds a record that is not msgpack (${payload.length} bytes): ${(error as Error).message}`, { cause: error });
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) throw new RunFolderError(stream, `${stream} holds a record that is not a task's state or result: ${parsed.error.issues[0]?.message ?? "unknown shape"}`);
  return parsed.data as TaskStreamRecord;
}

/** What a worker's stream holds: task records (`rec`), or its tasks' stdout (`out`) or stderr (`err`) in chunks. */
export type TaskStreamKind = "rec" | "out" | "err";

/** A worker's stream's name: `<worker>.<n>.<kind>`, n counting the worker's attempts (0, then 1 after a requeue, ...). */
export function taskStreamName(worker: string, attempt: number, kind: TaskStreamKind = "rec"): string {
  return `${worker}.${attempt}.${kind}`;
}

/** The worker (`A_w`), attempt and kind of a stream's name; undefined for any other name. */
export function parseTaskStreamName(name: string): { worker: string; attempt: number; kind: TaskStreamKind } | undefined {
  const m = /^(\d+(?:_\d+)?)\.(\d+)\.(rec|out|err)$/.exec(name);
  return m ? { worker: m[1]!, attempt: Number(m[2]), kind: m[3] as TaskStreamKind } : undefined;
}

/** Whether a name is a worker's record stream (not a log stream). */
export function isRecordStream(name: string): boolean {
  return parseTaskStreamName(name)?.kind === "rec";
}

/**
 * One chunk of a task's output in a worker's log stream: the task's index
 * (uint32 LE), then the bytes as the task wrote them. A task's chunks are in
 * the order it wrote them.
 */
export function encodeLogChunk(index: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  out.writeUInt32LE(index, 0);
  out.set(data, 4);
  return out;
}

/** A log chunk's task and bytes; a payload too short to hold an index is a RunFolderError naming the stream. */
export function decodeLogChunk(payload: Uint8Array, stream: string): { index: number; data: Buffer } {
  if (payload.length < 4) throw new RunFolderError(stream, `${stream} holds a log chunk of ${payload.length} bytes, too short for a task index`);
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return { index: buf.readUInt32LE(0), data: buf.subarray(4) };
}

/** A task record's fields read in place by peekTaskRecord (one object, reused). */
export interface PeekedTaskRecord {
  index: number;
  /** A state record, or a result record whose task completed (`ok: true`). */
  kind: "state" | "ok";
  /** State records: the state. */
  state: StateFile["state"];
  /** State records: `at`; ok results: `startedAt`. */
  at: number;
  /** ok results: `endedAt`. */
  endedAt: number;
  /** ok results: where the value's msgpack bytes are in the payload, `[valueStart, valueEnd)`. */
  valueStart: number;
  valueEnd: number;
  pid: number;
  host: string;
  jobId: string;
}

const STATES: readonly StateFile["state"][] = ["RUNNING", "COMPLETED", "FAILED", "REQUEUED"];
const cursor = new MsgpackCursor();
/** The last host and job id read, to give back the same string while the bytes repeat (one worker writes them all). */
const lastStrings = { host: "", jobId: "" };

/** The string the cursor last read, reusing `last[key]` while its bytes are the same (ASCII strings only: their bytes are their characters). */
function stringOf(key: "host" | "jobId"): string {
  if (cursor.strIs(lastStrings[key])) return lastStrings[key];
  const s = Buffer.from(cursor.buf.buffer, cursor.buf.byteOffset + cursor.strStart, cursor.strEnd - cursor.strStart).toString("utf8");
  lastStrings[key] = s.length === cursor.strEnd - cursor.strStart && !s.includes("\uFFFD") ? s : "";
  return s;
}

/**
 * Reads a state record, or the result record of a task that completed,
 * from `payload[start, end)` into `out` without decoding it whole (a
 * result's value is passed over). False for any other record (a failed
 * task's result, a shape it does not know): decode that one with
 * decodeTaskRecord, which also says what is wrong with it. What it accepts,
 * decodeTaskRecord accepts too.
 */
export function peekTaskRecord(payload: Uint8Array, start: number, end: number, out: PeekedTaskRecord): boolean {
  const c = cursor.reset(payload, start, end);
  const top = c.mapLength();
  if (top !== 2) return false;
  let index = -1;
  let body = -1;
  for (let k = 0; k < 2; k++) {
    if (!c.str()) return false;
    if (c.strIs("index")) {
      index = c.number();
      if (!(Number.isSafeInteger(index) && index >= 0)) return false;
    } else if (c.strIs("state")) {
      body = 0;
      if (!peekBody(c, "state", out)) return false;
    } else if (c.strIs("result")) {
      body = 1;
      if (!peekBody(c, "ok", out)) return false;
    } else return false;
  }
  if (index < 0 || body < 0 || c.at !== end) return false;
  out.index = index;
  return true;
}

/** The state map or the ok result map, as peekTaskRecord reads them; every field checked as the schemas would. */
function peekBody(c: MsgpackCursor, kind: PeekedTaskRecord["kind"], out: PeekedTaskRecord): boolean {
  const n = c.mapLength();
  if (n < 0) return false;
  const state = kind === "state";
  // Which required fields were seen, as bits: state needs host, jobId, state, pid, at; ok needs host, jobId, ok, value, startedAt, endedAt.
  let seen = 0;
  for (let k = 0; k < n; k++) {
    if (!c.str()) return false;
    // Keys told apart by length first: a million records, several keys each.
    let bit = 0;
    switch (c.strEnd - c.strStart) {
      case 2:
        if (state && c.strIs("at")) {
          out.at = c.number();
          if (!Number.isFinite(out.at)) return false;
          bit = 16;
        } else if (!state && c.strIs("ok")) {
          if (c.bool() !== 1) return false;
          bit = 4;
        }
        break;
      case 3:
        if (state && c.strIs("pid")) {
          out.pid = c.number();
          if (!Number.isSafeInteger(out.pid)) return false;
          bit = 8;
        }
        break;
      case 4:
        if (c.strIs("host")) {
          if (!c.str()) return false;
          out.host = stringOf("host");
          bit = 1;
        }
        break;
      case 5:
        if (c.strIs("jobId")) {
          if (!c.str()) return false;
          out.jobId = stringOf("jobId");
          bit = 2;
        } else if (state && c.strIs("state")) {
          if (!c.str()) return false;
          let found = -1;
          for (let i = 0; i < STATES.length && found < 0; i++) if (c.strIs(STATES[i]!)) found = i;
          if (found < 0) return false;
          out.state = STATES[found]!;
          bit = 4;
        } else if (!state && c.strIs("value")) {
          out.valueStart = c.at;
          if (!c.skip()) return false;
          out.valueEnd = c.at;
          bit = 8;
        }
        break;
      case 7:
        if (!state && c.strIs("endedAt")) {
          out.endedAt = c.number();
          if (!Number.isFinite(out.endedAt)) return false;
          bit = 32;
        }
        break;
      case 9:
        if (!state && c.strIs("startedAt")) {
          out.at = c.number();
          if (!Number.isFinite(out.at)) return false;
          bit = 16;
        }
        break;
    }
    // A key the schema does not know: dropped, as zod drops it.
    if (bit === 0 && !c.skip()) return false;
    seen |= bit;
  }
  out.kind = kind;
  return seen === (state ? 31 : 63);
}
