import { appendFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { LocalTransport, RunFolderError } from "../../src/index.js";
import { TaskRecords } from "../../src/engine/task-records.js";
import { packr } from "../../src/protocol/codec.js";
import { frameRecord, StreamWriter } from "../../src/protocol/record-stream.js";
import type { ResultFile, StateFile } from "../../src/protocol/records.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { decodeLogChunk, decodeTaskRecord, encodeLogChunk, encodeTaskRecord, parseTaskStreamName, taskStreamName, withUsage } from "../../src/protocol/task-stream.js";
import { readTaskLog } from "../../src/engine/task-logs.js";
import { WorkerRecords } from "../../runner/task-records.js";

const state = (s: StateFile["state"], at: number, jobId = "7_0"): StateFile => ({ state: s, host: "n1", jobId, pid: 42, at });
const result = (value: unknown, jobId = "7_0"): ResultFile => ({ ok: true, value, host: "n1", jobId, startedAt: 1, endedAt: 2 });

async function folder(): Promise<RunFolder> {
  const f = new RunFolder(await mkdtemp(join(tmpdir(), "slurmkit-records-")));
  await mkdir(f.streamsDir);
  return f;
}

describe("task records in worker streams", () => {
  test("a record round-trips; a foreign one is a RunFolderError naming the stream", () => {
    const r = { index: 3, result: { ...result({ big: 2n ** 64n - 1n, x: 0.5 }) } };
    expect(decodeTaskRecord(encodeTaskRecord(r), "/s.rec")).toEqual(r);
    expect(decodeTaskRecord(encodeTaskRecord({ index: 0, state: state("RUNNING", 5) }), "/s.rec")).toEqual({ index: 0, state: state("RUNNING", 5) });
    const foreign = () => decodeTaskRecord(packr.pack({ index: -1, kind: "x" }), "/runs/a/streams/7_0.0.rec");
    expect(foreign).toThrow(RunFolderError);
    expect(foreign).toThrow(/^\/runs\/a\/streams\/7_0\.0\.rec holds a record that is not a task's state, result or usage/);
    const usage = { index: 9, usage: { cpuMs: 1230, memKb: 81_920, memSamples: 4, slot: 1 } };
    expect(decodeTaskRecord(encodeTaskRecord(usage), "/s.rec")).toEqual(usage);
    expect(() => decodeTaskRecord(Buffer.from([0x82, 0xa1]), "/s.rec")).toThrow(/is not msgpack/);
  });

  test("stream names carry the worker and its attempt", () => {
    expect(taskStreamName("123_4", 0)).toBe("123_4.0.rec");
    expect(parseTaskStreamName("123_4.12.rec")).toEqual({ worker: "123_4", attempt: 12, kind: "rec" });
    expect(parseTaskStreamName("123_4.0.err")).toEqual({ worker: "123_4", attempt: 0, kind: "err" });
    expect(taskStreamName("123_4", 1, "out")).toBe("123_4.1.out");
    expect(parseTaskStreamName("local-1.0.rec")).toBeUndefined();
    expect(parseTaskStreamName("123_4.0.rec.tmp")).toBeUndefined();
  });

  test("the client reads states and results by offset: the latest state, the first result", async () => {
    const f = await folder();
    const w = await StreamWriter.create(f.taskStream("7_0", 0));
    const records = new TaskRecords(new LocalTransport(), f);
    expect(await records.refresh()).toBe(false);
    w.append(encodeTaskRecord({ index: 0, state: state("RUNNING", 10) }));
    w.append(encodeTaskRecord({ index: 1, state: state("RUNNING", 11) }));
    await w.flush();
    expect(await records.refresh()).toBe(true);
    expect(records.state(0)?.state).toBe("RUNNING");
    expect(records.result(0)).toBeUndefined();
    w.append(encodeTaskRecord({ index: 0, result: result(1) }));
    w.append(encodeTaskRecord({ index: 0, state: state("COMPLETED", 12) }));
    w.append(encodeTaskRecord({ index: 0, result: result(99) }));
    await w.close();
    await records.refresh();
    expect(records.result(0)?.ok && records.result(0)).toMatchObject({ value: 1 });
    expect(records.state(0)?.state).toBe("COMPLETED");
    expect(records.state(1)?.state).toBe("RUNNING");
    expect([...records.workers]).toEqual(["7_0"]);
    expect(records.problems).toEqual([]);
  });

  test("usage records: read after the result they follow, the first one counts, GPUs through the full decoder; none before they arrive", async () => {
    const f = await folder();
    const w = await StreamWriter.create(f.taskStream("7_0", 0));
    const records = new TaskRecords(new LocalTransport(), f);
    w.append(encodeTaskRecord({ index: 0, result: result(1) }));
    await w.flush();
    await records.refresh();
    expect(records.hasUsage(0)).toBe(false);
    expect(records.usage(0)).toBeUndefined();
    expect(records.usageCpuMs(0)).toBeNaN();
    const gpu = { count: 2, utilPct: 85.5, memMb: 16_474, samples: 3 };
    w.append(encodeTaskRecord({ index: 0, usage: { cpuMs: 2070, memKb: 139_012, memSamples: 4, slot: 1 } }));
    w.append(encodeTaskRecord({ index: 0, usage: { cpuMs: 1, memSamples: 0 } }));
    w.append(encodeTaskRecord({ index: 1, result: result(2) }));
    w.append(encodeTaskRecord({ index: 1, usage: { cpuMs: 10, memSamples: 0, slot: 0, gpu } }));
    // As a worker writes it: the slot's result with its usage, in one record.
    w.append(withUsage(encodeTaskRecord({ index: 2, result: result(3) }), { cpuMs: 30, memKb: 70_000, memSamples: 2, slot: 0 })!);
    await w.close();
    await records.refresh();
    expect(records.usage(0)).toEqual({ cpuMs: 2070, memKb: 139_012, memSamples: 4, slot: 1 });
    expect([records.usageCpuMs(0), records.usageMemKb(0), records.usageSamples(0), records.usageSlot(0)]).toEqual([2070, 139_012, 4, 1]);
    expect(records.usage(1)).toEqual({ cpuMs: 10, memSamples: 0, slot: 0, gpu });
    expect(records.usageMemKb(1)).toBeNaN();
    expect(records.usageHasGpu(1)).toBe(true);
    expect(records.usage(2)).toEqual({ cpuMs: 30, memKb: 70_000, memSamples: 2, slot: 0 });
    expect(records.resultValue(2)).toBe(3);
    // A usage record is not a task's state or result: it changes neither what was recorded nor how the task ended.
    expect(records.recorded).toBe(3);
    expect(records.resultOk(1)).toBe(true);
    expect(records.problems).toEqual([]);
  });

  test("results are decoded when asked: a plain value, one only msgpackr can read, a failed task's error; each with its summary, and states rebuilt whole", async () => {
    const f = await folder();
    const w = await StreamWriter.create(f.taskStream("7_0", 0));
    const failed: ResultFile = { ok: false, state: "TIMEOUT", error: { name: "E", message: "late", stack: "E: late" }, host: "n2", jobId: "7_0", startedAt: 3, endedAt: 4 };
    w.append(encodeTaskRecord({ index: 0, result: result({ loss: 0.25, tags: ["a"] }) }));
    w.append(encodeTaskRecord({ index: 1, result: result(new Set([1, 2])) }));
    w.append(encodeTaskRecord({ index: 2, result: failed }));
    w.append(encodeTaskRecord({ index: 5000, state: state("REQUEUED", 9, "7_3") }));
    await w.close();
    const records = new TaskRecords(new LocalTransport(), f);
    await records.refresh();
    expect(records.result(0)).toEqual(result({ loss: 0.25, tags: ["a"] }));
    expect(records.result(1)).toEqual(result(new Set([1, 2])));
    expect(records.result(2)).toEqual(failed);
    expect([0, 1, 2, 3, 5000].map((i) => records.hasResult(i))).toEqual([true, true, true, false, false]);
    expect(records.resultSummary(2)).toEqual({ ok: false, host: "n2", jobId: "7_0", startedAt: 3, endedAt: 4 });
    expect(records.resultSummary(1)).toEqual({ ok: true, host: "n1", jobId: "7_0", startedAt: 1, endedAt: 2 });
    expect(records.state(5000)).toEqual(state("REQUEUED", 9, "7_3"));
    expect(records.state(4999)).toBeUndefined();
    expect(records.recorded).toBe(4);
    expect([...records.changedSince(0).tasks]).toEqual([0, 1, 2, 5000]);
    // The value alone, as a completed future reads it: none for a failed task or one without a result.
    expect([0, 1, 2, 3].map((i) => records.resultValue(i))).toEqual([{ loss: 0.25, tags: ["a"] }, new Set([1, 2]), undefined, undefined]);
  });

  test("results outlive the reads they came in: three streams of several windows each, values of every size across blocks, each task's own value", async () => {
    const f = await folder();
    const n = 9000;
    // Values from a byte to 1.5 MiB (larger than a window and a block), strings whose bytes tell their task.
    const taskValue = (i: number) => (i % 1000 === 999 ? `${i}:`.padEnd(1.5 * 2 ** 20, "x") : i % 3 === 0 ? i : `${i}:`.padEnd(20 + (i % 400), String.fromCharCode(97 + (i % 26))));
    const writers = await Promise.all([0, 1, 2].map((w) => StreamWriter.create(f.taskStream(`8_${w}`, 0))));
    for (let i = 0; i < n; i++) {
      const w = writers[i % 3]!;
      w.append(encodeTaskRecord({ index: i, state: state("RUNNING", i, `8_${i % 3}`) }));
      w.append(encodeTaskRecord({ index: i, result: result(taskValue(i), `8_${i % 3}`) }));
    }
    await Promise.all(writers.map((w) => w.close()));
    const records = new TaskRecords(new LocalTransport(), f);
    await records.refresh();
    expect(records.recorded).toBe(n);
    const wrong = Array.from({ length: n }, (_, i) => i).filter((i) => records.resultValue(i) !== taskValue(i) || records.resultJobId(i) !== `8_${i % 3}`);
    expect(wrong).toEqual([]);
    expect(records.result(1999)).toEqual(result(taskValue(1999), "8_1"));
  });

  test("room reserved for a submission's tasks up front changes nothing read; a record whose value is not msgpack is reported, and gives no value", async () => {
    const f = await folder();
    const w = await StreamWriter.create(f.taskStream("7_0", 0));
    w.append(encodeTaskRecord({ index: 3, result: result(9) }));
    // A record whose value was damaged before its checksum was taken: a string header whose length runs past the record.
    const bad = encodeTaskRecord({ index: 4, result: result(7) });
    bad[bad.indexOf(Buffer.from("value")) + 5] = 0xd9;
    w.append(bad);
    await w.close();
    const records = new TaskRecords(new LocalTransport(), f);
    records.reserve(3000);
    await records.refresh();
    expect(records.resultValue(3)).toBe(9);
    expect(records.state(2999)).toBeUndefined();
    expect(records.hasResult(2999)).toBe(false);
    expect(records.recorded).toBe(1);
    expect(records.hasResult(4)).toBe(false);
    expect(records.resultValue(4)).toBeUndefined();
    expect(records.problems.map((p) => p.message)).toEqual([expect.stringMatching(/7_0\.0\.rec holds a record that is not msgpack/)]);
  });

  test("a record of a task beyond any submission is reported, and the records after it are still read", async () => {
    const f = await folder();
    const w = await StreamWriter.create(f.taskStream("7_0", 0));
    w.append(encodeTaskRecord({ index: 2 ** 40, result: result("far") }));
    w.append(encodeTaskRecord({ index: 1, result: result("one") }));
    await w.close();
    const records = new TaskRecords(new LocalTransport(), f);
    await records.refresh();
    expect(records.result(1)).toEqual(result("one"));
    expect(records.hasResult(2 ** 40)).toBe(false);
    expect(records.problems.map((p) => p.message)).toEqual([expect.stringMatching(/task 1099511627776 is beyond any submission/)]);
    // The stream moved on: nothing is read twice.
    expect(await records.refresh()).toBe(false);
    expect([...records.changedSince(0).tasks]).toEqual([1]);
  });

  test("a torn tail is read once it is whole; a flipped byte stops the stream there, and the task whose record was lost has no result (never another task's)", async () => {
    const f = await folder();
    const path = f.taskStream("7_1", 0);
    const w = await StreamWriter.create(path);
    w.append(encodeTaskRecord({ index: 0, result: result("zero") }));
    await w.close();
    const one = frameRecord(encodeTaskRecord({ index: 1, result: result("one") }));
    const two = frameRecord(encodeTaskRecord({ index: 2, result: result("two") }));
    const records = new TaskRecords(new LocalTransport(), f);
    // Half of task 1's record: torn, not corrupt.
    await appendFile(path, one.subarray(0, 11));
    await records.refresh();
    expect(records.result(0)).toMatchObject({ value: "zero" });
    expect(records.result(1)).toBeUndefined();
    expect(records.problems).toEqual([]);
    await appendFile(path, one.subarray(11));
    await records.refresh();
    expect(records.result(1)).toMatchObject({ value: "one" });

    // Another stream: task 3's record with one byte of its payload flipped, then task 2's, whole.
    const other = f.taskStream("7_2", 0);
    const bad = frameRecord(encodeTaskRecord({ index: 3, result: result("three") }));
    bad[bad.length - 2]! ^= 0x01;
    const w2 = await StreamWriter.create(other);
    await w2.close();
    await appendFile(other, Buffer.concat([bad, two]));
    await records.refresh();
    expect(records.result(3)).toBeUndefined();
    expect(records.result(2)).toBeUndefined();
    expect(records.problems).toEqual([{ stream: "7_2.0.rec", message: `${f.streamsDir}/7_2.0.rec is corrupt at byte 8: nothing after it is read` }]);
    // The first stream goes on being read.
    const more = await readFile(path);
    expect(more.length).toBeGreaterThan(0);
    await records.refresh();
    expect(records.problems).toHaveLength(1);
  });

  test("a worker attempt opens a new stream, and knows what its earlier attempts recorded", async () => {
    const f = await folder();
    const first = await WorkerRecords.open(f, "9_3");
    first.appendResult(4, result("four", "9_3"));
    first.appendMessage({ record: encodeTaskRecord({ index: 5, state: state("REQUEUED", 3, "9_3") }).toString("base64"), index: 5, kind: "REQUEUED" });
    await first.close();
    // Another worker's stream is not this worker's.
    const stranger = await WorkerRecords.open(f, "9_30");
    stranger.appendResult(6, result("six", "9_30"));
    await stranger.close();
    const second = await WorkerRecords.open(f, "9_3");
    expect(second.path).toBe(f.taskStream("9_3", 1));
    expect(second.hasResult(4)).toBe(true);
    expect(second.lastState(5)).toBe("REQUEUED");
    expect(second.hasResult(6)).toBe(false);
    await second.close();
    // An attempt number already taken (a stream left by a worker that died before it wrote) is skipped.
    await writeFile(f.taskStream("9_3", 2), "");
    const third = await WorkerRecords.open(f, "9_3");
    expect(third.path).toBe(f.taskStream("9_3", 3));
    await third.close();
  });

  test("a task's log is its chunks from its worker's log stream, in order, whatever the other tasks wrote between them", async () => {
    const f = await folder();
    const transport = new LocalTransport();
    const worker = await WorkerRecords.open(f, "8_0");
    const chunk = (index: number, text: string) => ({ log: "out" as const, index, data: Buffer.from(text).toString("base64") });
    worker.appendLog(chunk(0, "zero: line 1\n"));
    worker.appendLog(chunk(1, "one: line 1\n"));
    worker.appendLog(chunk(0, "zero: li"));
    await worker.flush();
    expect(String(await readTaskLog(transport, f, 0, "out", "8_0"))).toBe("zero: line 1\nzero: li");
    worker.appendLog(chunk(0, "ne 2\n"));
    worker.appendLog({ log: "err", index: 1, data: Buffer.from("one: oops\n").toString("base64") });
    await worker.close();
    expect(String(await readTaskLog(transport, f, 0, "out", "8_0"))).toBe("zero: line 1\nzero: line 2\n");
    expect(String(await readTaskLog(transport, f, 1, "out", "8_0"))).toBe("one: line 1\n");
    expect(String(await readTaskLog(transport, f, 1, "err"))).toBe("one: oops\n");
    // Another worker's streams are not read for a task whose worker is known.
    const other = await WorkerRecords.open(f, "8_1");
    other.appendLog(chunk(0, "not task 0's\n"));
    await other.close();
    expect(String(await readTaskLog(transport, f, 0, "out", "8_0"))).toBe("zero: line 1\nzero: line 2\n");
    expect(String(await readTaskLog(transport, f, 2, "out", "8_0"))).toBe("");
    expect(decodeLogChunk(encodeLogChunk(7, Buffer.from("x")), "/s")).toEqual({ index: 7, data: Buffer.from("x") });
    expect(() => decodeLogChunk(Buffer.from([1, 2]), "/runs/a/streams/8_0.0.out")).toThrow("/runs/a/streams/8_0.0.out holds a log chunk of 2 bytes, too short for a task index");
  });
});
