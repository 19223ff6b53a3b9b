// A million futures, in a process of its own (run by bench.ts with
// --expose-gc, so that heap figures are after a collection): mapArray of
// N held function tasks with workers "auto", its time and heap, and a poll.
// Then the folder is made to look as if the workers had run every task, its
// streams written record by record as a worker writes them (a state RUNNING,
// then the result; 1,000,000 real tasks would take an hour here), so that
// bench.ts can time `slurmkit status` and `results` on it. Prints one JSON line.
import { mkdtemp, open, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { SlurmExecutor } from "../../src/index.js";
import { frameRecord, STREAM_MAGIC } from "../../src/protocol/record-stream.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { encodeTaskRecord, withUsage } from "../../src/protocol/task-stream.js";
import { square } from "../fixtures/tasks.js";

const n = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-million-")), time: 5, mem: "100M", sbatch: { hold: true } });
await executor.limits();
const tasks = Array.from({ length: n }, (_, i) => square.with(i));
gc();
const heapBefore = process.memoryUsage().heapUsed;
const t0 = performance.now();
const jobs = await executor.mapArray(tasks, { workers: "auto" });
const mapArrayMs = performance.now() - t0;
const rss = process.memoryUsage().rss;
gc();
const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
const t1 = performance.now();
await executor.watcher.pollNow();
const pollMs = performance.now() - t1;
const arrayId = jobs[0]!.id.split("_")[0]!;
await execa("scancel", [arrayId]);

const folder = new RunFolder(join(jobs[0]!.paths.result, "..", ".."));
const manifest = JSON.parse(await readFile(folder.manifest, "utf8")) as { arrays: { elements: number }[] };
const workers = manifest.arrays[0]!.elements;
const at = Date.now();
for (let w = 0; w < workers; w++) {
  const worker = `${arrayId}_${w}`;
  const file = await open(folder.taskStream(worker, 0), "wx");
  await file.write(STREAM_MAGIC);
  let batch: Buffer[] = [];
  for (let i = w; i < n; i += workers) {
    batch.push(frameRecord(encodeTaskRecord({ index: i, state: { state: "RUNNING", host: "n1", jobId: worker, pid: 4242, at: at + i } })));
    // The slot's result with what the worker measured, in one record, as workers write it (manifest version 4).
    const result = encodeTaskRecord({ index: i, result: { ok: true, value: i * i, host: "n1", jobId: worker, startedAt: at + i, endedAt: at + i + 1 } });
    batch.push(frameRecord(withUsage(result, { cpuMs: (i % 7) * 10, memKb: 40_000 + (i % 1000), memSamples: 2, slot: 0 })!));
    if (batch.length >= 20_000) {
      await file.write(Buffer.concat(batch));
      batch = [];
    }
  }
  await file.write(Buffer.concat(batch));
  await file.close();
}
console.log(JSON.stringify({ n, mapArrayMs, heapMb, rssMb: rss / 2 ** 20, pollMs, folder: folder.dir }));
process.exit(0);
