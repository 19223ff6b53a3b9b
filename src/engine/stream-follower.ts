// Follows a folder of record streams through a transport: each poll lists
// the folder once and reads each stream only from where the last read
// stopped, so a poll costs one listing plus one read per stream, whatever
// the number of records (tasks) in them.
import { readFrom, type Transport } from "../transport/transport.js";
import { scanRecords } from "../protocol/record-stream.js";

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
   * is reported, and reading that stream stops there.
   */
  async poll(): Promise<FollowedRecords> {
    const records = new Map<string, Buffer[]>();
    const { corrupt } = await this.scan((name, bytes, start, end) => {
      const list = records.get(name) ?? [];
      list.push(Buffer.from(bytes.subarray(start, end)));
      records.set(name, list);
    });
    return { records, corrupt };
  }

  /**
   * As poll, but hands each new record to `visit` in place (`bytes[start,
   * end)`, valid only during the call), stream by stream in order. Every
   * stream is read before any record is visited, so a poll that fails
   * visits nothing and moves no offset.
   */
  async scan(visit: (name: string, bytes: Buffer, start: number, end: number) => void): Promise<{ readonly corrupt: readonly string[] }> {
    // Names in natural order: a worker's attempt 10 after its attempt 2.
    const names = (await this.transport.list(this.dir)).filter(this.isStream).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    const read: Array<{ name: string; from: number; bytes: Buffer }> = [];
    for (const name of names) {
      const from = this.offset(name);
      const bytes = await readFrom(this.transport, `${this.dir}/${name}`, from);
      if (bytes.length > 0) read.push({ name, from, bytes });
    }
    const corrupt: string[] = [];
    for (const { name, from, bytes } of read) {
      const scan = scanRecords(bytes, from, (b, start, end) => visit(name, b, start, end));
      this.#offsets.set(name, scan.offset);
      if (scan.stopped === "corrupt") corrupt.push(name);
    }
    return { corrupt };
  }
}
