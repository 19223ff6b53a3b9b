// Many packed tasks really run, in a process of its own (run by bench.ts), so
// that the client's peak memory is this run's alone: mapArray of N trivial
// function tasks with workers "auto", waited for. Prints one JSON line: the
// wall time, the runner's time per task from the first claim to the last
// result, the files in the run folder, and the client's peak RSS and heap.
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { LocalTransport, SlurmExecutor } from "../../src/index.js";
import { parseRecords } from "../../src/protocol/record-stream.js";
import { decodeTaskRecord } from "../../src/protocol/task-stream.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { square } from "../fixtures/tasks.js";

const n = Number(process.argv[2] ?? 100_000);
slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-packed-")), time: 10, mem: "100M" });
await executor.limits();
let heapPeak = 0;
const sample = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 100);
const t0 = Date.now();
const jobs = await executor.mapArray(
  Array.from({ length: n }, (_, i) => square.with(i)),
  { workers: "auto" },
);
const values = await Promise.all(jobs.map((j) => j.result()));
const seconds = (Date.now() - t0) / 1000;
clearInterval(sample);
if (values.some((v, i) => v.square !== i * i)) throw new Error("bench: a packed task returned the wrong value");

// From the first claim (its file's time) to the last result (its record's end).
const dir = dirname(dirname(jobs[0]!.paths.result));
const claims = await readdir(join(dir, "claims"));
const firstClaim = Math.min(...(await Promise.all(claims.map(async (c) => (await stat(join(dir, "claims", c))).mtimeMs))));
let lastResult = 0;
for (const f of (await readdir(join(dir, "streams"))).filter((f) => f.endsWith(".rec"))) {
  const bytes = await readFile(join(dir, "streams", f));
  for (const payload of parseRecords(bytes).records) {
    const r = decodeTaskRecord(payload, f);
    if ("result" in r) lastResult = Math.max(lastResult, r.result.endedAt);
  }
}
const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
console.log(
  JSON.stringify({
    n,
    seconds,
    runnerMsPerTask: (lastResult - firstClaim) / n,
    files,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    peakHeapMb: heapPeak / 2 ** 20,
    folder: dir,
  }),
);
process.exit(0);
