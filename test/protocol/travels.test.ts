// What travels to a node and back (the README's table), as a property: a value either comes back equal (with
// the table's documented conversions), or travelProblem refuses it, naming where it is.
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { packr } from "../../src/protocol/codec.js";
import { travelProblem } from "../../src/protocol/travels.js";

/** The table's conversions: -0 reads back as 0, a bigint that fits a safe integer as a number, a null-prototype object as a plain one. */
function documented(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (typeof value === "bigint") return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (Array.isArray(value)) return value.map(documented);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [documented(k), documented(v)]));
  if (value instanceof Set) return new Set([...value].map(documented));
  if (value === null || typeof value !== "object") return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, documented(v)]));
}

/** The oracle for what the table refuses among fc.anything's values: boxed primitives and array holes. */
function refusedInside(value: unknown): boolean {
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return true;
  if (Array.isArray(value)) return value.some((v) => refusedInside(v)) || Array.from({ length: value.length }, (_, i) => i).some((i) => !(i in value));
  if (value instanceof Map) return [...value].some(([k, v]) => refusedInside(k) || refusedInside(v));
  if (value instanceof Set) return [...value].some(refusedInside);
  if (value === null || typeof value !== "object") return false;
  return Object.values(value).some(refusedInside);
}

const everything = fc.anything({
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withNullPrototype: true,
  withBoxedValues: true,
  withSparseArray: true,
  withObjectString: true,
});

describe("what travels", () => {
  test("a value either comes back equal (with the documented conversions) or is refused, and only what the table refuses is", () => {
    fc.assert(
      fc.property(everything, (value) => {
        const problem = travelProblem(value);
        if (problem !== undefined) return refusedInside(value);
        return isDeepStrictEqual(packr.unpack(packr.pack(value)), documented(value));
      }),
      { numRuns: 2000 },
    );
  });

  test("the built-ins in the table come back as themselves", () => {
    const value = {
      map: new Map<unknown, unknown>([
        ["a", 1],
        [2, new Set([3n ** 50n, "x"])],
      ]),
      set: new Set([1, "two"]),
      date: new Date(1_700_000_000_123),
      re: /a+b/gi,
      bytes: Buffer.from("hi"),
      floats: new Float32Array([0.5, 1.5]),
      big: 2n ** 70n,
      error: new RangeError("r", { cause: "c" }),
      nested: [undefined, null, Number.NaN, -Infinity, { "odd key": "" }],
    };
    expect(travelProblem(value)).toBeUndefined();
    const back = packr.unpack(packr.pack(value)) as typeof value;
    expect(back.map).toBeInstanceOf(Map);
    expect(back.error).toBeInstanceOf(RangeError);
    expect(back.error.cause).toBe("c");
    expect(isDeepStrictEqual(back, value)).toBe(true);
  });

  test("what cannot travel is refused, naming where it is inside the argument", () => {
    class Point {
      x = 1;
    }
    class MyError extends Error {}
    const cycle: Record<string, unknown> = { list: [] };
    (cycle.list as unknown[]).push(cycle);
    const holey: number[] = [];
    holey[0] = 1;
    holey[2] = 3;
    const cases: [unknown, string][] = [
      [{ f: () => 42 }, "`arg.f` is a function"],
      [Symbol("s"), "`arg` is a symbol"],
      [{ deep: [{ s: Symbol.iterator }] }, "`arg.deep[0].s` is a symbol"],
      [{ [Symbol("k")]: 1 }, "`arg` has a symbol key (Symbol(k))"],
      [cycle, "`arg.list[0]` refers back to an object that contains it (a cycle)"],
      [new Point(), "`arg` is an instance of Point, whose class would be lost"],
      [{ e: new MyError("m") }, "`arg.e` is an instance of MyError"],
      [Object.assign(new Error("m"), { code: 3 }), "`arg` is an Error with properties of its own"],
      [holey, "`arg` has a hole at index 1"],
      [new Map([["k", () => 1]]), '`arg.get("k")` is a function'],
      [new Map([[Symbol("key"), 1]]), "`arg key Symbol(key)` is a symbol"],
      [new Set([1, new Point()]), "`arg item 1` is an instance of Point"],
      [{ "a b": Promise.resolve(1) }, '`arg["a b"]` is a Promise: await it before submitting'],
      [new String("s"), "`arg` is a boxed String"],
      [new WeakMap(), "`arg` is an instance of WeakMap"],
      [JSON.parse('{"a":{"__proto__":{"x":1}}}'), "`arg.a` has an own `__proto__` key"],
    ];
    for (const [value, words] of cases) expect(travelProblem(value), words).toContain(words);
  });

  test("a shared (not cyclic) object travels, as two equal copies", () => {
    const shared = { a: 1 };
    expect(travelProblem({ x: shared, y: [shared] })).toBeUndefined();
  });
});
