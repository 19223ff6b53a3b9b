// What a worker writes to its record stream (record-stream.ts): one msgpack
// map per record, either a task's state or its result, with the same shapes
// as the per-task state and result files of one-per-element submissions.
import * as z from "zod/mini";
import { RunFolderError } from "../base/errors.js";
import { packr } from "./codec.js";
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
