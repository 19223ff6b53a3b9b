import { addExtension, Packr } from "msgpackr";

/** A Map on its way into msgpack: msgpackr writes a Map as a plain map, which reads back as an object. */
class MapEntries {
  constructor(readonly entries: unknown[][]) {}
}

/** msgpack extension type 0x6d ("m"): a JavaScript Map, as an array of [key, value] pairs (Set is msgpackr's 0x73). */
export const MAP_EXTENSION = 0x6d;
addExtension({ Class: MapEntries, type: MAP_EXTENSION, write: (m: MapEntries) => m.entries, read: (entries: unknown[][]) => new Map(entries as [unknown, unknown][]) });

// int64AsType "auto": a msgpack integer decodes as a number when it is a safe integer, as a bigint beyond.
const base = new Packr({ useRecords: false, moreTypes: true, int64AsType: "auto" as "bigint" }); // msgpackr supports "auto"; its types lag

/** Integers that msgpackr would write as float64: beyond 32 bits, yet exact in a JavaScript number. */
const wide = (v: number) => Number.isSafeInteger(v) && (v > 0xffff_ffff || v < -0x8000_0000);

/**
 * The value with every wide safe integer as a bigint, so that it is written as
 * a msgpack integer (int64/uint64) rather than a float: Python and R then read
 * `2**40` as an integer. A Map becomes `MapEntries`, so that it reads back
 * as a Map. Only arrays, plain objects, Maps and Sets are walked; a value
 * with nothing to change is returned as is.
 */
function widenIntegers(value: unknown): unknown {
  if (typeof value === "number") return wide(value) ? BigInt(value) : value;
  if (value instanceof Map) return new MapEntries([...value].map(([k, v]) => [widenIntegers(k), widenIntegers(v)]));
  if (value instanceof Set) {
    const before = [...value];
    const items = before.map(widenIntegers);
    return items.some((w, i) => w !== before[i]) ? new Set(items) : value;
  }
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
