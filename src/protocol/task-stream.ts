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

/** A worker's record stream's name: `<worker>.<n>.rec`, n counting the worker's attempts (0, then 1 after a requeue, ...). */
export function taskStreamName(worker: string, attempt: number): string {
  return `${worker}.${attempt}.rec`;
}

/** The worker (`A_w`) and attempt of a record stream's name; undefined for any other name. */
export function parseTaskStreamName(name: string): { worker: string; attempt: number } | undefined {
  const m = /^(\d+(?:_\d+)?)\.(\d+)\.rec$/.exec(name);
  return m ? { worker: m[1]!, attempt: Number(m[2]) } : undefined;
}
