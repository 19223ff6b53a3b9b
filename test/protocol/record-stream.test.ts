import { mkdtemp, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { crc32, frameRecord, parseRecords, readStream, STREAM_MAGIC, StreamWriter } from "../../src/protocol/record-stream.js";

const dir = () => mkdtemp(join(tmpdir(), "slurmkit-stream-"));
const payload = (i: number) => Buffer.from(JSON.stringify({ task: i, value: "x".repeat(i % 17) }));

describe("record streams", () => {
  test("CRC-32 is zlib's (IEEE): the standard check value", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  test("CRC-32 eight bytes a step agrees with the byte-at-a-time definition, at every length and start", () => {
    const reference = (data: Uint8Array) => {
      let c = 0xffffffff;
      for (const byte of data) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) & 0xff));
    for (let start = 0; start < 9; start++) {
      for (let end = start; end <= 300; end += 1 + (end % 5)) expect(crc32(data, start, end)).toBe(reference(data.subarray(start, end)));
    }
  });

  test("records appended and flushed read back in order; a read from an offset returns only what was added since", async () => {
    const path = join(await dir(), "w0.stream");
    const w = await StreamWriter.create(path);
    for (let i = 0; i < 50; i++) w.append(payload(i));
    await w.flush();
    const first = await readStream(path);
    expect(first.records.map(String)).toEqual(Array.from({ length: 50 }, (_, i) => String(payload(i))));
    expect(first.stopped).toBeUndefined();
    expect(first.offset).toBe((await stat(path)).size);
    for (let i = 50; i < 60; i++) w.append(payload(i));
    await w.close();
    const next = await readStream(path, first.offset);
    expect(next.records.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => String(payload(50 + i))));
    expect(await readStream(path, next.offset)).toEqual({ records: [], offset: next.offset });
    expect(await readStream(join(await dir(), "missing.stream"), 0)).toEqual({ records: [], offset: 0 });
  });

  test("nothing is on disk before its flush; the group commit flushes on its own, and a stream is never created twice", async () => {
    const path = join(await dir(), "w1.stream");
    const w = await StreamWriter.create(path, { groupCommitMs: 50 });
    w.append(payload(1));
    w.append(payload(2));
    expect((await readStream(path)).records).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 300));
    expect((await readStream(path)).records.map(String)).toEqual([String(payload(1)), String(payload(2))]);
    await w.close();
    await expect(StreamWriter.create(path)).rejects.toMatchObject({ code: "EEXIST" });
  });

  test("a torn tail, cut at every byte of the last record, reads every record before it and stops there", async () => {
    const path = join(await dir(), "w2.stream");
    const w = await StreamWriter.create(path);
    for (let i = 0; i < 5; i++) w.append(payload(i + 10));
    await w.close();
    const whole = await readFile(path);
    const lastStart = whole.length - frameRecord(payload(14)).length;
    for (let cut = lastStart + 1; cut < whole.length; cut++) {
      await writeFile(path, whole.subarray(0, cut));
      const r = await readStream(path);
      expect(r.records.map(String), `cut at ${cut}`).toEqual([10, 11, 12, 13].map((i) => String(payload(i))));
      expect(r).toMatchObject({ offset: lastStart, stopped: "torn" });
    }
    await truncate(path, 3);
    expect(await readStream(path)).toEqual({ records: [], offset: 0, stopped: "torn" });
  });

  test("a flipped bit anywhere in a record stops the read before that record: no record is ever misread", () => {
    const records = [0, 1, 2, 3].map((i) => payload(i + 20));
    const bytes = Buffer.concat([STREAM_MAGIC, ...records.map(frameRecord)]);
    const starts = [STREAM_MAGIC.length];
    for (const r of records) starts.push(starts.at(-1)! + frameRecord(r).length);
    for (let at = STREAM_MAGIC.length; at < bytes.length; at++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(bytes);
        bad[at]! ^= bit;
        const hit = starts.findIndex((s, i) => at >= s && at < starts[i + 1]!);
        const r = parseRecords(bad);
        // Every record read is one that was written, in its place; reading stops at the damaged one.
        expect(r.records.map(String), `byte ${at}`).toEqual(records.slice(0, hit).map(String));
        expect(r.offset).toBe(starts[hit]);
        expect(r.stopped === "corrupt" || r.stopped === "torn").toBe(true);
      }
    }
    const wrongMagic = Buffer.from(bytes);
    wrongMagic[0] = 0x41;
    expect(parseRecords(wrongMagic)).toEqual({ records: [], offset: 0, stopped: "corrupt" });
  });

  test("zeros where a record should start (a tail a file system shows before its bytes) are a torn tail, never an empty record; no record is empty", () => {
    const whole = Buffer.concat([STREAM_MAGIC, frameRecord(Buffer.from("one")), Buffer.alloc(64)]);
    const read = parseRecords(whole);
    expect(read.records.map(String)).toEqual(["one"]);
    expect(read.stopped).toBe("torn");
    expect(read.offset).toBe(STREAM_MAGIC.length + 8 + 3);
    expect(() => frameRecord(Buffer.alloc(0))).toThrow("A stream record holds at least one byte");
  });
});
