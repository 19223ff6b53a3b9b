// JSON Lines written as bytes into one buffer, handed to a stream in chunks:
// `slurmkit results` on a million tasks writes 190 MB, and a string per
// field and per row cost more than the reading did.
import { numberText } from "./json.js";

/** The buffer is handed over once it holds this much. */
const CHUNK = 64 * 1024;

/** Builds rows byte by byte; `end()` says when to `flush()`. */
export class JsonLinesWriter {
  #buf: Buffer = Buffer.allocUnsafe(2 * CHUNK);
  #at = 0;
  /** JSON-quoted strings as UTF-8 bytes, each encoded once (submissions, hosts and job ids repeat). */
  readonly #quoted = new Map<string, Uint8Array>();

  constructor(private readonly stream: NodeJS.WritableStream) {}

  /** Room for `n` more bytes. */
  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n));
    this.#buf.copy(grown, 0, 0, this.#at);
    this.#buf = grown;
  }

  /** Bytes as they are (ASCII field names and punctuation, made once with `ascii`). */
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    const buf = this.#buf;
    let at = this.#at;
    // A long one in one copy; for a few bytes, the call costs more than the loop.
    if (b.length > 24) {
      buf.set(b, at);
      this.#at = at + b.length;
      return this;
    }
    for (let i = 0; i < b.length; i++) buf[at++] = b[i]!;
    this.#at = at;
    return this;
  }

  /** JSON text (a value toJson wrote), as UTF-8. */
  text(s: string): this {
    this.#room(s.length * 3);
    this.#at += this.#buf.write(s, this.#at, "utf8");
    return this;
  }

  /** A string as JSON (quoted and escaped, as JSON.stringify does). */
  string(s: string): this {
    let q = this.#quoted.get(s);
    if (q === undefined) {
      q = Buffer.from(JSON.stringify(s), "utf8");
      if (this.#quoted.size < 10_000) this.#quoted.set(s, q);
    }
    return this.bytes(q);
  }

  /** A finite number as JSON.stringify writes it; integers digit by digit. */
  number(n: number): this {
    if (!Number.isSafeInteger(n) || Object.is(n, -0)) return this.text(Number.isFinite(n) ? numberText(n) : "null");
    this.#room(17);
    if (n < 0) {
      this.#buf[this.#at++] = 0x2d;
      n = -n;
    }
    if (n < 1e8) return this.#digits(n, 0);
    // A time in milliseconds (13 digits): two parts that fit small integers, the low one padded to 8 digits.
    const high = Math.floor(n / 1e8);
    return this.#digits(high, 0).#digits(n - high * 1e8, 8);
  }

  /** The digits of `v` (below 1e8), at least `width` of them. */
  #digits(v: number, width: number): this {
    let count = 1;
    for (let p = 10; p <= v; p *= 10) count++;
    if (count < width) count = width;
    const buf = this.#buf;
    let at = this.#at + count;
    this.#at = at;
    for (let k = 0; k < count; k++) {
      const q = (v / 10) | 0;
      buf[--at] = 0x30 + v - q * 10;
      v = q;
    }
    return this;
  }

  /** Ends the row; true once a chunk is ready for flush(). */
  end(): boolean {
    this.#room(1);
    this.#buf[this.#at++] = 0x0a;
    return this.#at >= CHUNK;
  }

  /** Hands the rows written so far to the stream (call it at a row's end), waiting while the stream is full. */
  async flush(): Promise<void> {
    if (this.#at === 0) return;
    // As text: a stream may hold a chunk after it said it was written (a PassThrough keeps it for its reader), so
    // the buffer itself cannot go; a fresh copy of each chunk costs fresh memory (190 MB for a million rows).
    const text = this.#buf.toString("utf8", 0, this.#at);
    this.#at = 0;
    if (!this.stream.write(text)) await new Promise<void>((resolve) => this.stream.once("drain", () => resolve()));
  }
}

/** ASCII text as bytes, for JsonLinesWriter.bytes. */
export function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
