import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, test } from "vitest";
import { numberText, toJson } from "../../src/report/json.js";

// msgpackr supports int64AsType "auto" (a bigint only beyond 2^53) at runtime, but its typings lack it.
const packr = new Packr({ useRecords: false, moreTypes: true, int64AsType: "auto" as "bigint" });

describe("toJson", () => {
  test("plain JSON values come out exactly as JSON.stringify gives them", () => {
    const values = ['a\n"b"\u2028', "", true, false, null, 0, -0, 1.5, -3e-7, 1e300, [], {}, [1, "x", [null]], { a: 1, "b c": { d: [true] } }];
    for (const value of values) expect(toJson(value)).toBe(JSON.stringify(value));
  });

  test("any fast-check JSON value parses back like JSON.stringify's text", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = toJson(value);
        expect(text).not.toContain("\n");
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  test("a number's text is String's, for times in milliseconds, the edges of the fast path, and any double", () => {
    const edges = [1e9, 1e9 - 1, 1e9 + 0.5, 1_000_000_000_123, 1_764_862_420_123, 999_999_999_999_999, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 2 ** 60, -1e12, 0, -0, 5e-324];
    for (const n of edges) expect(numberText(n)).toBe(String(n));
    fc.assert(fc.property(fc.integer({ min: 1e9, max: Number.MAX_SAFE_INTEGER }), (n) => numberText(n) === String(n)));
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => numberText(n) === String(n)));
  });

  test("NaN and infinities give null", () => {
    expect(toJson(NaN)).toBe("null");
    expect(toJson([Infinity, -Infinity])).toBe("[null,null]");
    expect(toJson({ x: NaN })).toBe('{"x":null}');
  });

  test("bigints give their exact digits as a JSON number", () => {
    expect(toJson(2n ** 64n - 1n)).toBe("18446744073709551615");
    expect(toJson(-(2n ** 63n))).toBe("-9223372036854775808");
    expect(toJson({ n: [0n, 10n ** 30n] })).toBe('{"n":[0,1000000000000000000000000000000]}');
  });

  test("undefined, functions and symbols: null in arrays and at the top, omitted in objects", () => {
    expect(toJson(undefined)).toBe("null");
    expect(toJson(() => 1)).toBe("null");
    expect(toJson(Symbol("s"))).toBe("null");
    expect(toJson([undefined, () => 1, Symbol("s"), 1])).toBe("[null,null,null,1]");
    expect(toJson({ a: undefined, b: () => 1, c: Symbol("s"), d: 1 })).toBe('{"d":1}');
    expect(
      toJson(
        new Map([
          ["a", undefined],
          ["b", 2],
        ]),
      ),
    ).toBe('{"b":2}');
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this line tests.
    expect(toJson([1, , 3])).toBe("[1,null,3]");
  });

  test("bytes give {$base64}", () => {
    expect(toJson(Buffer.from("hello"))).toBe('{"$base64":"aGVsbG8="}');
    expect(toJson(new Uint8Array([0, 255, 1]))).toBe('{"$base64":"AP8B"}');
    expect(toJson(new Uint8Array([9, 0, 255, 1, 9]).subarray(1, 4))).toBe('{"$base64":"AP8B"}');
    expect(toJson(new Uint8Array(0))).toBe('{"$base64":""}');
    expect(toJson(new Uint8Array([0, 255, 1]).buffer)).toBe('{"$base64":"AP8B"}');
    expect(toJson(new DataView(new Uint8Array([9, 0, 255, 1]).buffer, 1))).toBe('{"$base64":"AP8B"}');
  });

  test("dates give their ISO string, invalid ones null", () => {
    expect(toJson(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)))).toBe('"2024-01-02T03:04:05.006Z"');
    expect(toJson(new Date(NaN))).toBe("null");
  });

  test("Maps give objects with String(key) keys, Sets give arrays", () => {
    const map = new Map<unknown, unknown>([
      [1, "one"],
      [2n ** 64n, "big"],
      [true, new Set([1, "a"])],
      ['q"\n', new Map([["x", null]])],
    ]);
    expect(toJson(map)).toBe('{"1":"one","18446744073709551616":"big","true":[1,"a"],"q\\"\\n":{"x":null}}');
    expect(toJson(new Set())).toBe("[]");
    expect(toJson(new Map())).toBe("{}");
  });

  test("other typed arrays give arrays of numbers", () => {
    expect(toJson(new Float64Array([1.5, NaN, -Infinity]))).toBe("[1.5,null,null]");
    expect(toJson(new Int16Array([-2, 3]))).toBe("[-2,3]");
    expect(toJson(new Uint8ClampedArray([255]))).toBe("[255]");
    expect(toJson(new BigInt64Array([-(2n ** 63n), 5n]))).toBe("[-9223372036854775808,5]");
    expect(toJson(new BigUint64Array([2n ** 64n - 1n]))).toBe("[18446744073709551615]");
  });

  test("object keys are escaped and insertion order is kept", () => {
    expect(toJson({ z: 1, 'a"\n\\': 2, 1: 3 })).toBe(JSON.stringify({ z: 1, 'a"\n\\': 2, 1: 3 }));
    expect(toJson({ b: 1, a: 2 })).toBe('{"b":1,"a":2}');
  });

  test("a msgpackr round trip gives the exact expected text", () => {
    const value = {
      big: 2n ** 64n - 1n,
      small: -(2n ** 63n),
      safe: 42,
      bytes: Buffer.from([1, 2, 3, 250]),
      when: new Date("2024-05-06T07:08:09.123Z"),
      map: new Map<unknown, unknown>([["k", new Map([[7, [1, 2]]])]]),
      list: [1, undefined, "x"],
      gone: undefined,
      nan: NaN,
      floats: new Float64Array([0.25, 2]),
      text: "line1\nline2",
    };
    const decoded = packr.unpack(packr.pack(value));
    expect(typeof decoded.big).toBe("bigint");
    expect(decoded.bytes).toBeInstanceOf(Uint8Array);
    expect(decoded.when).toBeInstanceOf(Date);
    const text = toJson(decoded);
    expect(toJson(value)).toBe(text);
    expect(text).toBe(
      '{"big":18446744073709551615,"small":-9223372036854775808,"safe":42,"bytes":{"$base64":"AQID+g=="},"when":"2024-05-06T07:08:09.123Z",' +
        '"map":{"k":{"7":[1,2]}},"list":[1,null,"x"],"nan":null,"floats":[0.25,2],"text":"line1\\nline2"}',
    );
    expect(text).not.toContain("\n");
  });

  test("output never contains a raw newline", () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }), (value) => {
        expect(toJson(value)).not.toContain("\n");
      }),
    );
  });
});

describe("toJson: errors and regular expressions (msgpackr decodes both)", () => {
  test("an Error gives its name, message and stack; a RegExp its source", () => {
    const p = new Packr({ useRecords: false, moreTypes: true });
    const e = new RangeError("too far");
    const back = p.unpack(p.pack({ e, re: /a+b/gi })) as { e: Error; re: RegExp };
    expect(JSON.parse(toJson(back))).toEqual({ e: { name: "RangeError", message: "too far", stack: back.e.stack }, re: "/a+b/gi" });
    expect(toJson(e)).toContain('"name":"RangeError","message":"too far","stack":"RangeError: too far');
  });
});
