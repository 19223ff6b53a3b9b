import { Packr } from "msgpackr";

// int64AsType "auto": a msgpack integer decodes as a number when it is a safe integer, as a bigint beyond.
const base = new Packr({ useRecords: false, moreTypes: true, int64AsType: "auto" as "bigint" }); // msgpackr supports "auto"; its types lag

/** Integers that msgpackr would write as float64: beyond 32 bits, yet exact in a JavaScript number. */
const wide = (v: number) => Number.isSafeInteger(v) && (v > 0xffff_ffff || v < -0x8000_0000);

/**
 * The value with every wide safe integer as a bigint, so that it is written as
 * a msgpack integer (int64/uint64) rather than a float: Python and R then read
 * `2**40` as an integer. Only arrays and plain objects are walked; a value
 * with nothing to change is returned as is.
 */
function widenIntegers(value: unknown): unknown {
  if (typeof value === "number") return wide(value) ? BigInt(value) : value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const w = widenIntegers(value[i]);
      if (w !== value[i]) {
        out ??= value.slice();
        out[i] = w;
      }
    }
    return out ?? value;
  }
  if (value === null || typeof value !== "object") return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const w = widenIntegers(v);
    if (w !== v) {
      out ??= { ...value };
      out[k] = w;
    }
  }
  return out ?? value;
}

/**
 * msgpack with plain-object maps and `undefined` kept, as every slurmkit file
 * uses: spec records, results and states. Python's and R's msgpack libraries
 * read it. Integers stay integers up to 2^64 (a JavaScript number while it is
 * a safe integer, a bigint beyond; so a small bigint reads back as a number).
 */
export const packr = {
  /** Encodes a value. */
  pack: (value: unknown): Buffer => base.pack(widenIntegers(value)),
  /** Decodes one value. */
  unpack: (bytes: Uint8Array): unknown => base.unpack(bytes) as unknown,
};
