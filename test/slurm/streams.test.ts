// A packed run folder on the real cluster: no files per task for results,
// states and logs; readers in TypeScript and Python; a corrupt stream.
import { execa } from "execa";
import { cp, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { command, JobEndedWithoutResultError, LocalTransport, loadJobs, SlurmExecutor, type Job } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { parseRecords } from "../../src/protocol/record-stream.js";
import { decodeTaskRecord } from "../../src/protocol/task-stream.js";
import { square } from "../fixtures/tasks.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { decodeRelease, decodeRound } from "../../src/protocol/records.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { TaskRecords } from "../../src/engine/task-records.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { FaultyTransport } from "../helpers/faults.js";

const readme = fileURLToPath(new URL("../../README.md", import.meta.url));
const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const cliBin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));
const submissionOf = (job: Job<unknown>) => dirname(dirname(job.paths.result));

/** How many entries each folder of a submission holds (logs/elements counted apart from logs/), and all its files. */
async function fileCounts(dir: string): Promise<Record<string, number>> {
  const count = async (sub: string) => (await readdir(join(dir, sub)).catch(() => [])).length;
  const all = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
  return {
    results: await count("results"),
    state: await count("state"),
    logs: (await count("logs")) - 1, // logs/elements
    elements: await count("logs/elements"),
    streams: await count("streams"),
    claims: await count("claims"),
    releases: await count("releases"),
    all,
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
  test("100 and 5,000 tasks leave the same number of files, ± a constant: three streams per worker, claims by blocks, nothing per task", async (ctx) => {
    needCluster(ctx);
    const small = await sweep(100);
    const large = await sweep(5000);
    const [a, b] = await Promise.all([fileCounts(submissionOf(small[0]!)), fileCounts(submissionOf(large[0]!))]);
    console.log(`files in a packed run folder (2 workers of 2 slots): 100 tasks ${JSON.stringify(a)}; 5,000 tasks ${JSON.stringify(b)}`);
    const perTaskFree = (c: Record<string, number>) => ({ results: c.results, state: c.state, logs: c.logs, elements: c.elements, streams: c.streams });
    expect(perTaskFree(a)).toEqual({ results: 0, state: 0, logs: 0, elements: 4, streams: 6 });
    expect(perTaskFree(b)).toEqual(perTaskFree(a));
    // Claims: one per block (10 blocks of 100 tasks for 2 workers, 12 of 5,000), and one per part an idle worker took at the end.
    for (const c of [a, b]) expect(c.claims).toBeLessThanOrEqual(12 + (c.releases ?? 0));
    // Everything: at most about 10 files per worker, plus a constant (scripts, manifest, spec, request), whatever the count.
    expect(Math.abs((b.all ?? 0) - (a.all ?? 0))).toBeLessThanOrEqual(12);
    expect(b.all).toBeLessThanOrEqual(2 * 10 + 20);
    // Each task's own output, through its future, from its worker's streams.
    for (const i of [0, 537, 4999]) {
      expect(await large[i]!.stdout()).toBe(`out ${i}\n`);
      expect(await large[i]!.stderr()).toBe(`err ${i}\n`);
    }
  });

  test("a worker killed with SIGKILL holding a block: only its running task fails; the tasks it never started run on the next workers, once", async (ctx) => {
    needCluster(ctx);
    const marks = await mkdtemp(join(tmpdir(), "slurmkit-marks-"));
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, cpusPerTask: 1, mem: "100M" });
    // Block 0 of 8 tasks for one worker is tasks 0 to 3.
    const tasks = Array.from({ length: 8 }, (_, i) => command("sh", ["-c", 'echo ran >> "$1"; sleep 3', "sh", join(marks, String(i))]));
    const jobs = await executor.mapArray(tasks, { workers: 1, slots: 1 });
    const victim = await waitFor("a task to run", async () => jobs.find((j) => j.state === "RUNNING"));
    // The worker's runner process, as a crash or the kernel would (the test cluster's nodes run on this machine): it hands nothing back itself.
    const dir = submissionOf(jobs[0]!);
    const { stdout } = await execa("pgrep", ["-f", "--", `${dir} --worker`]);
    const pids = stdout.split("\n").filter(Boolean);
    expect(pids.length).toBe(1);
    process.kill(Number(pids[0]), "SIGKILL");
    const states = await Promise.all(jobs.map((j) => j.wait()));
    expect(states.filter((s, i) => s !== "COMPLETED" && jobs[i] !== victim)).toEqual([]);
    expect(states[victim.taskIndex]).not.toBe("COMPLETED");
    // The client handed back the dead worker's unstarted tasks, and more workers ran them.
    const release = decodeRelease(await readFile(join(dir, "releases", "b0.end")), "b0.end");
    expect(release.by).toBe("client");
    expect(release.tasks).not.toContain(victim.taskIndex);
    expect(release.tasks.length).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")).arrays.length).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 8; i++) expect((await readFile(join(marks, String(i)), "utf8")).trim().split("\n")).toHaveLength(1);
  });

  test("a worker killed (SIGKILL) right after it appended a result, before its flush: no result the client saw is lost, and that task is reported, never dropped", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, cpusPerTask: 1, mem: "100M" });
    const tasks = Array.from({ length: 8 }, (_, i) => command("sh", ["-c", 'sleep 1; echo "out $1"', "sh", String(i)]));
    // The fault point in the worker's stream (runner/task-records.ts): the job inherits this client's environment.
    process.env.SLURMKIT_FAULT_KILL_AFTER_RESULT = "2";
    let jobs: Job<unknown>[];
    try {
      jobs = await executor.mapArray(tasks, { workers: 1, slots: 1 });
    } finally {
      delete process.env.SLURMKIT_FAULT_KILL_AFTER_RESULT;
    }
    // What the client saw before the kill: tasks 0 and 1 ran before task 2 in the worker's only slot.
    const seen = await Promise.all([jobs[0]!.result(), jobs[1]!.result()]);
    const states = await Promise.all(jobs.map((j) => j.wait()));
    // Task 2's result was never flushed: it is reported as ended with its worker (it had started), and every other task completes.
    expect(states).toEqual(["COMPLETED", "COMPLETED", "FAILED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
    const error = await jobs[2]!.result().catch((e: Error) => e);
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    // A fresh reader finds the results the client saw, unchanged.
    const reloaded = await loadJobs(submissionOf(jobs[0]!));
    expect(await Promise.all([reloaded[0]!.result(), reloaded[1]!.result()])).toEqual(seen);
    expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(states);
  });

  test("without an answer from squeue (no Slurm configuration where it runs), status and loadJobs still show how every packed task ended, and status says what failed", async (ctx) => {
    needCluster(ctx);
    const jobs = await sweep(50);
    const dir = submissionOf(jobs[0]!);
    const env = { SLURM_CONF: "/nonexistent/slurm.conf", CI: "" };
    // Every task's completed result is in the streams: status counts them there, and needs no scheduler.
    const status = await execa("node", [cliBin, "status", dir], { reject: false, env });
    const lines = status.stdout.split("\n").map((l) => l.split("\t").slice(1));
    expect(lines.slice(0, 2)).toEqual([
      ["TASKS", "COMPLETED"],
      ["50", "50"],
    ]);
    // And what they used, from the same records: every one measured.
    expect(lines.slice(3).map((l) => l[0])).toEqual(["MEASURED", "50"]);
    expect(status.exitCode).toBe(0);
    expect(status.stderr).toBe("");
    // With --tasks every task has a future, whose poll asks squeue: the same states, and it says what failed.
    const listed = await execa("node", [cliBin, "status", dir, "--tasks"], { reject: false, env });
    expect(listed.stdout.split("\n")[1]!.split("\t").slice(1)).toEqual(["50", "50"]);
    expect(listed.stdout.split("\n").filter((l) => /^\d+\t/.test(l) && l.includes("\tCOMPLETED\t"))).toHaveLength(50);
    expect(listed.exitCode).toBe(0);
    expect(listed.stderr).toMatch(/^slurmkit: could not ask the scheduler where tasks are \(.*squeue.*\); tasks with a result show how they ended/);
    // The SDK, through a transport whose squeue always fails: the results settle the futures all the same.
    const failing = new FaultyTransport(new LocalTransport(), {
      run: async (program, _args, real) => (program === "squeue" ? Promise.reject(new Error("squeue: error: Unable to contact slurm controller (connect failure)")) : real()),
    });
    const reloaded = await loadJobs(dir, { transport: failing });
    expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(jobs.map(() => "COMPLETED"));
    expect(await reloaded[17]!.stdout()).toBe("out 17\n");
  });

  test("cancelling tasks during a run: one in a block no worker claimed yet, and one claimed but not started; neither runs, the others complete", async (ctx) => {
    needCluster(ctx);
    const marks = await mkdtemp(join(tmpdir(), "slurmkit-marks-"));
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, cpusPerTask: 1, mem: "100M" });
    const tasks = Array.from({ length: 8 }, (_, i) => command("sh", ["-c", 'echo ran >> "$1"; sleep 2', "sh", join(marks, String(i))]));
    const jobs = await executor.mapArray(tasks, { workers: 1, slots: 1 });
    await waitFor("task 0 to run", async () => (jobs[0]!.state === "RUNNING" ? true : undefined));
    const dir = submissionOf(jobs[0]!);
    // Block 0 (tasks 0 to 3) is claimed; the last block (task 7) is not.
    expect(await readdir(join(dir, "claims"))).toEqual(["b0"]);
    await Promise.all([jobs[7]!.cancel(), jobs[2]!.cancel()]);
    const states = await Promise.all(jobs.map((j) => j.wait()));
    expect(states).toEqual(["COMPLETED", "COMPLETED", "CANCELLED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "CANCELLED"]);
    expect((await readdir(marks)).sort()).toEqual(["0", "1", "3", "4", "5", "6"]);
  });

  test("walk-away: the client exits right after mapArray of a sweep that needs three rounds; the workers submit each later round, with one sbatch per round, and loadJobs later finds every task completed", {
    timeout: 600_000,
  }, async (ctx) => {
    needCluster(ctx);
    const { stdout } = await execa(tsx, [join(fixtures, "walk-away.ts"), await runsFolder(), "6"]);
    const dir = stdout.trim().split("\n").at(-1)!;
    // No client watches: the run goes on by itself. Its results as any reader sees them.
    const records = new TaskRecords(new LocalTransport(), new RunFolder(dir));
    await waitFor(
      "all 6 results, with no client",
      async () => {
        await records.refresh();
        return Array.from({ length: 6 }, (_, i) => records.result(i)).every(Boolean) ? true : undefined;
      },
      540_000,
    );
    const rounds = (await readdir(join(dir, "rounds"))).filter((n) => /^\d+$/.test(n)).sort();
    expect(rounds).toEqual(["1", "2"]);
    const byRound = await Promise.all(rounds.map(async (n) => decodeRound(await readFile(join(dir, "rounds", n)), n)));
    for (const r of byRound) {
      expect(r.by).toMatch(/^\d+_0$/);
      expect(r.jobId).toMatch(/^\d+$/);
      expect(r).toMatchObject({ firstElement: r.round, elements: 1 });
    }
    // sacct: every array this run's scripts made: the first round (job.sbatch) and one per later round (workers.sbatch), no more.
    const acct = await slurm("sacct", ["-X", "-n", "-P", "-S", "now-30minutes", "-o", "JobID,SubmitLine%500"]);
    const arrays = new Map<string, string>();
    for (const line of acct.stdout.split("\n")) {
      const [id, submitLine] = line.split("|");
      if (id && submitLine?.includes(dir)) arrays.set(id.split("_")[0]!, submitLine);
    }
    expect([...arrays.values()].filter((l) => l.endsWith("/job.sbatch"))).toHaveLength(1);
    expect([...arrays.keys()].filter((id) => arrays.get(id)!.endsWith("/workers.sbatch")).sort()).toEqual(byRound.map((r) => r.jobId).sort());
    // A later client finds the run as it is, the rounds the workers submitted included.
    const jobs = await loadJobs(dir);
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(Array(6).fill("COMPLETED"));
    expect(await Promise.all(jobs.map((j) => j.stdout()))).toEqual(Array.from({ length: 6 }, (_, i) => `task ${i}\n`));
    expect(new Set(jobs.map((j) => j.id.split("_")[0])).size).toBe(3);
  });

  test("where a site forbids sbatch on compute nodes, the worker says so once in its log, and the client submits the next round", { timeout: 600_000 }, async (ctx) => {
    needCluster(ctx);
    // sbatch that refuses on a compute node, as a site's policy would; the client's own sbatch goes through.
    const bin = await mkdtemp(join(tmpdir(), "slurmkit-sbatch-"));
    const real = (await execa("sh", ["-c", "command -v sbatch"])).stdout.trim();
    await writeFile(
      join(bin, "sbatch"),
      `#!/bin/sh\nif [ -n "$SLURMD_NODENAME" ]; then echo "sbatch: error: Batch job submission failed: Access/permission denied" >&2; exit 1; fi\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, partition: "short", cpusPerTask: 1, mem: "100M" });
      const jobs = await executor.mapArray(
        Array.from({ length: 4 }, (_, i) => command("sh", ["-c", 'sleep 25; echo "task $1"', "sh", String(i)])),
        { workers: 1 },
      );
      expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(Array(4).fill("COMPLETED"));
      const dir = submissionOf(jobs[0]!);
      expect((await readdir(join(dir, "rounds"))).sort()).toEqual(["1", "2", "no-sbatch"]);
      const [first, second] = await Promise.all(["1", "2"].map(async (n) => decodeRound(await readFile(join(dir, "rounds", n)), n)));
      expect(first!.refused).toContain("Access/permission denied");
      expect(first!.jobId).toBeUndefined();
      expect(second).toMatchObject({ by: "client", firstElement: 2, elements: 1, jobId: expect.stringMatching(/^\d+$/) });
      const logs = await Promise.all((await readdir(join(dir, "logs", "elements"))).filter((n) => n.endsWith(".err")).map((n) => readFile(join(dir, "logs", "elements", n), "utf8")));
      expect(logs.join("").match(/could not submit the next round of workers/g)).toHaveLength(1);
    } finally {
      process.env.PATH = path;
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
