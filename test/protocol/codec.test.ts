import { Packr } from "msgpackr";
import { describe, expect, test } from "vitest";
import { packr } from "../../src/protocol/codec.js";

/** The msgpack type byte of a top-level value. */
const typeByte = (value: unknown) => packr.pack(value)[0];

describe("the msgpack codec", () => {
  test("integers beyond 32 bits are written as msgpack integers, not floats, and read back as numbers", () => {
    for (const n of [2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER, -(2 ** 31) - 1, -(2 ** 40), Number.MIN_SAFE_INTEGER]) {
      expect([0xcf, 0xd3]).toContain(typeByte(n)); // uint64 or int64
      expect(packr.unpack(packr.pack(n))).toBe(n);
    }
    expect(typeByte(1.5)).toBe(0xcb); // floats stay float64
    expect(typeByte(2 ** 60)).toBe(0xcb); // beyond safe integers a number is a float already
    expect(packr.unpack(packr.pack(2n ** 64n - 1n))).toBe(2n ** 64n - 1n);
    expect(packr.unpack(packr.pack(-(2n ** 63n)))).toBe(-(2n ** 63n));
    expect(packr.unpack(packr.pack(5n))).toBe(5); // a bigint within safe integers reads back as a number
  });

  test("nested values are widened without touching the caller's objects", () => {
    const value = { a: [1, 2 ** 40, { b: 2 ** 41 }], c: "x", d: Buffer.from([1, 2]), e: new Date(0), u: undefined };
    const back = packr.unpack(packr.pack(value)) as typeof value;
    expect(back.a).toEqual([1, 2 ** 40, { b: 2 ** 41 }]);
    expect(back.c).toBe("x");
    expect(Buffer.from(back.d)).toEqual(Buffer.from([1, 2]));
    expect(back.e).toEqual(new Date(0));
    expect("u" in back).toBe(true);
    expect(value.a).toEqual([1, 2 ** 40, { b: 2 ** 41 }]); // the caller's object still holds numbers
    // A plain msgpack reader (another language's) sees integers: msgpackr without our options gives bigints for int64.
    const plain = new Packr({ useRecords: false }).unpack(packr.pack(value)) as { a: [number, bigint, { b: bigint }] };
    expect(plain.a[1]).toBe(2n ** 40n);
    expect(plain.a[2].b).toBe(2n ** 41n);
  });
});
