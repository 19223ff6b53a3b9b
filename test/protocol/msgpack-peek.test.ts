import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { packr } from "../../src/protocol/codec.js";
import { MsgpackCursor, NOT_SCALAR, scalarAt } from "../../src/protocol/msgpack-peek.js";
import { decodeTaskRecord, encodeTaskRecord, peekedRecord, peekTaskRecord, withUsage, type PeekedTaskRecord } from "../../src/protocol/task-stream.js";

const values: unknown[] = [
  0,
  1,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 40,
  Number.MAX_SAFE_INTEGER,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 40),
  0.5,
  -1.25,
  1e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2n ** 64n - 1n,
  -(2n ** 63n),
  "",
  "a",
  "x".repeat(31),
  "x".repeat(32),
  "x".repeat(255),
  "x".repeat(256),
  "x".repeat(70_000),
  "héllo ✓",
  true,
  false,
  null,
  undefined,
  [],
  [1, [2, [3, [4]]]],
  Array.from({ length: 20 }, (_, i) => i),
  Array.from({ length: 70_000 }, () => 0),
  {},
  { a: 1, b: { c: [1, "two", { d: null }] } },
  Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  Buffer.from([1, 2, 3]),
  Buffer.alloc(300),
  Buffer.alloc(70_000),
  new Date(1_800_000_000_000),
  new Date(1.5),
  [undefined, { u: undefined }],
];
/** Values msgpackr writes as extensions other than timestamps (a Map is slurmkit's 0x6d): some with their data after the extension, so skip refuses them all. */
const extensions: unknown[] = [new Map([[1, "a"]]), new Set([1, 2]), new Error("boom"), /a+/g, new Float64Array([1.5, 2.5]), new Uint8Array([1]), { nested: [new Set(["host", "n1"])] }];

const decodes = (bytes: Uint8Array): boolean => {
  try {
    decodeTaskRecord(bytes, "/s.rec");
    return true;
  } catch {
    return false;
  }
};
const peeked = (): PeekedTaskRecord => peekedRecord();

describe("reading task records in place", () => {
  test("skip passes over exactly one value of every kind msgpack holds, and numbers read as msgpackr reads them", () => {
    const c = new MsgpackCursor();
    // Per value: whole, skip lands exactly on a second copy; cut short by one byte, skip refuses.
    const skips = values.map((value) => {
      const bytes = packr.pack(value);
      const both = Buffer.concat([bytes, bytes]);
      const whole = c.reset(both, 0, both.length).skip();
      const landed = c.at === bytes.length;
      const cut = c.reset(bytes, 0, bytes.length - 1).skip();
      return { value, whole, landed, cut };
    });
    expect(skips).toHaveLength(values.length);
    expect(skips).toEqual(values.map((value) => ({ value, whole: true, landed: true, cut: false })));
    // Numbers read as msgpackr reads them.
    const numbers = values.filter((v): v is number => typeof v === "number");
    expect(numbers.length).toBeGreaterThan(20);
    expect(
      numbers.map((v) => {
        const bytes = packr.pack(v);
        return Object.is(c.reset(bytes, 0, bytes.length).number(), packr.unpack(bytes));
      }),
    ).toEqual(numbers.map(() => true));
    // Floats written by hand, float32 too (msgpackr writes none by default); a float cut short is NaN.
    const float = (tag: number, n: number) => {
      const b = Buffer.alloc(tag === 0xca ? 5 : 9);
      b[0] = tag;
      if (tag === 0xca) b.writeFloatBE(n, 1);
      else b.writeDoubleBE(n, 1);
      return b;
    };
    const floats = [1.5, -0.25, 3.4028234663852886e38, 1_764_862_420_123.5, -1e-300, 2 ** 53 + 2];
    expect(floats.map((n) => [0xca, 0xcb].map((tag) => c.reset(float(tag, n), 0, tag === 0xca ? 5 : 9).number()))).toEqual(floats.map((n) => [Math.fround(n), n]));
    expect(c.reset(float(0xcb, 1.5), 0, 8).number()).toBeNaN();
    // Extensions whose end only a full decode knows: refused, every one.
    expect(
      extensions.map((value) => {
        const bytes = packr.pack(value);
        return c.reset(bytes, 0, bytes.length).skip();
      }),
    ).toEqual(extensions.map(() => false));
  });

  test("every state and completed result peeks as decodeTaskRecord decodes it, the value's bytes included", () => {
    const out = peeked();
    for (const [i, value] of values.entries()) {
      const result = { ok: true as const, value, host: "n1", jobId: `7_${i}`, startedAt: 1_796_000_000_000 + i, endedAt: 1_796_000_000_500.5 };
      const bytes = encodeTaskRecord({ index: i, result });
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(true);
      const whole = decodeTaskRecord(bytes, "/s.rec");
      expect(out).toMatchObject({ index: whole.index, kind: "ok", host: "n1", jobId: `7_${i}`, at: result.startedAt, endedAt: result.endedAt });
      expect(packr.unpack(bytes.subarray(out.valueStart, out.valueEnd))).toEqual("result" in whole && whole.result.ok ? whole.result.value : Symbol("no"));
    }
    // A value only a full decode can read: the record is left to decodeTaskRecord, which reads it.
    for (const value of extensions) {
      const bytes = encodeTaskRecord({ index: 1, result: { ok: true, value, host: "n1", jobId: "7_0", startedAt: 1, endedAt: 2 } });
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(false);
      expect(decodeTaskRecord(bytes, "/s.rec")).toMatchObject({ index: 1, result: { ok: true, value } });
    }
    for (const state of ["RUNNING", "COMPLETED", "FAILED", "REQUEUED"] as const) {
      const record = { index: 2 ** 31 + 5, state: { state, host: "nödé-1", jobId: "12_3", pid: 4_000_000, at: 1_796_000_000_123 } };
      const bytes = encodeTaskRecord(record);
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(true);
      expect(out).toMatchObject({ index: record.index, kind: "state", state, host: "nödé-1", jobId: "12_3", pid: 4_000_000, at: record.state.at });
    }
  });

  test("usage records as a worker writes them peek as decodeTaskRecord decodes them; one with GPUs, or malformed, is left to it", () => {
    const out = peeked();
    const usages = [
      { cpuMs: 0, memSamples: 0 },
      { cpuMs: 1230, memKb: 81_920, memSamples: 4, slot: 0 },
      { cpuMs: 2 ** 40, memKb: 2.5, memSamples: 70_000, slot: 63 },
      { cpuMs: 10, memSamples: 1, slot: 2 },
      { cpuMs: 0.5, memKb: 0, memSamples: 0 },
    ];
    for (const [i, usage] of usages.entries()) {
      const bytes = encodeTaskRecord({ index: 1000 + i, usage });
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(true);
      const whole = decodeTaskRecord(bytes, "/s.rec");
      expect(whole).toEqual({ index: 1000 + i, usage });
      expect(out).toMatchObject({ index: 1000 + i, kind: "usage", cpuMs: usage.cpuMs, memKb: usage.memKb ?? Number.NaN, memSamples: usage.memSamples, slot: usage.slot ?? -1 });
    }
    const gpu = encodeTaskRecord({ index: 1, usage: { cpuMs: 10, memSamples: 1, slot: 0, gpu: { count: 1, utilPct: 87.5, memMb: 10_032, samples: 3 } } });
    expect(peekTaskRecord(gpu, 0, gpu.length, out)).toBe(false);
    expect(decodeTaskRecord(gpu, "/s.rec")).toMatchObject({ index: 1, usage: { gpu: { utilPct: 87.5, memMb: 10_032 } } });
    for (const usage of [
      { cpuMs: -10, memSamples: 1 },
      { cpuMs: 10 },
      { cpuMs: 10, memSamples: 1.5 },
      { cpuMs: 10, memSamples: 1, slot: -1 },
      { cpuMs: Number.POSITIVE_INFINITY, memSamples: 1 },
      { cpuMs: 10, memKb: Number.POSITIVE_INFINITY, memSamples: 1 },
    ]) {
      const bytes = packr.pack({ index: 0, usage });
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(false);
      expect(decodes(bytes)).toBe(false);
    }
    // A usage beside a result (or state) that is not valid is no usage record: the bad result is never dropped.
    for (const beside of [
      { result: { ok: true, value: false, host: "n1", jobId: "n1", startedAt: 0, endedAt: Number.POSITIVE_INFINITY } },
      { result: { ok: true, value: 1 } },
      { state: { state: "SLEEPING" } },
    ]) {
      const bytes = packr.pack({ index: 0, ...beside, usage: { cpuMs: 0, memSamples: 0 } });
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(false);
      expect(decodes(bytes)).toBe(false);
    }
    // In another key order, or with a key the schema drops, it peeks as it decodes.
    const reordered = packr.pack({ index: 0, usage: { memSamples: 1, extra: [1], slot: 3, cpuMs: 10 } });
    expect(peekTaskRecord(reordered, 0, reordered.length, out)).toBe(true);
    expect(out).toMatchObject({ kind: "usage", cpuMs: 10, memKb: Number.NaN, memSamples: 1, slot: 3 });
    expect(decodeTaskRecord(reordered, "/s.rec")).toEqual({ index: 0, usage: { cpuMs: 10, memSamples: 1, slot: 3 } });
  });

  test("a slot's result joined with its usage by the worker peeks as one record: the value's bytes, and the usage", () => {
    const out = peeked();
    const usage = { cpuMs: 2070, memKb: 139_012, memSamples: 4, slot: 1 };
    for (const value of [7, { loss: 0.25 }, "done", null]) {
      const result = { ok: true as const, value, host: "n1", jobId: "7_0", startedAt: 1_796_000_000_000, endedAt: 1_796_000_000_500 };
      const joined = withUsage(encodeTaskRecord({ index: 3, result }), usage)!;
      expect(decodeTaskRecord(joined, "/s.rec")).toEqual({ index: 3, result, usage });
      expect(peekTaskRecord(joined, 0, joined.length, out)).toBe(true);
      expect(out).toMatchObject({ index: 3, kind: "ok", hasUsage: true, ...usage, at: result.startedAt, endedAt: result.endedAt });
      expect(packr.unpack(joined.subarray(out.valueStart, out.valueEnd))).toEqual(value);
      // The same record without usage says so.
      const alone = encodeTaskRecord({ index: 3, result });
      expect(peekTaskRecord(alone, 0, alone.length, out)).toBe(true);
      expect(out.hasUsage).toBe(false);
    }
    // A failed result with its usage is left to the full decoder, which keeps both.
    const failed = encodeTaskRecord({
      index: 4,
      result: { ok: false, state: "TIMEOUT", error: { name: "E", message: "late", stack: "E: late" }, host: "n1", jobId: "7_0", startedAt: 1, endedAt: 2 },
      usage,
    });
    expect(peekTaskRecord(failed, 0, failed.length, out)).toBe(false);
    expect(decodeTaskRecord(failed, "/s.rec")).toMatchObject({ index: 4, usage });
    // A state with a usage is no record slurmkit writes: not peeked.
    const odd = packr.pack({ index: 0, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: 1 }, usage });
    expect(peekTaskRecord(odd, 0, odd.length, out)).toBe(false);
    // A payload of another shape is not joined: the usage then goes in a record of its own.
    expect(withUsage(packr.pack([1, 2]), usage)).toBeUndefined();
  });

  test("a record at an offset in a larger buffer, in another key order, or with keys the schema does not know, peeks the same", () => {
    const out = peeked();
    const bytes = packr.pack({ result: { extra: [1, 2], endedAt: 9, jobId: "1_0", value: { x: 1 }, host: "h", startedAt: 8, ok: true }, index: 3 });
    const framed = Buffer.concat([Buffer.from([0xc1, 0xc1]), bytes, Buffer.from([0xc1])]);
    expect(peekTaskRecord(framed, 2, 2 + bytes.length, out)).toBe(true);
    expect(out).toMatchObject({ index: 3, kind: "ok", host: "h", jobId: "1_0", at: 8, endedAt: 9 });
    expect(packr.unpack(framed.subarray(out.valueStart, out.valueEnd))).toEqual({ x: 1 });
  });

  test("what it does not accept is left to decodeTaskRecord: failed results, missing or mistyped fields, foreign shapes, trailing bytes", () => {
    const out = peeked();
    const meta = { host: "n1", jobId: "7_0", startedAt: 1, endedAt: 2 };
    const refused: unknown[] = [
      { index: 0, result: { ok: false, error: { name: "E", message: "m", stack: "s" }, ...meta } },
      { index: 0, result: { ok: true, host: "n1", jobId: "7_0", startedAt: 1 } },
      { index: 0, result: { ok: true, value: 1, ...meta, host: 5 } },
      { index: -1, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: 1 } },
      { index: 0.5, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: 1 } },
      { index: 0, state: { state: "SLEEPING", host: "n1", jobId: "7_0", pid: 1, at: 1 } },
      { index: 0, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1.5, at: 1 } },
      { index: 0, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: "1" } },
      { index: 0, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: 1 }, more: 1 },
      { index: 0, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: Number.POSITIVE_INFINITY } },
      { index: 0, result: { ok: true, value: 1, ...meta, endedAt: Number.NEGATIVE_INFINITY } },
      { index: 1e300, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 1, at: 1 } },
      { index: 0, state: { state: "RUNNING", host: "n1", jobId: "7_0", pid: 2 ** 60, at: 1 } },
      // A map whose key is an array: msgpackr cannot read it into an object.
      { index: 0, result: { ok: true, value: new Map<unknown, unknown>([[[1, 2], "x"]]), ...meta } },
      { index: 0 },
      [0, 1],
      "index",
    ];
    for (const record of refused) {
      const bytes = packr.pack(record);
      expect(peekTaskRecord(bytes, 0, bytes.length, out)).toBe(false);
    }
    // Nested deeper than the cursor follows: left to the full decoder, which reads it.
    let deep: unknown = "bottom";
    for (let i = 0; i < 100; i++) deep = [deep];
    const nested = encodeTaskRecord({ index: 4, result: { ok: true, value: deep, ...meta } });
    expect(peekTaskRecord(nested, 0, nested.length, out)).toBe(false);
    expect(decodeTaskRecord(nested, "/s.rec")).toMatchObject({ index: 4, result: { value: deep } });
    const good = encodeTaskRecord({ index: 0, result: { ok: true, value: 1, ...meta } });
    expect(peekTaskRecord(Buffer.concat([good, Buffer.from([0])]), 0, good.length + 1, out)).toBe(false);
    for (let cut = 0; cut < good.length; cut++) expect(peekTaskRecord(good, 0, cut, out)).toBe(false);
  });

  test("any state or completed result, whole or with one byte changed: what peek accepts, decodeTaskRecord decodes to the same fields", () => {
    const out = peeked();
    const text = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("n1", "gpu-node-17", "12345_678", "nödé"));
    const number = fc.oneof(fc.integer(), fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.double(), fc.constantFrom(0, 127, 128, 2 ** 32, 1_796_000_000_123, -1, 2 ** 53));
    const state = fc.record({ state: fc.constantFrom("RUNNING", "COMPLETED", "FAILED", "REQUEUED"), host: text, jobId: text, pid: number, at: number });
    const ok = fc.record({ ok: fc.constant(true), value: fc.jsonValue(), host: text, jobId: text, startedAt: number, endedAt: number });
    const usage = fc.record({ cpuMs: number, memKb: number, memSamples: number, slot: number }, { requiredKeys: ["cpuMs", "memSamples"] });
    const record = fc.oneof(
      fc.record({ index: fc.oneof(fc.nat(), number), state }),
      fc.record({ index: fc.oneof(fc.nat(), number), result: ok }),
      fc.record({ index: fc.oneof(fc.nat(), number), usage }),
      fc.record({ index: fc.oneof(fc.nat(), number), result: ok, usage }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(record, fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }))), (r, change) => {
        const bytes = Buffer.from(packr.pack(r));
        if (change) {
          const at = change[0] % bytes.length;
          bytes[at] = bytes[at]! ^ change[1];
        }
        const peekedIt = peekTaskRecord(bytes, 0, bytes.length, out);
        // Unchanged, a record that decodes is peeked at too (its value is plain JSON: no extension for the full decoder).
        if (!change) expect(peekedIt).toBe(decodes(bytes));
        if (!peekedIt) return;
        accepted++;
        const whole = decodeTaskRecord(bytes, "/s.rec");
        expect(out.index).toBe(whole.index);
        if ("usage" in whole && whole.usage) {
          const u = whole.usage;
          expect(out).toMatchObject({ cpuMs: u.cpuMs, memKb: u.memKb ?? Number.NaN, memSamples: u.memSamples, slot: u.slot ?? -1 });
          expect(out.hasUsage).toBe("result" in whole);
        }
        if ("state" in whole) expect(out).toMatchObject({ kind: "state", ...whole.state });
        else if (!("result" in whole)) expect(out.kind).toBe("usage");
        else {
          expect(whole.result.ok).toBe(true);
          const { host, jobId, startedAt, endedAt } = whole.result;
          expect(out).toMatchObject({ kind: "ok", host, jobId, at: startedAt, endedAt });
          expect(packr.unpack(bytes.subarray(out.valueStart, out.valueEnd))).toEqual(whole.result.ok ? whole.result.value : undefined);
        }
      }),
      { numRuns: 3000 },
    );
    // Most records are accepted (not all are valid: a fractional pid, a NaN time).
    expect(accepted).toBeGreaterThan(500);
  });

  test("scalarAt reads numbers, booleans and nil as msgpackr does, and leaves every other value (and a bigint) to it", () => {
    const read = [...values, true, false, null, 2n ** 64n - 1n, -(2n ** 63n)].map((value) => {
      const bytes = Buffer.concat([Buffer.from([0xc1]), packr.pack(value), Buffer.from([0xc1])]);
      const got = scalarAt(bytes, 1, bytes.length - 1);
      const decoded = packr.unpack(bytes.subarray(1, bytes.length - 1));
      return { value, scalar: got !== NOT_SCALAR, same: got === NOT_SCALAR || Object.is(got, decoded) };
    });
    expect(read.every((r) => r.same)).toBe(true);
    // Every number (NaN aside: msgpackr reads it), boolean and null is read here; strings, objects, arrays and bigints are not.
    expect(read.filter((r) => r.scalar).map((r) => r.value)).toEqual([...values, true, false, null].filter((v) => v === null || typeof v === "boolean" || (typeof v === "number" && !Number.isNaN(v))));
    // A value that does not fill the range, or is cut short, is not a scalar.
    const two = packr.pack(1234);
    expect(scalarAt(Buffer.concat([two, two]), 0, two.length * 2)).toBe(NOT_SCALAR);
    expect(scalarAt(two, 0, two.length - 1)).toBe(NOT_SCALAR);
  });
});
