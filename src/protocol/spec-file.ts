import { open } from "node:fs/promises";
import { RunFolderError } from "../base/errors.js";
import { packr } from "./codec.js";
import type { TaskRecord } from "./task-record.js";

/**
 * One spec file holds every task of a submission. Layout: the 8-byte magic
 * "SKSPEC01", a uint32 count N, N+1 uint64 offsets (from the file start), then
 * each task as msgpack. A reader reads the header entries it needs and one
 * record, never the rest.
 */
const MAGIC = Buffer.from("SKSPEC01", "latin1");
const HEADER = MAGIC.length + 4;

/**
 * Encodes all task records into one spec file's bytes, in one pass: each
 * record is packed and copied into the file's buffer at once, so no record's
 * bytes are held apart (a million tasks need the file's size, about 100 bytes
 * a task, and a few seconds).
 */
export function encodeSpec(records: readonly TaskRecord[]): Buffer {
  const n = records.length;
  const start = HEADER + 8 * (n + 1);
  let out = Buffer.allocUnsafe(start + 128 * n);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(n, MAGIC.length);
  let at = start;
  for (let i = 0; i <= n; i++) {
    // A uint64 offset as two uint32 halves: no BigInt per record.
    out.writeUInt32LE(at % 2 ** 32, HEADER + 8 * i);
    out.writeUInt32LE(Math.floor(at / 2 ** 32), HEADER + 8 * i + 4);
    if (i === n) break;
    const body = packr.pack(records[i]);
    if (at + body.length > out.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * out.length, at + body.length));
      out.copy(grown, 0, 0, at);
      out = grown;
    }
    at += body.copy(out, at);
  }
  return out.subarray(0, at);
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
