// A packed run folder on the real cluster: no files per task for results,
// states and logs; readers in TypeScript and Python; a corrupt stream.
import { execa } from "execa";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { command, LocalTransport, loadJobs, SlurmExecutor, type Job } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { parseRecords } from "../../src/protocol/record-stream.js";
import { decodeTaskRecord } from "../../src/protocol/task-stream.js";
import { square } from "../fixtures/tasks.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

const readme = fileURLToPath(new URL("../../README.md", import.meta.url));
const submissionOf = (job: Job<unknown>) => dirname(dirname(job.paths.result));

/** How many entries each folder of a submission holds (logs/elements counted apart from logs/). */
async function fileCounts(dir: string): Promise<Record<string, number>> {
  const count = async (sub: string) => (await readdir(join(dir, sub)).catch(() => [])).length;
  return {
    results: await count("results"),
    state: await count("state"),
    logs: (await count("logs")) - 1, // logs/elements
    elements: await count("logs/elements"),
    streams: await count("streams"),
    claims: await count("claims"),
  };
}

/** A sweep of trivial packed tasks that print a line each to stdout and stderr. */
async function sweep(n: number): Promise<Job<unknown>[]> {
  const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, cpusPerTask: 1, mem: "100M" });
  const tasks = Array.from({ length: n }, (_, i) => command("sh", ["-c", 'echo "out $1"; echo "err $1" >&2', "sh", String(i)]));
  const jobs = await executor.mapArray(tasks, { workers: 2, slots: 2 });
  await Promise.all(jobs.map((j) => j.result()));
  return jobs;
}

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000, resultGraceMs: 2000 });
});

describe("packed run folders keep records in streams", { timeout: 300_000 }, () => {
  test("100 and 1,000 tasks leave the same files for results, states and logs: three streams per worker, none per task", async (ctx) => {
    needCluster(ctx);
    const small = await sweep(100);
    const large = await sweep(1000);
    const [a, b] = await Promise.all([fileCounts(submissionOf(small[0]!)), fileCounts(submissionOf(large[0]!))]);
    const perTaskFree = (c: Record<string, number>) => ({ results: c.results, state: c.state, logs: c.logs, elements: c.elements, streams: c.streams });
    expect(perTaskFree(a)).toEqual({ results: 0, state: 0, logs: 0, elements: 4, streams: 6 });
    expect(perTaskFree(b)).toEqual(perTaskFree(a));
    // Claims are still one per task (claims by blocks are to come).
    expect([a.claims, b.claims]).toEqual([100, 1000]);
    // Each task's own output, through its future, from its worker's streams.
    for (const i of [0, 537, 999]) {
      expect(await large[i]!.stdout()).toBe(`out ${i}\n`);
      expect(await large[i]!.stderr()).toBe(`err ${i}\n`);
    }
  });

  test("the README's Python reader reads a packed folder's results and logs as the futures do", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, cpusPerTask: 1, mem: "100M" });
    const jobs = await executor.mapArray(
      Array.from({ length: 12 }, (_, i) => square.with(i)),
      { workers: 2, slots: 2 },
    );
    await Promise.all(jobs.map((j) => j.result()));
    const text = await readFile(readme, "utf8");
    const reader = /```python\n(import glob[\s\S]*?def read_log[\s\S]*?)```/.exec(text)?.[1];
    expect(reader).toBeDefined();
    const script = `${reader}
import json, sys
results = read_results(sys.argv[1])
print(json.dumps({"squares": [results[i]["value"]["square"] for i in range(12)], "jobIds": [results[i]["jobId"] for i in range(12)], "err5": read_log(sys.argv[1], 5, "err")}))
`;
    // Debian's python3, which python3-msgpack (installed by cluster.sh) serves.
    const { stdout } = await execa("/usr/bin/python3", ["-c", script, submissionOf(jobs[0]!)]);
    const read = JSON.parse(stdout) as { squares: number[]; jobIds: string[]; err5: string };
    expect(read.squares).toEqual(Array.from({ length: 12 }, (_, i) => i * i));
    expect(read.jobIds).toEqual(jobs.map((j) => j.id));
    expect(read.err5).toBe(await jobs[5]!.stderr());
  });

  test("a record with a flipped byte: loadJobs reads every task up to it, and the tasks whose records were lost are not finished, never another task's result", async (ctx) => {
    needCluster(ctx);
    const jobs = await sweep(40);
    const copy = `${submissionOf(jobs[0]!)}-copy`;
    await cp(submissionOf(jobs[0]!), copy, { recursive: true });
    // The busiest worker's record stream: flip one byte in the payload of its 30th record.
    const streams = join(copy, "streams");
    const recs = (await readdir(streams)).filter((n) => n.endsWith(".rec"));
    const sized = await Promise.all(recs.map(async (n) => ({ n, bytes: await readFile(join(streams, n)) })));
    const { n, bytes } = sized.sort((x, y) => y.bytes.length - x.bytes.length)[0]!;
    const parsed = parseRecords(bytes);
    let offset = 8;
    for (const r of parsed.records.slice(0, 29)) offset += 8 + r.length;
    const lost = parsed.records.slice(29).map((p) => decodeTaskRecord(p, n).index);
    bytes[offset + 8 + 3]! ^= 0x40;
    await writeFile(join(streams, n), bytes);

    const reloaded = await loadJobs(copy);
    const outcomes = await Promise.all(
      reloaded.map((j) =>
        j.result().then(
          () => "ok",
          (e: Error) => e.message,
        ),
      ),
    );
    for (const [i, job] of reloaded.entries()) {
      // A task either completed with its own output, or is reported as not finished.
      if (outcomes[i] === "ok") expect(await job.stdout()).toBe(`out ${i}\n`);
      else expect(lost).toContain(i);
    }
    const failed = outcomes.flatMap((o, i) => (o === "ok" ? [] : [i]));
    expect(failed.length).toBeGreaterThan(0);
    expect(reloaded[failed[0]!]!.state).toBe("FAILED");
    const error = await reloaded[failed[0]!]!.result().catch((e: Error & { logTail?: string }) => e);
    expect(String((error as { logTail?: string }).logTail ?? (error as Error).message)).toContain(`${n} is corrupt at byte ${offset}`);
  });

  test("a packed command that leaves a background process holding its output ends when the command exits, with its output", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, cpusPerTask: 1, mem: "100M" });
    // The pipe to the worker stays open while `sleep` lives: the task must not wait for it (it would end TIMEOUT after a minute).
    const [job, next] = await executor.mapArray([command("sh", ["-c", "sleep 600 & echo started"]), command("echo", ["next"])], { workers: 1, slots: 1 });
    expect(await job!.result()).toEqual({ exitCode: 0 });
    expect(job!.state).toBe("COMPLETED");
    expect(await job!.stdout()).toBe("started\n");
    expect(await next!.stdout()).toBe("next\n");
  });
});
