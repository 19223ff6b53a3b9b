// Reads of many files in one command. Over the system's ssh every call is a
// process here and a session there (about 0.4 s on a slow day), so reads
// issued at the same moment (the watcher judging many ended jobs at once)
// are sent as one shell loop that prints each file framed by its size.

/** What one file of a batch read gave: its bytes, or why it could not be read (ssh's and cat's words). */
export type BatchedRead = Buffer | { readonly error: string };

/**
 * The shell loop of a batch read: paths come one per line on stdin; for each,
 * `F <size>` and exactly that many bytes (a file that grows meanwhile is cut
 * at the size, one that shrinks is padded with zeros), or `E <cat's error>`.
 */
export const BATCH_READ_SCRIPT = [
  "while IFS= read -r f; do",
  '  if [ -f "$f" ] && [ -r "$f" ]; then',
  '    n=$(wc -c < "$f") || n=0',
  "    n=$((n))",
  "    printf 'F %s\\n' \"$n\"",
  '    { head -c "$n" -- "$f"; head -c "$n" /dev/zero; } | head -c "$n"',
  "  else",
  '    e=$(cat -- "$f" 2>&1 >/dev/null | head -n 1)',
  "    printf 'E %s\\n' \"${e:-cat: $f: No such file or directory}\"",
  "  fi",
  "done",
].join("\n");

/** Parses a batch read's output into one entry per path, in order; throws if the output is cut short or malformed. */
export function parseBatchRead(out: Buffer, count: number): BatchedRead[] {
  const reads: BatchedRead[] = [];
  let at = 0;
  while (reads.length < count) {
    const eol = out.indexOf(10, at);
    if (eol < 0) throw new Error(`batch read: output ends after ${reads.length} of ${count} files`);
    const line = out.subarray(at, eol).toString();
    at = eol + 1;
    if (line.startsWith("E ")) {
      reads.push({ error: line.slice(2) });
      continue;
    }
    const size = /^F (\d+)$/.exec(line);
    if (!size || at + Number(size[1]) > out.length) throw new Error(`batch read: unexpected output for file ${reads.length + 1} of ${count}: '${line.slice(0, 80)}'`);
    reads.push(Buffer.from(out.subarray(at, at + Number(size[1]))));
    at += Number(size[1]);
  }
  return reads;
}

/** At most this many paths go in one command. */
const MAX_PATHS = 512;

/**
 * Gathers the reads asked for in one turn of the event loop and makes them
 * with one call of `many` (one call of `one` when only one was asked for).
 * Paths with a newline cannot go on a line of the batch: they are read alone.
 */
export class ReadBatcher {
  #pending: { path: string; resolve: (bytes: Buffer) => void; reject: (error: unknown) => void }[] = [];
  #scheduled = false;

  constructor(
    private readonly one: (path: string) => Promise<Buffer>,
    private readonly many: (paths: readonly string[]) => Promise<BatchedRead[]>,
    /** Turns a file's error line into the error its read rejects with. */
    private readonly failure: (path: string, error: string) => Error,
  ) {}

  /** Reads a file, in a batch with the reads asked for at the same moment. */
  read(path: string): Promise<Buffer> {
    if (path.includes("\n")) return this.one(path);
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.push({ path, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (let first = 0; first < pending.length; first += MAX_PATHS) {
      const batch = pending.slice(first, first + MAX_PATHS);
      if (batch.length === 1) {
        this.one(batch[0]!.path).then(batch[0]!.resolve, batch[0]!.reject);
        continue;
      }
      this.many(batch.map((p) => p.path)).then(
        (reads) => {
          for (const [i, p] of batch.entries()) {
            const r = reads[i]!;
            if (Buffer.isBuffer(r)) p.resolve(r);
            else p.reject(this.failure(p.path, r.error));
          }
        },
        (error: unknown) => {
          for (const p of batch) p.reject(error);
        },
      );
    }
  }
}
