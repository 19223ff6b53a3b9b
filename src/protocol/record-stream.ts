// A record stream: one append-only file per writer (a worker), holding
// length-prefixed records with a checksum each. Readers read on from an
// offset and stop at the last good record, so a torn or corrupt tail (a
// worker killed mid-write, a node that died) is never misread.
//
// Layout: the 8-byte magic `SKSTRM01`, then records, each
//   uint32 LE  payload length n
//   uint32 LE  CRC-32 (IEEE) of the payload
//   n bytes    payload
import { fdatasyncSync, writeSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";

/** The first bytes of every stream. */
export const STREAM_MAGIC = Buffer.from("SKSTRM01", "latin1");
/** A record's header: its length and its checksum. */
export const RECORD_HEADER = 8;
const HEADER = RECORD_HEADER;
/** No record is this large; a length above it is a corrupt header, not a record still being written. */
export const MAX_RECORD = 64 * 2 ** 20;

/** Slice-by-8 tables: table k advances a byte through k more zero bytes (table 0 is the usual one). */
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib's) of `data[start, end)`, in plain JavaScript (the runner also runs on Node 18, whose zlib has no crc32), eight bytes a step. */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  const t = CRC_TABLES;
  let c = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record framed for a stream: length, checksum, payload. */
export function frameRecord(payload: Uint8Array): Buffer {
  if (payload.length === 0) throw new RangeError("A stream record holds at least one byte");
  if (payload.length > MAX_RECORD) throw new RangeError(`A stream record holds at most ${MAX_RECORD} bytes, got ${payload.length}`);
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  out.set(payload, HEADER);
  return out;
}

/** What a read from an offset found. */
export interface StreamRead {
  /** The good records after the offset, in order. */
  readonly records: Buffer[];
  /** Where the next read starts: just after the last good record. */
  readonly offset: number;
  /**
   * Why reading stopped before the end of the bytes, if it did: "torn" (a
   * record not wholly written yet, or cut by a crash) or "corrupt" (a
   * checksum or length that cannot be right). Nothing after it is read.
   */
  readonly stopped?: "torn" | "corrupt";
}

/** Where a scan of a stream's bytes stopped: the stream offset after the last good record, and why it stopped early, if it did. */
export interface StreamScan {
  readonly offset: number;
  readonly stopped?: "torn" | "corrupt";
}

/**
 * Visits the good records in `bytes` (which start at stream offset `offset`;
 * 0 is the file's start, where the magic is) in place: `visit` gets each
 * payload as `bytes[start, end)`, with no copy. Stops at the first record
 * that is incomplete or fails its checksum.
 */
export function scanRecords(bytes: Uint8Array, offset: number, visit: (bytes: Buffer, start: number, end: number) => void): StreamScan {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  if (offset === 0) {
    if (buf.length < STREAM_MAGIC.length) return { offset: 0, ...(buf.length ? { stopped: "torn" as const } : {}) };
    if (!buf.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) return { offset: 0, stopped: "corrupt" };
    at = STREAM_MAGIC.length;
  }
  while (at < buf.length) {
    if (buf.length - at < HEADER) return { offset: offset + at, stopped: "torn" };
    const length = buf.readUInt32LE(at);
    // No record is empty: zeros here are a tail not written yet (a file system that shows the size first), or never.
    if (length === 0) return { offset: offset + at, stopped: "torn" };
    if (length > MAX_RECORD) return { offset: offset + at, stopped: "corrupt" };
    if (buf.length - at - HEADER < length) return { offset: offset + at, stopped: "torn" };
    const start = at + HEADER;
    if (crc32(buf, start, start + length) !== buf.readUInt32LE(at + 4)) return { offset: offset + at, stopped: "corrupt" };
    visit(buf, start, start + length);
    at = start + length;
  }
  return { offset: offset + at };
}

/**
 * Parses the records in `bytes`, which start at stream offset `offset` (0 is
 * the file's start, where the magic is), each copied out. Stops at the first
 * record that is incomplete or fails its checksum.
 */
export function parseRecords(bytes: Uint8Array, offset = 0): StreamRead {
  const records: Buffer[] = [];
  const scan = scanRecords(bytes, offset, (buf, start, end) => records.push(Buffer.from(buf.subarray(start, end))));
  return { records, ...scan };
}

/** Reads a stream's good records from `offset` on; a missing file reads as nothing new. */
export async function readStream(path: string, offset = 0): Promise<StreamRead> {
  const handle = await open(path, "r").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (!handle) return { records: [], offset };
  try {
    const { size } = await handle.stat();
    if (size <= offset) return { records: [], offset };
    const bytes = Buffer.allocUnsafe(size - offset);
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, offset);
    return parseRecords(bytes.subarray(0, bytesRead), offset);
  } finally {
    await handle.close();
  }
}

/** Options of StreamWriter. */
export interface StreamWriterOptions {
  /** Flush what is ready at most this long after it was appended; `false`: only on flush(). @default 20 */
  readonly groupCommitMs?: number | false;
}

/**
 * Appends records to a new stream and group-commits them: `append` queues a
 * record, and one write and one fsync carry every record queued by then,
 * within `groupCommitMs`, or at once with `flush()`. A stream is created
 * once (exclusively) and never rewritten: a writer that starts again opens
 * a new one.
 */
export class StreamWriter {
  #pending: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #error: unknown;

  private constructor(
    private readonly handle: FileHandle,
    /** The stream's path. */
    readonly path: string,
    private readonly groupCommitMs: number | false,
  ) {}

  /** Creates the stream at `path`, which must not exist yet, and writes its magic. */
  static async create(path: string, options: StreamWriterOptions = {}): Promise<StreamWriter> {
    const handle = await open(path, "wx");
    await handle.write(STREAM_MAGIC);
    await handle.sync();
    return new StreamWriter(handle, path, options.groupCommitMs ?? 20);
  }

  /** Queues a record; it is on disk once the next flush (at most groupCommitMs away) resolves. */
  append(payload: Uint8Array): void {
    if (this.#error !== undefined) throw this.#error;
    this.#pending.push(frameRecord(payload));
    if (this.groupCommitMs === false) return;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch(() => undefined);
    }, this.groupCommitMs);
  }

  /**
   * Writes and syncs (fdatasync) every record queued so far, in one write;
   * rejects if a write failed. The write and the sync are synchronous: the
   * worker waits for them anyway before a slot takes its next task, and two
   * hops to Node's thread pool and back cost 14% of a trivial task's time
   * (a worker and its slot on one CPU).
   */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = this.#flushing.then(async () => {
      if (this.#error !== undefined) throw this.#error;
      if (batch.length === 0) return;
      try {
        const bytes = batch.length === 1 ? batch[0]! : Buffer.concat(batch);
        // One write call may write less than it was given (a full disk, a signal): write the rest.
        for (let at = 0; at < bytes.length; ) at += writeSync(this.handle.fd, bytes, at, bytes.length - at);
        // fdatasync: the bytes and the file's size, not its times (0.3 ms against fsync's 0.5 ms here); on NFS, a commit either way.
        fdatasyncSync(this.handle.fd);
      } catch (error) {
        this.#error = error;
        throw error;
      }
    });
    return this.#flushing;
  }

  /** Flushes, then closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.handle.close();
    }
  }
}
