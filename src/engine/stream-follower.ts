// Follows a folder of record streams through a transport: each poll lists
// the folder once and reads each stream only from where the last read
// stopped, so a poll costs one listing plus one read per stream (per window
// of new bytes, for scan), whatever the number of records (tasks) in them.
import { readFrom, type Transport } from "../transport/transport.js";
import { RECORD_HEADER, scanRecords, STREAM_MAGIC } from "../protocol/record-stream.js";

/** How much of a stream scan reads at once: small enough to stay in cache, large enough that a read costs little per record. */
const WINDOW_BYTES = 2 ** 20;

/** What one poll of the streams found. */
export interface FollowedRecords {
  /** New good records, by stream name, in order. */
  readonly records: ReadonlyMap<string, Buffer[]>;
  /** Streams whose tail is corrupt (not merely still being written): nothing after that point is read. */
  readonly corrupt: readonly string[];
}

/** Remembers how far each stream of a folder has been read. */
export class StreamFollower {
  readonly #offsets = new Map<string, number>();
  /** scan's buffer, reused for every read. */
  readonly #window = Buffer.allocUnsafe(WINDOW_BYTES);

  constructor(
    private readonly transport: Transport,
    /** The folder that holds the streams. */
    readonly dir: string,
    /** Which entries of the folder are streams. */
    private readonly isStream: (name: string) => boolean = (name) => name.endsWith(".stream"),
  ) {}

  /** How far `name` has been read (bytes, the magic included). */
  offset(name: string): number {
    return this.#offsets.get(name) ?? 0;
  }

  /**
   * Reads what was added to every stream since the last poll. A torn tail
   * (a record still being written) is read again next time; a corrupt one
   * is reported, and reading that stream stops there. Every stream is read
   * before any offset moves, so a poll that fails returns nothing and moves
   * no offset: the next one reads it all again.
   */
  async poll(): Promise<FollowedRecords> {
    const names = await this.#names();
    const read: Array<{ name: string; from: number; bytes: Buffer }> = [];
    for (const name of names) {
      const from = this.offset(name);
      const bytes = await readFrom(this.transport, `${this.dir}/${name}`, from);
      if (bytes.length > 0) read.push({ name, from, bytes });
    }
    const records = new Map<string, Buffer[]>();
    const corrupt: string[] = [];
    for (const { name, from, bytes } of read) {
      const list: Buffer[] = [];
      const scan = scanRecords(bytes, from, (b, start, end) => list.push(Buffer.from(b.subarray(start, end))));
      if (list.length > 0) records.set(name, list);
      this.#offsets.set(name, scan.offset);
      if (scan.stopped === "corrupt") corrupt.push(name);
    }
    return { records, corrupt };
  }

  /**
   * As poll, but hands each new record to `visit` in place (`bytes[start,
   * end)`, valid only during the call: copy what you keep), stream by stream
   * in order, each stream's records after `enter(name)`. Where the transport
   * can (readInto), a stream is read in windows of one reused buffer, so that
   * a large stream is never held whole. A stream's offset moves with the
   * records visited: if a read fails, the records visited before it stay
   * visited and are not visited again, and the error is thrown.
   */
  async scan(visit: (bytes: Buffer, start: number, end: number) => void, enter: (name: string) => void = () => undefined): Promise<{ readonly corrupt: readonly string[] }> {
    const corrupt: string[] = [];
    for (const name of await this.#names()) {
      const path = `${this.dir}/${name}`;
      enter(name);
      let from = this.offset(name);
      if (!this.transport.readInto) {
        const scan = scanRecords(await readFrom(this.transport, path, from), from, visit);
        this.#offsets.set(name, scan.offset);
        if (scan.stopped === "corrupt") corrupt.push(name);
        continue;
      }
      let window = this.#window;
      for (;;) {
        const got = await this.transport.readInto(path, from, window);
        const scan = scanRecords(window.subarray(0, got), from, visit);
        this.#offsets.set(name, scan.offset);
        if (scan.stopped === "corrupt") corrupt.push(name);
        // The file's end, or a corrupt record: done with this stream for now.
        if (got < window.length || scan.stopped === "corrupt") break;
        if (scan.offset === from) {
          // A full window without a whole record: one record is larger than the window. Read it in a buffer of its size.
          const header = from === 0 ? STREAM_MAGIC.length : 0;
          const needed = header + RECORD_HEADER + window.readUInt32LE(header);
          // Not larger after all (a length of zero: a tail not written yet): read again next time.
          if (needed <= window.length) break;
          window = Buffer.allocUnsafe(needed);
        }
        from = scan.offset;
      }
    }
    return { corrupt };
  }

  /** The folder's streams, in natural order: a worker's attempt 10 after its attempt 2. */
  async #names(): Promise<string[]> {
    return (await this.transport.list(this.dir)).filter(this.isStream).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  }
}
