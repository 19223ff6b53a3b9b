import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { packr } from "../../src/protocol/codec.js";
import { writeFileAtomic } from "../../src/protocol/atomic.js";
import { encodeSpec, readSpecRange, readSpecRecord, SpecReader, specParts } from "../../src/protocol/spec-file.js";
import type { TaskRecord } from "../../src/core/tasks.js";

describe("the spec file", () => {
  test("holds every task, and a task is read by index without decoding the others", async () => {
    const records: TaskRecord[] = Array.from({ length: 50 }, (_, i) =>
      i % 2 ? { kind: "command", program: "echo", args: [`arg ${i}`, "it's $HOME"] } : { kind: "function", moduleUrl: "file:///m.js", name: "f", arg: { i, list: [i, "x"] } },
    );
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-spec-"));
    const path = join(dir, "tasks.spec");
    const bytes = encodeSpec(records);
    // Corrupt task 10's body: reading task 11 or 9 must not touch it.
    const start = Number(bytes.readBigUInt64LE(12 + 8 * 10));
    const end = Number(bytes.readBigUInt64LE(12 + 8 * 11));
    bytes.fill(0xc1, start, end); // 0xc1 is never valid msgpack
    await writeFile(path, bytes);
    expect(await readSpecRecord(path, 11)).toEqual(records[11]);
    expect(await readSpecRecord(path, 9)).toEqual(records[9]);
    expect(await readSpecRecord(path, 49)).toEqual(records[49]);
    await expect(readSpecRecord(path, 10)).rejects.toThrow();
    await expect(readSpecRecord(path, 50)).rejects.toThrow(`Task index 50 is out of range: ${path} holds tasks 0 to 49`);
    // A packed element's chunk: one read, clamped to the count.
    expect(await readSpecRange(path, 45, 48)).toEqual(records.slice(45, 48));
    expect(await readSpecRange(path, 48, 60)).toEqual(records.slice(48));
    await expect(readSpecRange(path, 50, 60)).rejects.toThrow(`Task range 50..59 is out of range: ${path} holds tasks 0 to 49`);
  });

  test("is plain msgpack per record, which other languages can read", async () => {
    const bytes = encodeSpec([{ kind: "command", program: "true", args: [] }]);
    const start = Number(bytes.readBigUInt64LE(12));
    expect(packr.unpack(bytes.subarray(start))).toEqual({ kind: "command", program: "true", args: [] });
    expect(bytes.subarray(0, 8).toString("latin1")).toBe("SKSPEC01");
  });

  test("records larger than the first guess of their size, and of mixed sizes, are all written whole", async () => {
    // The encoder starts with 128 bytes a task and grows its buffer: a few large records force that.
    const records: TaskRecord[] = Array.from({ length: 300 }, (_, i) => ({ kind: "command", program: "echo", args: [i % 7 === 0 ? "x".repeat(5_000 + i) : String(i)] }));
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-spec-"));
    const path = join(dir, "tasks.spec");
    await writeFile(path, encodeSpec(records));
    expect(await readSpecRange(path, 0, 300)).toEqual(records);
  });

  test("a reader kept open (a slot's) reads any task, in order or not, across windows of its offsets table", async () => {
    const records: TaskRecord[] = Array.from({ length: 3_000 }, (_, i) => ({ kind: "function", moduleUrl: "file:///m.js", name: "f", arg: i % 500 === 0 ? "y".repeat(3_000) : i }));
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-spec-"));
    const path = join(dir, "tasks.spec");
    await writeFile(path, encodeSpec(records));
    const reader = new SpecReader(path);
    for (const i of [0, 1, 1023, 1024, 1025, 2999, 5, 2047, 2048, 1500, 0]) expect(await reader.read(i)).toEqual(records[i]);
    for (let i = 0; i < 3_000; i += 7) expect(await reader.read(i)).toEqual(records[i]);
    await expect(reader.read(3_000)).rejects.toThrow(`Task index 3000 is out of range: ${path} holds tasks 0 to 2999`);
    await expect(reader.read(-1)).rejects.toThrow("Task index -1 is out of range");
    await reader.close();
    await writeFile(join(dir, "other"), "not a spec file at all");
    await expect(new SpecReader(join(dir, "other")).read(0)).rejects.toThrow("is not a slurmkit spec file (no SKSPEC01 header)");
  });

  test("function records of one shape, packed around their argument, are the same bytes as each record packed whole", () => {
    /** The layout, each record packed whole: what encodeSpec writes, however it makes the bytes. */
    const whole = (records: readonly TaskRecord[]) => {
      const bodies = records.map((r) => packr.pack(r));
      const head = Buffer.alloc(12 + 8 * (records.length + 1));
      head.write("SKSPEC01", 0, "latin1");
      head.writeUInt32LE(records.length, 8);
      let at = head.length;
      for (let i = 0; i <= records.length; i++) {
        head.writeBigUInt64LE(BigInt(at), 12 + 8 * i);
        at += bodies[i]?.length ?? 0;
      }
      return Buffer.concat([head, ...bodies]);
    };
    const fn = (moduleUrl: string, arg: unknown, extra: Record<string, unknown> = {}): TaskRecord =>
      ({ kind: "function", moduleUrl, name: "f", arg, ...extra, source: "file:///src/f.ts" }) as TaskRecord;
    // Runs of one shape, shapes that change (module, checkpoint, key order, no source), commands between, and any argument.
    const record = fc
      .tuple(fc.integer({ min: 0, max: 6 }), fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }))
      .map(([shape, arg]): TaskRecord => {
        switch (shape) {
          case 0:
            return fn("file:///code/a.mjs", arg);
          case 1:
            // The same keys as case 0, another module.
            return fn("file:///code/c.mjs", arg);
          case 2:
            return fn("file:///code/b.mjs", arg, { checkpoint: true });
          case 3:
            return { kind: "function", arg, name: "f", moduleUrl: "file:///code/a.mjs" } as TaskRecord;
          case 4:
            return { kind: "function", moduleUrl: "file:///code/a.mjs", name: "f", arg: [arg, 2 ** 40, -(2 ** 40), 0.5] };
          case 5:
            return { kind: "function", moduleUrl: "file:///code/a.mjs", name: "f" } as unknown as TaskRecord;
          default:
            return { kind: "command", program: "echo", args: [String(shape)] };
        }
      });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), (records) => encodeSpec(records).equals(whole(records))),
      { numRuns: 300 },
    );
  });

  test("written in parts (a reused 1 MiB chunk, a record larger than a chunk, the header last), the file is the same bytes, and every record reads back", async () => {
    const records: TaskRecord[] = Array.from({ length: 30_000 }, (_, i) =>
      i === 7_000
        ? { kind: "function", moduleUrl: "file:///m.js", name: "f", arg: "x".repeat(3 * 2 ** 20) }
        : { kind: "function", moduleUrl: "file:///m.js", name: "f", arg: { i, pad: "y".repeat(i % 300) } },
    );
    const path = join(await mkdtemp(join(tmpdir(), "slurmkit-spec-")), "tasks.spec");
    let parts = 0;
    await writeFileAtomic(
      path,
      (function* () {
        for (const part of specParts(records)) {
          parts++;
          yield part;
        }
      })(),
    );
    expect(parts).toBeGreaterThan(5);
    const bytes = await readFile(path);
    expect(bytes.equals(encodeSpec(records))).toBe(true);
    for (const i of [0, 6_999, 7_000, 7_001, 29_999]) expect(await readSpecRecord(path, i)).toEqual(records[i]);
  });

  test("a file that is not a spec file is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-spec-"));
    const path = join(dir, "x.spec");
    await writeFile(path, "hello world, not a spec");
    await expect(readSpecRecord(path, 0)).rejects.toThrow(`${path} is not a slurmkit spec file`);
    expect((await readFile(path, "utf8")).length).toBeGreaterThan(0);
  });
});
