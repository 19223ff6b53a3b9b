import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { packr } from "../../src/protocol/codec.js";
import { encodeSpec, readSpecRange, readSpecRecord, SpecReader } from "../../src/protocol/spec-file.js";
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

  test("a file that is not a spec file is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-spec-"));
    const path = join(dir, "x.spec");
    await writeFile(path, "hello world, not a spec");
    await expect(readSpecRecord(path, 0)).rejects.toThrow(`${path} is not a slurmkit spec file`);
    expect((await readFile(path, "utf8")).length).toBeGreaterThan(0);
  });
});
