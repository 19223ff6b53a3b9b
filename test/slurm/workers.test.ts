// Packing keeps what each task gets: workers that claim tasks, on the real cluster.
import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { command, JobEndedWithoutResultError, LocalTransport, loadJobs, SlurmExecutor, type Job } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { probe } from "../fixtures/probe.js";
import { square, stoppedBySigterm, whereAmI } from "../fixtures/tasks.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { FaultyTransport } from "../helpers/faults.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

type Probe = Awaited<ReturnType<typeof probe.fn>>;

const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

/** Pairs of results whose run times overlap. */
function overlapping(results: readonly Probe[]): Array<[Probe, Probe]> {
  const out: Array<[Probe, Probe]> = [];
  for (const [i, a] of results.entries()) for (const b of results.slice(i + 1)) if (a.startedAt < b.endedAt && b.startedAt < a.endedAt) out.push([a, b]);
  return out;
}

async function manifestOf(
  job: Job<unknown>,
): Promise<{ workers: { count: number; slots: number; walltimeSeconds?: number; taskMemMb?: number; memMb?: number }; arrays: Array<{ jobId: string; elements: number }> }> {
  return JSON.parse(await readFile(join(dirname(dirname(job.paths.result)), "manifest.json"), "utf8"));
}

describe("workers that claim tasks keep each task's resources and time limit", () => {
  test("tasks that each take most of their own time limit all complete: the worker's walltime covers the tasks it runs", { timeout: 240_000 }, async (ctx) => {
    needCluster(ctx);
    // Two 40 s tasks per worker, each within its own one-minute limit: one-minute elements would have timed out.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1 });
    const jobs = await executor.mapArray(
      Array.from({ length: 4 }, () => command("sleep", ["40"])),
      { workers: 2 },
    );
    // No mem: each task gets the test cluster's DefMemPerCPU (500 MiB), as in its own element; the worker asks 32 + 96 MiB more.
    expect((await manifestOf(jobs[0]!)).workers).toEqual({ count: 2, slots: 1, taskTimeSeconds: 60, walltimeSeconds: 60 * 2 + 60, taskMemMb: 500, memMb: 628 });
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
  });

  test("a task that outlives its own time limit is stopped and ends TIMEOUT, as in its own element; the worker goes on with the next", { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1 });
    const [long, next] = await executor.mapArray([command("sleep", ["90"]), command("true")], { workers: 1 });
    expect(await long!.wait()).toBe("TIMEOUT");
    const error = (await long!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.logTail).toContain("Task 0 ran past its time limit of 60 s and was stopped");
    expect(await next!.result()).toEqual({ exitCode: 0 });
    expect(next!.id).toBe(long!.id);
  });

  test("with cpusPerTask: 2, a two-CPU worker runs one task at a time, and the task sees its own two CPUs", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, cpusPerTask: 2 });
    const jobs = await executor.mapArray(
      Array.from({ length: 6 }, () => probe.with({ ms: 1500 })),
      { workers: 2 },
    );
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map((r) => r.cpusPerTask)).toEqual(Array(6).fill("2"));
    // Never two tasks of one worker at once: that worker holds two CPUs, one task's worth.
    expect(overlapping(results).filter(([a, b]) => a.worker === b.worker)).toEqual([]);
    expect(new Set(results.map((r) => r.worker)).size).toBeGreaterThanOrEqual(1);
  });

  test("with two slots, a worker runs two tasks at once, each pinned to its own CPU", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, cpusPerTask: 1 });
    const jobs = await executor.mapArray(
      Array.from({ length: 4 }, () => probe.with({ ms: 3000 })),
      { workers: 1, slots: 2 },
    );
    const results = await Promise.all(jobs.map((j) => j.result()));
    const together = overlapping(results);
    expect(together.length).toBeGreaterThan(0);
    for (const [a, b] of together) {
      expect(a.slot).not.toBe(b.slot);
      expect(a.cpus).not.toBe(b.cpus);
    }
    expect(new Set(results.map((r) => r.slot))).toEqual(new Set(["0", "1"]));
  });

  for (const gpus of [{ gres: "gpu:1" }, { gpusPerNode: 1 }])
    test(`with ${JSON.stringify(gpus)}, every task sees exactly one GPU, never one another running task on its node sees; two slots see different GPUs`, async (ctx) => {
      needCluster(ctx);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, ...gpus });
      const jobs = await executor.mapArray(
        Array.from({ length: 8 }, () => probe.with({ ms: 2000 })),
        { workers: 2, slots: 2 },
      );
      const results = await Promise.all(jobs.map((j) => j.result()));
      for (const r of results) expect(r.gpus).toMatch(/^\d+$/);
      for (const [a, b] of overlapping(results)) if (a.node === b.node) expect(a.gpus).not.toBe(b.gpus);
      // Within a worker, slot 0 and slot 1 each keep one GPU of their own.
      for (const worker of new Set(results.map((r) => r.worker))) {
        const slots = new Map(results.filter((r) => r.worker === worker).map((r) => [r.slot, r.gpus]));
        if (slots.size === 2) expect(slots.get("0")).not.toBe(slots.get("1"));
      }
    });

  test("a CPU-bound function task in each of two slots runs in parallel: slots are processes, not one event loop", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const [a, b] = await Promise.all((await executor.mapArray([probe.with({ ms: 3000, spin: true }), probe.with({ ms: 3000, spin: true })], { workers: 1, slots: 2 })).map((j) => j.result()));
    // One event loop would run them one after the other; two processes overlap almost entirely.
    const shared = Math.min(a!.endedAt, b!.endedAt) - Math.max(a!.startedAt, b!.startedAt);
    expect(shared).toBeGreaterThan(2000);
    expect(a!.slot).not.toBe(b!.slot);
  });

  test("a slow task does not hold up the tasks behind it, and no task runs twice", async (ctx) => {
    needCluster(ctx);
    const marks = await mkdtemp(join(tmpdir(), "slurmkit-marks-"));
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const tasks = Array.from({ length: 30 }, (_, i) => probe.with({ ms: i === 0 ? 10_000 : 100, mark: join(marks, String(i)) }));
    const jobs = await executor.mapArray(tasks, { workers: 2 });
    const results = await Promise.all(jobs.map((j) => j.result()));
    // A fixed split would leave half the short tasks behind the long one.
    expect(results.slice(1).every((r) => r.endedAt < results[0]!.endedAt)).toBe(true);
    const files = (await readdir(marks)).sort((x, y) => Number(x) - Number(y));
    expect(files).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
    for (const f of files) expect((await readFile(join(marks, f), "utf8")).trim().split("\n")).toHaveLength(1);
  });

  test("after on packed tasks waits on exactly those tasks: a failed sibling does not cancel the dependent, a failed dependency does, with the reason; loadJobs in a new process agrees", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const [failing, fine] = await executor.mapArray([command("sh", ["-c", "sleep 3; exit 4"]), probe.with({ ms: 3000 })], { workers: 1 });
    const good = await executor.submit(square.with(5), { after: [fine!] });
    const bad = await executor.submit(square.with(6), { after: [failing!] });
    expect(await failing!.wait()).toBe("FAILED");
    expect(await good.result()).toMatchObject({ square: 25 });
    expect(await bad.wait()).toBe("CANCELLED");
    const error = (await bad.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.logTail).toMatch(/Not started: task 0 of \S+ \(job \d+\), which it runs after, ended FAILED: Command failed with exit code 4: \["sh", "-c"/);
    // A new process rebuilds the same: the dependency and its check live in the run folders.
    const reload = async (job: Job<unknown>) =>
      JSON.parse((await execa(tsx, [join(fixtures, "reload.mts"), dirname(dirname(job.paths.result))])).stdout) as Array<{ state: string; value?: unknown; error?: string }>;
    expect(await reload(good)).toEqual([{ id: good.id, state: "COMPLETED", value: expect.objectContaining({ square: 25 }) }]);
    expect(await reload(bad)).toEqual([{ id: bad.id, state: "CANCELLED", error: "JobEndedWithoutResultError" }]);
  });

  test("cancel() of one packed task, queued or running, leaves its siblings to complete", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const jobs = await executor.mapArray(
      Array.from({ length: 4 }, () => command("sleep", ["4"])),
      { workers: 1 },
    );
    await waitFor("a task to run", async () => (jobs.some((j) => j.state === "RUNNING") ? true : undefined));
    const running = jobs.find((j) => j.state === "RUNNING")!;
    const queued = jobs.find((j) => j.state === "PENDING")!;
    await running.cancel();
    await queued.cancel();
    expect(await running.wait()).toBe("CANCELLED");
    expect(await queued.wait()).toBe("CANCELLED");
    const error = await running.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect((error as JobEndedWithoutResultError).logTail).toContain(`Task ${running.taskIndex} was cancelled while it ran`);
    const others = jobs.filter((j) => j !== running && j !== queued);
    expect(await Promise.all(others.map((j) => j.wait()))).toEqual(["COMPLETED", "COMPLETED"]);
  });

  test("a packed function task that fails from its own SIGTERM handler, cancelled while it runs, ends CANCELLED, not FAILED with its error", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, mem: "200M" });
    const started = join(await mkdtemp(join(tmpdir(), "slurmkit-stopped-")), "started");
    const [stopped, sibling] = await executor.mapArray([stoppedBySigterm.with(started), square.with(4)], { workers: 1 });
    await waitFor("the task to start", async () => ((await readFile(started, "utf8").catch(() => "")) ? true : undefined));
    await stopped!.cancel();
    expect(await stopped!.wait()).toBe("CANCELLED");
    const error = await stopped!.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect((error as JobEndedWithoutResultError).logTail).toContain(`Task ${stopped!.taskIndex} was cancelled while it ran`);
    expect(await sibling!.result()).toEqual(expect.objectContaining({ square: 16 }));
  });

  test("cancelling every task of a packed submission cancels its workers", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const jobs = await executor.mapArray(
      Array.from({ length: 3 }, () => command("sleep", ["30"])),
      { workers: 1 },
    );
    const array = jobs[0]!.id;
    await waitFor("a task to run", async () => (jobs.some((j) => j.state === "RUNNING") ? true : undefined));
    await Promise.all(jobs.map((j) => j.cancel()));
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(["CANCELLED", "CANCELLED", "CANCELLED"]);
    await waitFor("the worker to leave the queue", async () => {
      const { stdout } = await slurm("squeue", ["-h", "-j", array, "-t", "PENDING,RUNNING", "-o", "%i"]);
      return stdout.trim() === "" ? true : undefined;
    });
  });

  test("a worker killed mid-task fails that task with its state; the tasks it had not started still complete", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const jobs = await executor.mapArray(
      Array.from({ length: 6 }, () => whereAmI.with(3000)),
      { workers: 2 },
    );
    const victim = await waitFor("a task to run", async () => jobs.find((j) => j.state === "RUNNING"));
    await slurm("scancel", [victim.id]);
    expect(await victim.wait()).toBe("CANCELLED");
    const others = jobs.filter((j) => j !== victim);
    const states = await Promise.all(others.map((j) => j.wait()));
    // The killed worker may have been running one more task in the moment it died; no other task is lost.
    expect(states.filter((s) => s !== "COMPLETED")).toEqual([]);
  });

  test("a packed submission made while a poll waits on squeue is not judged by that poll: its tasks run and complete", async (ctx) => {
    needCluster(ctx);
    // The first poll's squeue is held until the second submission is tracked; that squeue was never asked about its workers.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let asked!: () => void;
    const squeueAsked = new Promise<void>((r) => (asked = r));
    let queries = 0;
    const transport = new FaultyTransport(new LocalTransport(), {
      run: async (program, args, real) => {
        if (program === "squeue" && args.includes("-j") && queries++ === 0) {
          asked();
          await held;
        }
        return real();
      },
    });
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "100M", transport });
    const first = await executor.mapArray([square.with(2)], { workers: 1 });
    await squeueAsked;
    const second = await executor.mapArray([square.with(3), square.with(4)], { workers: 1 });
    release();
    expect((await Promise.all([...first, ...second].map((j) => j.result()))).map((r) => r.square)).toEqual([4, 9, 16]);
  });

  test("when the workers run out of walltime, more workers take the tasks left; loadJobs in a new process follows them", { timeout: 300_000 }, async (ctx) => {
    needCluster(ctx);
    // The short partition's MaxTime is 2 minutes: a worker there fits two or three 25 s tasks of a one-minute limit.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, partition: "short" });
    const jobs = await executor.mapArray(
      Array.from({ length: 4 }, () => probe.with({ ms: 25_000 })),
      { workers: 1 },
    );
    expect((await manifestOf(jobs[0]!)).workers.walltimeSeconds).toBe(120);
    const results = await Promise.all(jobs.map((j) => j.result()));
    const manifest = await manifestOf(jobs[0]!);
    expect(manifest.arrays.length).toBeGreaterThanOrEqual(2);
    expect(new Set(results.map((r) => r.worker?.split("_")[0])).size).toBeGreaterThanOrEqual(2);
    const reloaded = await loadJobs(dirname(dirname(jobs[0]!.paths.result)));
    expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
    expect(reloaded.map((j) => j.id)).toEqual(jobs.map((j) => j.id));
  });
});
