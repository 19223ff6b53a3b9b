// Follows a folder of record streams through a transport: each poll lists
// the folder once and reads each stream only from where the last read
// stopped, so a poll costs one listing plus one read per stream, whatever
// the number of records (tasks) in them.
import { readFrom, type Transport } from "../transport/transport.js";
import { parseRecords } from "../protocol/record-stream.js";

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
    // Names in natural order: a worker's attempt 10 after its attempt 2.
    const names = (await this.transport.list(this.dir)).filter(this.isStream).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    const records = new Map<string, Buffer[]>();
    const corrupt: string[] = [];
    const moved = new Map<string, number>();
    for (const name of names) {
      const from = this.offset(name);
      const bytes = await readFrom(this.transport, `${this.dir}/${name}`, from);
      if (bytes.length === 0) continue;
      const read = parseRecords(bytes, from);
      moved.set(name, read.offset);
      if (read.records.length) records.set(name, read.records);
      if (read.stopped === "corrupt") corrupt.push(name);
    }
    // Only a poll that read every stream moves on: one that failed half-way is read again whole, so no record is skipped.
    for (const [name, offset] of moved) this.#offsets.set(name, offset);
    return { records, corrupt };
  }
}
