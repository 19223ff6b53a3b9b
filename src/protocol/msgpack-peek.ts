// Reads the few msgpack shapes of a task record in place, without building
// objects: map and string headers, numbers, booleans, and a skip over any
// value. A reader of a million records cannot afford a full decode of each
// (task-stream.ts peeks at them, and decodes a record whole only on demand).
// Anything unexpected returns NaN or -1, and the caller decodes in full.

/** Where number() puts a float's bytes to read it. */
const SCRATCH_F64 = new Float64Array(1);
const SCRATCH_BYTES = new Uint8Array(SCRATCH_F64.buffer);
const SCRATCH_F32 = new Float32Array(SCRATCH_F64.buffer, 0, 1);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Values nested deeper than this are left to a full decode. */
const MAX_DEPTH = 64;

/** A cursor over msgpack bytes `buf[at, end)`. */
export class MsgpackCursor {
  buf: Uint8Array = new Uint8Array(0);
  at = 0;
  end = 0;
  /** The bytes of the last string read: `buf[strStart, strEnd)`. */
  strStart = 0;
  strEnd = 0;

  /** Points the cursor at `buf[start, end)`. */
  reset(buf: Uint8Array, start: number, end: number): this {
    this.buf = buf;
    this.at = start;
    this.end = end;
    return this;
  }

  #byte(): number {
    return this.at < this.end ? this.buf[this.at++]! : -1;
  }

  #uint(bytes: number): number {
    if (this.at + bytes > this.end) return Number.NaN;
    const b = this.buf;
    const at = this.at;
    this.at += bytes;
    switch (bytes) {
      case 1:
        return b[at]!;
      case 2:
        return (b[at]! << 8) | b[at + 1]!;
      case 4:
        return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
      default: {
        let v = 0;
        for (let k = 0; k < bytes; k++) v = v * 256 + b[at + k]!;
        return v;
      }
    }
  }

  /** A map header's entry count; -1 if the next value is not a map. */
  mapLength(): number {
    const b = this.#byte();
    if (b >= 0x80 && b <= 0x8f) return b & 0x0f;
    if (b === 0xde) return this.#uint(2);
    if (b === 0xdf) return this.#uint(4);
    return -1;
  }

  /** Reads a string's header and passes over its bytes, kept in strStart/strEnd; false if the next value is not a string. */
  str(): boolean {
    const b = this.#byte();
    let n: number;
    if (b >= 0xa0 && b <= 0xbf) n = b & 0x1f;
    else if (b === 0xd9) n = this.#uint(1);
    else if (b === 0xda) n = this.#uint(2);
    else if (b === 0xdb) n = this.#uint(4);
    else return false;
    if (!(this.at + n <= this.end)) return false;
    this.strStart = this.at;
    this.at += n;
    this.strEnd = this.at;
    return true;
  }

  /** Whether the last string read is `ascii`. */
  strIs(ascii: string): boolean {
    if (this.strEnd - this.strStart !== ascii.length) return false;
    for (let k = 0; k < ascii.length; k++) if (this.buf[this.strStart + k] !== ascii.charCodeAt(k)) return false;
    return true;
  }

  /** A number (any msgpack integer or float); NaN if the next value is not one, or is an integer beyond 2^53. */
  number(): number {
    const b = this.#byte();
    if (b < 0) return Number.NaN;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xcc:
        return this.#uint(1);
      case 0xcd:
        return this.#uint(2);
      case 0xce:
        return this.#uint(4);
      case 0xcf: {
        const v = this.#uint(8);
        return v <= Number.MAX_SAFE_INTEGER ? v : Number.NaN;
      }
      case 0xd0:
      case 0xd1:
      case 0xd2: {
        const bytes = b === 0xd0 ? 1 : b === 0xd1 ? 2 : 4;
        const v = this.#uint(bytes);
        const top = 2 ** (8 * bytes);
        return v >= top / 2 ? v - top : v;
      }
      case 0xd3: {
        // int64: the high half signed, the low half unsigned; exact while the high half is within 2^21.
        if (this.at + 8 > this.end) return Number.NaN;
        const hi = this.#uint(4);
        const lo = this.#uint(4);
        const signed = hi >= 0x8000_0000 ? hi - 0x1_0000_0000 : hi;
        return signed >= -0x20_0000 && signed < 0x20_0000 ? signed * 0x1_0000_0000 + lo : Number.NaN;
      }
      case 0xca:
      case 0xcb: {
        // Big-endian bytes into a scratch float, with no view made per number (times are float64s: three in most records).
        const bytes = b === 0xca ? 4 : 8;
        if (this.at + bytes > this.end) return Number.NaN;
        const from = this.at;
        this.at += bytes;
        for (let k = 0; k < bytes; k++) SCRATCH_BYTES[LITTLE_ENDIAN ? bytes - 1 - k : k] = this.buf[from + k]!;
        return bytes === 4 ? SCRATCH_F32[0]! : SCRATCH_F64[0]!;
      }
      default:
        return Number.NaN;
    }
  }

  /** A boolean as 1 or 0; -1 if the next value is not one. */
  bool(): number {
    const b = this.#byte();
    return b === 0xc3 ? 1 : b === 0xc2 ? 0 : -1;
  }

  /** Whether the value starting with byte `b` (already read) is no extension, a timestamp (type -1), or msgpackr's undefined (`d4 00 00`). */
  #plainExtension(b: number): boolean {
    if (b === 0xd4) return this.#ahead(0) === 0 || this.#ahead(0) === 0xff;
    if (b >= 0xd5 && b <= 0xd8) return this.#ahead(0) === 0xff;
    if (b === 0xc7) return this.#ahead(1) === 0xff;
    if (b === 0xc8) return this.#ahead(2) === 0xff;
    if (b === 0xc9) return this.#ahead(4) === 0xff;
    return true;
  }

  /** The byte `k` after the cursor, without moving it; -1 past the end. */
  #ahead(k: number): number {
    return this.at + k < this.end ? this.buf[this.at + k]! : -1;
  }

  /**
   * Passes over one value; false if the bytes end first, hold no msgpack
   * value, hold an extension other than a timestamp or msgpackr's
   * `undefined` (msgpackr writes some, Set and Error among them, with their
   * data after the extension, so only a full decode knows where they end),
   * a map key that is not a string or an integer (which msgpackr does not
   * read into an object), or nesting deeper than MAX_DEPTH.
   */
  skip(depth = 0): boolean {
    const b = this.#byte();
    if (b < 0 || depth > MAX_DEPTH) return false;
    if (!this.#plainExtension(b)) return false;
    let n = 0;
    let items = 0;
    let map = false;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) n = 0;
    else if (b >= 0x80 && b <= 0x8f) {
      items = b & 0x0f;
      map = true;
    } else if (b >= 0x90 && b <= 0x9f) items = b & 0x0f;
    else if (b >= 0xa0 && b <= 0xbf) n = b & 0x1f;
    else {
      switch (b) {
        case 0xc4:
        case 0xd9:
          n = this.#uint(1);
          break;
        case 0xc5:
        case 0xda:
          n = this.#uint(2);
          break;
        case 0xc6:
        case 0xdb:
          n = this.#uint(4);
          break;
        case 0xc7:
          n = this.#uint(1) + 1;
          break;
        case 0xc8:
          n = this.#uint(2) + 1;
          break;
        case 0xc9:
          n = this.#uint(4) + 1;
          break;
        case 0xca:
          n = 4;
          break;
        case 0xcb:
          n = 8;
          break;
        case 0xcc:
        case 0xd0:
          n = 1;
          break;
        case 0xcd:
        case 0xd1:
          n = 2;
          break;
        case 0xce:
        case 0xd2:
          n = 4;
          break;
        case 0xcf:
        case 0xd3:
          n = 8;
          break;
        case 0xd4:
          n = 2;
          break;
        case 0xd5:
          n = 3;
          break;
        case 0xd6:
          n = 5;
          break;
        case 0xd7:
          n = 9;
          break;
        case 0xd8:
          n = 17;
          break;
        case 0xdc:
          items = this.#uint(2);
          break;
        case 0xdd:
          items = this.#uint(4);
          break;
        case 0xde:
          items = this.#uint(2);
          map = true;
          break;
        case 0xdf:
          items = this.#uint(4);
          map = true;
          break;
        default:
          return false; // 0xc1 is never used
      }
    }
    if (Number.isNaN(n) || Number.isNaN(items) || this.at + n > this.end) return false;
    this.at += n;
    for (let k = 0; k < items; k++) {
      if (map && !this.#keyAhead()) return false;
      if (!this.skip(depth + 1) || (map && !this.skip(depth + 1))) return false;
    }
    return true;
  }

  /** Whether the next value is a string or an integer: a map key msgpackr reads into an object. */
  #keyAhead(): boolean {
    const b = this.#ahead(0);
    return b >= 0 && (b <= 0x7f || b >= 0xe0 || (b >= 0xa0 && b <= 0xbf) || (b >= 0xcc && b <= 0xd3) || (b >= 0xd9 && b <= 0xdb));
  }
}

/** What scalarAt returns for a value that is not a plain number, boolean or nil. */
export const NOT_SCALAR: unique symbol = Symbol("not a scalar");
const scalarCursor = new MsgpackCursor();

/**
 * The number, boolean or null that fills `buf[start, end)` exactly, as
 * msgpackr decodes it (a task's value is often one: a loss, a count), read
 * without a decoder call; NOT_SCALAR for anything else (an integer beyond
 * 2^53 too, which msgpackr decodes as a bigint).
 */
export function scalarAt(buf: Uint8Array, start: number, end: number): number | boolean | null | typeof NOT_SCALAR {
  if (end <= start) return NOT_SCALAR;
  const b = buf[start]!;
  if (end - start === 1) {
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b === 0xc0) return null;
    if (b === 0xc2 || b === 0xc3) return b === 0xc3;
    return NOT_SCALAR;
  }
  if (b < 0xca || b > 0xd3) return NOT_SCALAR;
  const c = scalarCursor.reset(buf, start, end);
  const n = c.number();
  return Number.isNaN(n) || c.at !== end ? NOT_SCALAR : n;
}
