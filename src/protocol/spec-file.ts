import { open } from "node:fs/promises";
import { RunFolderError } from "../base/errors.js";
import type { FilePart } from "./atomic.js";
import { packr } from "./codec.js";
import type { FunctionRecord, TaskRecord } from "./task-record.js";

/**
 * One spec file holds every task of a submission. Layout: the 8-byte magic
 * "SKSPEC01", a uint32 count N, N+1 uint64 offsets (from the file start), then
 * each task as msgpack. A reader reads the header entries it needs and one
 * record, never the rest.
 */
const MAGIC = Buffer.from("SKSPEC01", "latin1");
const HEADER = MAGIC.length + 4;

/** How much of a spec file's records specParts gathers before it hands them out. */
const CHUNK_BYTES = 2 ** 20;

/**
 * A spec file of all task records, in one pass, as parts to write at their
 * offsets: the records in chunks of about 1 MiB (one buffer, reused: write
 * each part before asking for the next), then the header and offsets table
 * at offset 0 (made once the records' sizes are known). A million tasks need
 * a few megabytes besides the records, never the whole file in memory.
 */
export function* specParts(records: readonly TaskRecord[]): Generator<FilePart> {
  const n = records.length;
  const head = Buffer.allocUnsafe(HEADER + 8 * (n + 1));
  head.set(MAGIC, 0);
  head.writeUInt32LE(n, MAGIC.length);
  const template = new RecordTemplate();
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let chunkAt = head.length;
  let used = 0;
  for (let i = 0; i <= n; i++) {
    const at = chunkAt + used;
    // A uint64 offset as two uint32 halves: no BigInt per record.
    head.writeUInt32LE(at % 2 ** 32, HEADER + 8 * i);
    head.writeUInt32LE(Math.floor(at / 2 ** 32), HEADER + 8 * i + 4);
    if (i === n) break;
    const record = records[i]!;
    const parts = template.parts(record);
    const body = parts ? packr.pack((record as FunctionRecord).arg) : packr.pack(record);
    const length = parts ? parts.before.length + body.length + parts.after.length : body.length;
    if (used + length > chunk.length) {
      if (used > 0) yield { at: chunkAt, bytes: chunk.subarray(0, used) };
      chunkAt += used;
      used = 0;
      if (length > chunk.length) {
        // A record larger than a chunk goes out on its own.
        yield { at: chunkAt, bytes: parts ? Buffer.concat([parts.before, body, parts.after]) : body };
        chunkAt += length;
        continue;
      }
    }
    if (parts) {
      chunk.set(parts.before, used);
      chunk.set(body, used + parts.before.length);
      chunk.set(parts.after, used + parts.before.length + body.length);
    } else chunk.set(body, used);
    used += length;
  }
  if (used > 0) yield { at: chunkAt, bytes: chunk.subarray(0, used) };
  yield { at: 0, bytes: head };
}

/** All task records as one spec file's bytes (specParts, gathered): for transports that write a file whole. */
export function encodeSpec(records: readonly TaskRecord[]): Buffer {
  const parts: FilePart[] = [];
  let size = 0;
  for (const { at, bytes } of specParts(records)) {
    parts.push({ at, bytes: Buffer.from(bytes) });
    size = Math.max(size, at + bytes.length);
  }
  const out = Buffer.allocUnsafe(size);
  for (const { at, bytes } of parts) out.set(bytes, at);
  return out;
}

/**
 * The bytes of a function record around its argument, made once for a run
 * of records that differ only in `arg` (a sweep's tasks: same module, name
 * and source). msgpack writes a map as its entries in order, so such a
 * record is the bytes before its argument, the argument's own msgpack, and
 * the bytes after it: packing only the argument saves most of a record's
 * work (its strings). The parts are found by packing the record with two
 * one-byte arguments and taking the one byte where they differ. Up to
 * SHAPES kinds of record are kept (a sweep that interleaves a few tasks).
 */
class RecordTemplate {
  /** The shapes seen, newest first: the record that made each, its keys, and its parts. */
  readonly #shapes: Shape[] = [];
  /** The last record that matched no shape, once #shapes is full: a shape is added when it is seen a second time. */
  #missed: FunctionRecord | undefined;

  /** The parts around `record`'s argument; undefined for a record packed whole (a command, a function record with a field that is not a plain string, number or boolean, or a shape seen once while SHAPES others are kept). */
  parts(record: TaskRecord): Parts | undefined {
    if (record.kind !== "function") return undefined;
    for (const shape of this.#shapes) if (sameShape(record, shape.like, shape.keys)) return shape.parts;
    // Sweeps that interleave a few tasks keep them all; more shapes than that do not cost two extra packs per record.
    if (this.#shapes.length >= SHAPES) {
      const missed = this.#missed;
      this.#missed = record;
      if (!missed || !sameShape(record, missed, Object.keys(missed))) return undefined;
      this.#shapes.pop();
    }
    const shape = shapeOf(record);
    if (shape) this.#shapes.unshift(shape);
    return shape?.parts;
  }
}

/** The bytes of a record before and after its argument. */
interface Parts {
  readonly before: Buffer;
  readonly after: Buffer;
}

/** One shape of function record: the record that made it, its keys in order, and its parts. */
interface Shape {
  readonly like: FunctionRecord;
  readonly keys: readonly string[];
  readonly parts: Parts;
}

/** Shapes a RecordTemplate keeps. */
const SHAPES = 4;

/** The shape of `record`: undefined if it has no `arg`, or a field other than `arg` that is not a string, number or boolean. */
function shapeOf(record: FunctionRecord): Shape | undefined {
  const keys = Object.keys(record);
  const fields = record as unknown as Record<string, unknown>;
  if (!keys.includes("arg") || !keys.every((k) => k === "arg" || (["string", "number", "boolean"] as const).includes(typeof fields[k] as "string"))) return undefined;
  const a = packr.pack({ ...record, arg: null });
  const b = packr.pack({ ...record, arg: true });
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  if (a.length !== b.length || at === a.length || !a.subarray(at + 1).equals(b.subarray(at + 1))) return undefined;
  return { like: record, keys, parts: { before: Buffer.from(a.subarray(0, at)), after: Buffer.from(a.subarray(at + 1)) } };
}

/** Whether `record` has the keys `keys` of `like`, in that order, and `like`'s values except `arg` (fields by name, keys by for-in: no array per record). */
function sameShape(record: FunctionRecord, like: FunctionRecord, keys: readonly string[]): boolean {
  if (record.moduleUrl !== like.moduleUrl || record.name !== like.name || record.source !== like.source || record.checkpoint !== like.checkpoint) return false;
  const a = record as unknown as Record<string, unknown>;
  const b = like as unknown as Record<string, unknown>;
  let k = 0;
  for (const key in record) {
    if (key !== keys[k++]) return false;
    // A field a FunctionRecord does not name (none today): compared too.
    if (key !== "arg" && key !== "kind" && key !== "moduleUrl" && key !== "name" && key !== "source" && key !== "checkpoint" && a[key] !== b[key]) return false;
  }
  return k === keys.length;
}

/** The number of tasks in a spec file, from its header. */
export async function readSpecCount(path: string): Promise<number> {
  const file = await open(path, "r");
  try {
    const head = Buffer.alloc(HEADER);
    const { bytesRead } = await file.read(head, 0, HEADER, 0);
    if (bytesRead < HEADER || !head.subarray(0, MAGIC.length).equals(MAGIC)) throw new RunFolderError(path, `${path} is not a slurmkit spec file (no SKSPEC01 header)`);
    return head.readUInt32LE(MAGIC.length);
  } finally {
    await file.close();
  }
}

/** Reads task `index` from a spec file without decoding the others. */
export async function readSpecRecord(path: string, index: number): Promise<TaskRecord> {
  const [record] = await readSpecRange(path, index, index + 1, `Task index ${index}`);
  return record!;
}

/** Reads tasks `start` to `end - 1` (clamped to the file's count) with one read of their bytes. */
export async function readSpecRange(path: string, start: number, end: number, what = `Task range ${start}..${end - 1}`): Promise<TaskRecord[]> {
  const file = await open(path, "r");
  try {
    const head = Buffer.alloc(HEADER);
    const { bytesRead: headRead } = await file.read(head, 0, HEADER, 0);
    if (headRead < HEADER || !head.subarray(0, MAGIC.length).equals(MAGIC)) throw new RunFolderError(path, `${path} is not a slurmkit spec file (no SKSPEC01 header)`);
    const count = head.readUInt32LE(MAGIC.length);
    const last = Math.min(end, count);
    if (!Number.isInteger(start) || start < 0 || start >= last) {
      throw new RunFolderError(path, `${what} is out of range: ${path} holds tasks 0 to ${count - 1}`);
    }
    const table = Buffer.alloc(8 * (last - start + 1));
    await file.read(table, 0, table.length, HEADER + 8 * start);
    const offsets = Array.from({ length: last - start + 1 }, (_, i) => Number(table.readBigUInt64LE(8 * i)));
    if (offsets.some((o, i) => o < HEADER || (i > 0 && o < offsets[i - 1]!))) throw new RunFolderError(path, `${path} is corrupt: tasks ${start}..${last - 1} have offsets ${offsets.join(", ")}`);
    const first = offsets[0]!;
    const body = Buffer.alloc(offsets.at(-1)! - first);
    const { bytesRead } = await file.read(body, 0, body.length, first);
    if (bytesRead !== body.length) throw new RunFolderError(path, `${path} is truncated: tasks ${start}..${last - 1} need bytes ${first}..${offsets.at(-1)}`);
    return offsets.slice(0, -1).map((o, i) => decodeRecord(body.subarray(o - first, offsets[i + 1]! - first), path, start + i));
  } finally {
    await file.close();
  }
}

/** Offsets read at once by a SpecReader: 1,024 tasks' worth (8 KiB). */
const OFFSETS_AT_ONCE = 1024;

/**
 * Reads tasks one by one from a spec file kept open, as a worker's slot
 * does for thousands of tasks: the header once, the offsets table 1,024
 * entries at a time, and then one read per task. A spec file never changes
 * once written, so nothing read goes stale.
 */
export class SpecReader {
  #file: Awaited<ReturnType<typeof open>> | undefined;
  #count = -1;
  /** Offsets of tasks #from .. #from + #offsets.length - 1. */
  #from = 0;
  #offsets: number[] = [];

  constructor(
    /** The spec file. */
    readonly path: string,
  ) {}

  /** Task `index`'s record. */
  async read(index: number): Promise<TaskRecord> {
    const { path } = this;
    if (!this.#file) {
      const file = await open(path, "r");
      const head = Buffer.alloc(HEADER);
      const { bytesRead } = await file.read(head, 0, HEADER, 0);
      if (bytesRead < HEADER || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
        await file.close();
        throw new RunFolderError(path, `${path} is not a slurmkit spec file (no SKSPEC01 header)`);
      }
      this.#count = head.readUInt32LE(MAGIC.length);
      this.#file = file;
    }
    if (!Number.isInteger(index) || index < 0 || index >= this.#count) throw new RunFolderError(path, `Task index ${index} is out of range: ${path} holds tasks 0 to ${this.#count - 1}`);
    if (index < this.#from || index + 1 >= this.#from + this.#offsets.length) {
      const n = Math.min(OFFSETS_AT_ONCE, this.#count - index) + 1;
      const table = Buffer.alloc(8 * n);
      const { bytesRead } = await this.#file.read(table, 0, table.length, HEADER + 8 * index);
      if (bytesRead !== table.length) throw new RunFolderError(path, `${path} is truncated: its offsets table ends before task ${index}'s`);
      this.#from = index;
      this.#offsets = Array.from({ length: n }, (_, i) => table.readUInt32LE(8 * i) + 2 ** 32 * table.readUInt32LE(8 * i + 4));
    }
    const start = this.#offsets[index - this.#from]!;
    const end = this.#offsets[index - this.#from + 1]!;
    if (start < HEADER || end < start) throw new RunFolderError(path, `${path} is corrupt: task ${index} has offsets ${start}, ${end}`);
    const body = Buffer.alloc(end - start);
    const { bytesRead } = await this.#file.read(body, 0, body.length, start);
    if (bytesRead !== body.length) throw new RunFolderError(path, `${path} is truncated: task ${index} needs bytes ${start}..${end}`);
    return decodeRecord(body, path, index);
  }

  /** Closes the file. */
  async close(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }
}

/** One task record; anything but a command or function record is a RunFolderError. */
function decodeRecord(bytes: Uint8Array, path: string, index: number): TaskRecord {
  let record: unknown;
  try {
    record = packr.unpack(bytes);
  } catch (error) {
    throw new RunFolderError(path, `${path} is corrupt: task ${index} is not readable msgpack (${(error as Error).message})`, { cause: error });
  }
  const kind = (record as { kind?: unknown } | null)?.kind;
  if (kind !== "command" && kind !== "function") throw new RunFolderError(path, `${path} is corrupt: task ${index} is neither a command nor a function task`);
  return record as TaskRecord;
}

/** Reads the tasks at `indices` from a whole spec file's bytes (a client that reads it over a transport). */
export function specRecordsAt(bytes: Buffer, path: string, indices: readonly number[]): TaskRecord[] {
  if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new RunFolderError(path, `${path} is not a slurmkit spec file (no SKSPEC01 header)`);
  const count = bytes.readUInt32LE(MAGIC.length);
  return indices.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= count) throw new RunFolderError(path, `Task index ${i} is out of range: ${path} holds tasks 0 to ${count - 1}`);
    const start = Number(bytes.readBigUInt64LE(HEADER + 8 * i));
    const end = Number(bytes.readBigUInt64LE(HEADER + 8 * (i + 1)));
    if (start < HEADER || end < start || end > bytes.length) throw new RunFolderError(path, `${path} is corrupt or truncated: task ${i} needs bytes ${start}..${end} of ${bytes.length}`);
    return decodeRecord(bytes.subarray(start, end), path, i);
  });
}
