// What a worker writes to its record stream (record-stream.ts): one msgpack
// map per record, a task's state or its result, with the same shapes as the
// per-task state and result files of one-per-element submissions, or (since
// manifest version 4) what the task used, after its result.
import * as z from "zod/mini";
import { RunFolderError } from "../base/errors.js";
import { packr } from "./codec.js";
import { MsgpackCursor } from "./msgpack-peek.js";
import { resultSchema, stateSchema, usageSchema, type ResultFile, type StateFile, type UsageRecord } from "./records.js";

/**
 * One record of a worker's stream: `{ index, state }`, or `{ index, result,
 * usage? }` with what the task used (version 4), or `{ index, usage }` for a
 * task whose result went without it.
 */
export type TaskStreamRecord =
  | { readonly index: number; readonly state: StateFile }
  | { readonly index: number; readonly result: ResultFile; readonly usage?: UsageRecord }
  | { readonly index: number; readonly usage: UsageRecord };

const taskIndexSchema = z.int().check(z.nonnegative());
const recordSchema = z.union([
  z.object({ index: taskIndexSchema, state: stateSchema }),
  z.object({ index: taskIndexSchema, result: resultSchema, usage: z.optional(usageSchema) }),
  // A usage alone: never a result (or state) that failed its own schema, dropped.
  z.object({ index: taskIndexSchema, usage: usageSchema, result: z.optional(z.never()), state: z.optional(z.never()) }),
]);

/** A record's payload (msgpack); throws when msgpack cannot carry the result's value. */
export function encodeTaskRecord(record: TaskStreamRecord): Buffer {
  return packr.pack(record);
}

/**
 * A slot's result record (`{ index, result }`, as encodeTaskRecord wrote it)
 * with `usage` added, without decoding the result: its map header counts one
 * more entry and the usage follows. Undefined for a payload of another shape
 * (then the usage goes in a record of its own).
 */
export function withUsage(payload: Uint8Array, usage: UsageRecord): Buffer | undefined {
  // msgpackr writes a map's header as map16; a fixmap is read too.
  const head = payload[0] === 0xde && payload[1] === 0 && payload[2] === 2 ? 3 : payload[0] === 0x82 ? 1 : 0;
  if (head === 0) return undefined;
  const tail = packr.pack(usage);
  const out = Buffer.allocUnsafe(payload.length + K_USAGE.length + tail.length);
  out.set(payload, 0);
  if (head === 3) out[2] = 3;
  else out[0] = 0x83;
  out.set(K_USAGE, payload.length);
  out.set(tail, payload.length + K_USAGE.length);
  return out;
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
  if (!parsed.success) throw new RunFolderError(stream, `${stream} holds a record that is not a task's state, result or usage: ${parsed.error.issues[0]?.message ?? "unknown shape"}`);
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
  /** A state record, a result record whose task completed (`ok: true`), or a usage record without GPUs. */
  kind: "state" | "ok" | "usage";
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
  /** A result record that carries the task's usage too (then its fields are below). */
  hasUsage: boolean;
  /** Usage (a usage record, or a result's): CPU ms, peak memory KiB (NaN when absent), samples and slot (-1 when absent). */
  cpuMs: number;
  memKb: number;
  memSamples: number;
  slot: number;
}

/** A PeekedTaskRecord to peek into (one per reader, reused for every record). */
export function peekedRecord(): PeekedTaskRecord {
  return { index: 0, kind: "state", state: "RUNNING", at: 0, endedAt: 0, valueStart: 0, valueEnd: 0, pid: 0, host: "", jobId: "", hasUsage: false, cpuMs: 0, memKb: 0, memSamples: 0, slot: 0 };
}

const STATES: readonly StateFile["state"][] = ["RUNNING", "COMPLETED", "FAILED", "REQUEUED"];
const cursor = new MsgpackCursor();
/** Where numberAt puts a float64's bytes to read it. */
const FLOAT = new Float64Array(1);
const FLOAT_BYTES = new Uint8Array(FLOAT.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
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
 * Reads a state record, the result record of a task that completed, or a
 * usage record without GPUs (as a worker writes it), from `payload[start, end)` into `out` without decoding it whole (a
 * result's value is passed over). False for any other record (a failed
 * task's result, a shape it does not know): decode that one with
 * decodeTaskRecord, which also says what is wrong with it. What it accepts,
 * decodeTaskRecord accepts too.
 */
export function peekTaskRecord(payload: Uint8Array, start: number, end: number, out: PeekedTaskRecord): boolean {
  return peekAsWritten(payload, start, end, out) || peekAnyOrder(payload, start, end, out);
}

// The fast path: a record exactly as the runner writes it (keys in its order,
// times as integers or float64s). About three times faster than the general
// path, which reads any key order and every number.

/** A key as msgpack writes it: a fixstr header, then its bytes. */
const keyBytes = (key: string): Uint8Array => Uint8Array.from([0xa0 | key.length, ...Buffer.from(key, "latin1")]);
const K_INDEX = keyBytes("index");
const K_STATE = keyBytes("state");
const K_RESULT = keyBytes("result");
const K_HOST = keyBytes("host");
const K_JOB = keyBytes("jobId");
const K_PID = keyBytes("pid");
const K_AT = keyBytes("at");
const K_OK = keyBytes("ok");
const K_VALUE = keyBytes("value");
const K_STARTED = keyBytes("startedAt");
const K_ENDED = keyBytes("endedAt");
const K_USAGE = keyBytes("usage");
const K_CPU = keyBytes("cpuMs");
const K_MEM = keyBytes("memKb");
const K_SAMPLES = keyBytes("memSamples");
const K_SLOT = keyBytes("slot");
const STATE_BYTES = STATES.map(keyBytes);
/** Where the fast path is in the record it reads. */
let at = 0;

/** A map header of `n` entries (fixmap or map16) at `at`, passed over; false for anything else. */
function mapOf(b: Uint8Array, end: number, n: number): boolean {
  const x = b[at];
  if (x === (0x80 | n)) {
    at += 1;
    return true;
  }
  if (x === 0xde && at + 3 <= end && b[at + 1] === 0 && b[at + 2] === n) {
    at += 3;
    return true;
  }
  return false;
}

/** Whether the bytes at `at` are `k` (passed over if so). */
function is(b: Uint8Array, end: number, k: Uint8Array): boolean {
  const n = k.length;
  if (at + n > end) return false;
  for (let i = 0; i < n; i++) if (b[at + i] !== k[i]) return false;
  at += n;
  return true;
}

/** A non-negative integer or a float64 at `at`, passed over; NaN for any other number (the general path reads those). */
function numberAt(b: Uint8Array, end: number): number {
  const x = b[at]!;
  if (x <= 0x7f) {
    at += 1;
    return x;
  }
  if (x === 0xcd && at + 3 <= end) {
    at += 3;
    return (b[at - 2]! << 8) | b[at - 1]!;
  }
  if (x === 0xce && at + 5 <= end) {
    at += 5;
    return b[at - 4]! * 0x100_0000 + ((b[at - 3]! << 16) | (b[at - 2]! << 8) | b[at - 1]!);
  }
  if ((x === 0xd3 || x === 0xcf) && at + 9 <= end && b[at + 1] === 0 && b[at + 2] === 0 && b[at + 3]! < 0x20) {
    // An int64 or uint64 below 2^53 (msgpackr writes times in ms as int64): the high half, then the low half.
    const hi = (b[at + 3]! << 8) | b[at + 4]!;
    const lo = b[at + 5]! * 0x100_0000 + ((b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!);
    at += 9;
    return hi * 0x1_0000_0000 + lo;
  }
  if (x === 0xcb && at + 9 <= end) {
    for (let k = 0; k < 8; k++) FLOAT_BYTES[LITTLE_ENDIAN ? 7 - k : k] = b[at + 1 + k]!;
    at += 9;
    return FLOAT[0]!;
  }
  return Number.NaN;
}

/** A host or job id at `at` (a fixstr), passed over: the same string as the last one of `key` while its bytes repeat. */
function stringAt(b: Uint8Array, end: number, key: "host" | "jobId"): string | undefined {
  const x = b[at]!;
  if (x < 0xa0 || x > 0xbf) return undefined;
  const n = x & 0x1f;
  const from = at + 1;
  if (from + n > end) return undefined;
  at = from + n;
  const last = lastStrings[key];
  if (last.length === n) {
    let k = 0;
    while (k < n && b[from + k] === last.charCodeAt(k)) k++;
    if (k === n) return last;
  }
  cursor.reset(b, from - 1, end).str();
  return stringOf(key);
}

/** peekTaskRecord for a record as the runner writes it; false for anything else (the general path reads it). */
function peekAsWritten(b: Uint8Array, start: number, end: number, out: PeekedTaskRecord): boolean {
  at = start;
  // Three entries: a result with its usage.
  const entries = mapOf(b, end, 2) ? 2 : mapOf(b, end, 3) ? 3 : 0;
  if (entries === 0 || !is(b, end, K_INDEX)) return false;
  const index = numberAt(b, end);
  if (!(index >= 0 && Number.isSafeInteger(index))) return false;
  out.hasUsage = false;
  if (entries === 2 && is(b, end, K_STATE)) {
    if (!mapOf(b, end, 5) || !is(b, end, K_STATE)) return false;
    let state = -1;
    for (let i = 0; i < STATE_BYTES.length && state < 0; i++) if (is(b, end, STATE_BYTES[i]!)) state = i;
    if (state < 0 || !is(b, end, K_HOST)) return false;
    const host = stringAt(b, end, "host");
    if (host === undefined || !is(b, end, K_JOB)) return false;
    const jobId = stringAt(b, end, "jobId");
    if (jobId === undefined || !is(b, end, K_PID)) return false;
    const pid = numberAt(b, end);
    if (!Number.isSafeInteger(pid) || !is(b, end, K_AT)) return false;
    const stateAt = numberAt(b, end);
    if (!Number.isFinite(stateAt) || at !== end) return false;
    out.kind = "state";
    out.state = STATES[state]!;
    out.host = host;
    out.jobId = jobId;
    out.pid = pid;
    out.at = stateAt;
  } else if (is(b, end, K_RESULT)) {
    if (!mapOf(b, end, 6) || !is(b, end, K_OK) || b[at] !== 0xc3) return false;
    at += 1;
    if (!is(b, end, K_VALUE)) return false;
    const valueStart = at;
    if (b[at]! <= 0x7f) at += 1;
    else {
      cursor.reset(b, at, end);
      if (!cursor.skip()) return false;
      at = cursor.at;
    }
    const valueEnd = at;
    if (!is(b, end, K_HOST)) return false;
    const host = stringAt(b, end, "host");
    if (host === undefined || !is(b, end, K_JOB)) return false;
    const jobId = stringAt(b, end, "jobId");
    if (jobId === undefined || !is(b, end, K_STARTED)) return false;
    const startedAt = numberAt(b, end);
    if (!Number.isFinite(startedAt) || !is(b, end, K_ENDED)) return false;
    const endedAt = numberAt(b, end);
    if (!Number.isFinite(endedAt)) return false;
    if (entries === 3 && !(is(b, end, K_USAGE) && usageAt(b, end, out))) return false;
    if (at !== end) return false;
    out.hasUsage = entries === 3;
    out.kind = "ok";
    out.valueStart = valueStart;
    out.valueEnd = valueEnd;
    out.host = host;
    out.jobId = jobId;
    out.at = startedAt;
    out.endedAt = endedAt;
  } else if (entries === 2 && is(b, end, K_USAGE)) {
    if (!usageAt(b, end, out) || at !== end) return false;
    out.kind = "usage";
  } else return false;
  out.index = index;
  return true;
}

/** A usage map as the worker writes it, `{ cpuMs, memKb?, memSamples, slot? }` in that order, at `at`, into `out`; false for anything else (GPUs included). */
function usageAt(b: Uint8Array, end: number, out: PeekedTaskRecord): boolean {
  // Its header: a fixmap or a map16 of 2 to 4 entries.
  let n = -1;
  const x = b[at]!;
  if (x >= 0x82 && x <= 0x84) {
    n = x & 0x0f;
    at += 1;
  } else if (x === 0xde && at + 3 <= end && b[at + 1] === 0 && b[at + 2]! >= 2 && b[at + 2]! <= 4) {
    n = b[at + 2]!;
    at += 3;
  } else return false;
  if (!is(b, end, K_CPU)) return false;
  const cpuMs = numberAt(b, end);
  if (!(cpuMs >= 0 && cpuMs < Number.POSITIVE_INFINITY)) return false;
  let memKb = Number.NaN;
  if (is(b, end, K_MEM)) {
    memKb = numberAt(b, end);
    if (!(memKb >= 0 && memKb < Number.POSITIVE_INFINITY)) return false;
  }
  if (!is(b, end, K_SAMPLES)) return false;
  const memSamples = numberAt(b, end);
  if (!(memSamples >= 0 && Number.isSafeInteger(memSamples))) return false;
  let slot = -1;
  if (is(b, end, K_SLOT)) {
    slot = numberAt(b, end);
    if (!(slot >= 0 && Number.isSafeInteger(slot))) return false;
  }
  if (n !== 2 + (Number.isNaN(memKb) ? 0 : 1) + (slot < 0 ? 0 : 1)) return false;
  out.cpuMs = cpuMs;
  out.memKb = memKb;
  out.memSamples = memSamples;
  out.slot = slot;
  return true;
}

/** peekTaskRecord for keys in any order, numbers of any width and keys the schema drops. */
function peekAnyOrder(payload: Uint8Array, start: number, end: number, out: PeekedTaskRecord): boolean {
  const c = cursor.reset(payload, start, end);
  const top = c.mapLength();
  if (top !== 2 && top !== 3) return false;
  let index = -1;
  let body = -1;
  let usage = false;
  out.hasUsage = false;
  for (let k = 0; k < top; k++) {
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
    } else if (c.strIs("usage")) {
      if (usage || !peekUsage(c, out)) return false;
      usage = true;
    } else return false;
  }
  // A usage alone, or beside a completed result; never beside a state.
  if (index < 0 || c.at !== end || (body < 0 && !usage) || (body === 0 && usage) || (top === 3) !== (body === 1 && usage)) return false;
  if (body < 0) out.kind = "usage";
  out.hasUsage = body === 1 && usage;
  out.index = index;
  return true;
}

/** A usage map without GPUs, as peekTaskRecord reads it; every field checked as the schema would. */
function peekUsage(c: MsgpackCursor, out: PeekedTaskRecord): boolean {
  const n = c.mapLength();
  if (n < 0) return false;
  let cpuMs = Number.NaN;
  let memSamples = Number.NaN;
  out.memKb = Number.NaN;
  out.slot = -1;
  for (let k = 0; k < n; k++) {
    if (!c.str()) return false;
    if (c.strIs("cpuMs")) {
      cpuMs = c.number();
      if (!(cpuMs >= 0 && cpuMs < Number.POSITIVE_INFINITY)) return false;
    } else if (c.strIs("memKb")) {
      out.memKb = c.number();
      if (!(out.memKb >= 0 && out.memKb < Number.POSITIVE_INFINITY)) return false;
    } else if (c.strIs("memSamples")) {
      memSamples = c.number();
      if (!(memSamples >= 0 && Number.isSafeInteger(memSamples))) return false;
    } else if (c.strIs("slot")) {
      out.slot = c.number();
      if (!(out.slot >= 0 && Number.isSafeInteger(out.slot))) return false;
    } else if (c.strIs("gpu")) return false;
    else if (!c.skip()) return false;
  }
  if (Number.isNaN(cpuMs) || Number.isNaN(memSamples)) return false;
  out.cpuMs = cpuMs;
  out.memSamples = memSamples;
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
