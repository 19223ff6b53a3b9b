// Memory in workers, on the real cluster: a packed task gets its own `mem`,
// slurmkit's processes are asked for on top, and each task is held to its own.
// The test cluster kills a job over its --mem within a second
// (JobAcctGatherParams=OverMemoryKill), as a cgroup would.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { command, JobEndedWithoutResultError, LocalTransport, SlurmExecutor, TaskFailedError, type Job, type MapArrayOptions } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { holdMemory, killSelf, outgrowCgroup } from "../fixtures/memory.js";
import { square } from "../fixtures/tasks.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { needCluster } from "../helpers/cluster.js";

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

/** One task's small, realistic request: 100 MiB. */
const MEM = "100M";

/** A command that holds 30 MiB for 3 s (Debian's python3: about 40 MiB in all). */
const pythonHolding30 = () => command("/usr/bin/python3", ["-c", "import time; b = b'x' * (30 << 20); time.sleep(3)"]);

async function manifestOf(job: Job<unknown>): Promise<{ workers?: { count: number; slots: number; taskMemMb?: number; memMb?: number } }> {
  return JSON.parse(await readFile(join(dirname(dirname(job.paths.result)), "manifest.json"), "utf8"));
}

const states = (jobs: readonly Job<unknown>[]) => Promise.all(jobs.map((j) => j.wait()));

describe("a packed task gets its own mem: slurmkit's processes are asked for on top", () => {
  test("tasks that fit in mem: 100M alone (a command holding 30 MiB, a function task holding 30 MiB) fit there one per element", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
    const jobs = [
      ...(await executor.mapArray([pythonHolding30(), pythonHolding30()])),
      ...(await executor.mapArray([holdMemory.with({ mb: 30, holdMs: 3000 }), holdMemory.with({ mb: 30, holdMs: 3000 })])),
    ];
    expect(await states(jobs)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
  });

  const packings: Array<[string, MapArrayOptions, number]> = [
    ['workers: "auto"', { workers: "auto" }, 1],
    ['tasksPerElement: "auto"', { tasksPerElement: "auto" }, 1],
    ["workers: 2, slots: 2", { workers: 2, slots: 2 }, 2],
  ];
  for (const [name, packing, slots] of packings) {
    test(`packed with ${name}, the same tasks at mem: 100M complete; each worker asks for slots × (100 + 32) MiB + 96 MiB, and each task sees its own 100 MiB`, { timeout: 180_000 }, async (ctx) => {
      needCluster(ctx);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
      const commands = await executor.mapArray(Array.from({ length: 8 }, pythonHolding30), packing);
      const functions = await executor.mapArray(
        Array.from({ length: 8 }, () => holdMemory.with({ mb: 30, holdMs: 3000 })),
        packing,
      );
      for (const jobs of [commands, functions]) {
        expect((await manifestOf(jobs[0]!)).workers).toMatchObject({ slots, taskMemMb: 100, memMb: slots * (100 + 32) + 96 });
      }
      expect(await states([...commands, ...functions])).toEqual(Array(16).fill("COMPLETED"));
      for (const job of functions) expect(await job.result()).toMatchObject({ mb: 30, memPerNode: "100" });
    });
  }

  test('1,000 trivial function tasks at mem: 100M with workers: "auto" all complete', { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
    const jobs = await executor.mapArray(
      Array.from({ length: 1000 }, (_, i) => square.with(i)),
      { workers: "auto" },
    );
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map((r) => r.square)).toEqual(Array.from({ length: 1000 }, (_, i) => i * i));
  });
});

describe("a worker holds each task to its own mem", () => {
  test("in a two-slot worker, a task that allocates past its own mem ends OUT_OF_MEMORY, and its sibling completes", { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
    // 10 MiB every 200 ms: the worker's sample (every 500 ms) sees it pass 100 MiB long before the element's 360 MiB.
    const [greedy, sibling] = await executor.mapArray([holdMemory.with({ mb: 250, holdMs: 5000, stepMb: 10, stepMs: 200 }), holdMemory.with({ mb: 20, holdMs: 8000 })], { workers: 1, slots: 2 });
    expect(await greedy!.wait()).toBe("OUT_OF_MEMORY");
    const error = (await greedy!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("OUT_OF_MEMORY");
    expect(error.logTail).toMatch(/Task 0 used \d+ MiB, more than its mem of 100 MiB, and was stopped/);
    expect(await sibling!.result()).toMatchObject({ mb: 20, memPerNode: "100" });
    expect(sibling!.id).toBe(greedy!.id);
  });

  test("a task after others in the same slot still gets its whole mem: a slot that grew past 32 MiB is replaced, and less is not charged to the next task", { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
    // One slot, so the tasks run one after the other in it. The second and fourth hold 45 MiB, which fits
    // in 100 MiB beside a fresh slot's process (as beside the runner in an element of their own).
    const [leaky, afterLeaky, small, afterSmall] = await executor.mapArray(
      [holdMemory.with({ mb: 0, holdMs: 0, leak: 40 }), holdMemory.with({ mb: 45, holdMs: 2000 }), holdMemory.with({ mb: 0, holdMs: 0, leak: 8 }), holdMemory.with({ mb: 45, holdMs: 2000 })],
      { workers: 1, slots: 1 },
    );
    const results = await Promise.all([leaky, afterLeaky, small, afterSmall].map((j) => j!.result()));
    // 40 MiB left behind: the slot process retired, and the next task had a new one.
    expect(results[1]!.pid).not.toBe(results[0]!.pid);
    // 8 MiB left behind: the same process went on, and those 8 MiB were not charged to the next task.
    expect(results[3]!.pid).toBe(results[2]!.pid);
    expect(results.map((r) => r.mb)).toEqual([0, 45, 0, 45]);
  });

  describe("counted as a memory cgroup charges it, when the worker runs in one", () => {
    const cgroups: string[] = [];
    afterEach(async () => {
      for (const dir of cgroups.splice(0)) await rmdir(dir).catch(() => undefined);
    });

    /** A command that holds 15 MiB and forks two children that share those pages (copy on write), as Python's multiprocessing does. */
    const forking = () =>
      command("/usr/bin/python3", [
        "-c",
        "import os, time\nb = b'x' * (15 << 20)\nkids = [os.fork() for _ in range(2)]\nif 0 in kids:\n    time.sleep(3); os._exit(0)\nfor k in kids: os.waitpid(k, 0)\n",
      ]);

    test("a task whose forks share its pages fits its mem as the cgroup charges it once; counted as resident sets, it would not", { timeout: 180_000 }, async (ctx) => {
      needCluster(ctx);
      // The element's cgroup, as Slurm's task/cgroup makes one: limited to what the worker asks for (100 + 32 + 96 MiB).
      const v1 = existsSync("/sys/fs/cgroup/memory/cgroup.procs");
      const cgroup = `${v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup"}/slurmkit-test-element-${process.pid}`;
      await mkdir(cgroup);
      cgroups.push(cgroup);
      await writeFile(`${cgroup}/${v1 ? "memory.limit_in_bytes" : "memory.max"}`, String(228 * 2 ** 20));
      const inCgroup = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM, setup: [`echo $$ > ${cgroup}/cgroup.procs`] });
      const [charged] = await inCgroup.mapArray([forking(), forking()], { workers: 1, slots: 1 });
      expect(await charged!.wait()).toBe("COMPLETED");
      const elementLog = join(dirname(dirname(charged!.paths.result)), "logs", "elements");
      const [errLog] = (await readdir(elementLog)).filter((f) => f.endsWith(".err"));
      expect(await readFile(join(elementLog, errLog!), "utf8")).toContain("holds each task to its mem of 100 MiB, counted as a memory cgroup charges it");
      // The same task where memory is counted as resident sets (the test cluster's gatherer): its three processes hold about 40 MiB each.
      const plain = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
      const [resident] = await plain.mapArray([forking(), forking()], { workers: 1, slots: 1 });
      expect(await resident!.wait()).toBe("OUT_OF_MEMORY");
    });
  });

  describe("a slot process killed by the kernel's OOM killer", () => {
    const cgroups: string[] = [];
    afterEach(async () => {
      for (const dir of cgroups.splice(0)) await rmdir(dir).catch(() => undefined);
    });

    /** A memory cgroup limited to `mb` MiB (v1 here, or v2), for a task to join: the kernel's OOM killer ends what outgrows it. */
    async function memoryCgroup(mb: number): Promise<string> {
      const v1 = existsSync("/sys/fs/cgroup/memory/cgroup.procs");
      const dir = `${v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup"}/slurmkit-test-oom-${process.pid}-${cgroups.length}`;
      await mkdir(dir);
      cgroups.push(dir);
      await writeFile(`${dir}/${v1 ? "memory.limit_in_bytes" : "memory.max"}`, String(mb * 2 ** 20));
      return dir;
    }

    test("ends its task OUT_OF_MEMORY, and its sibling completes", { timeout: 180_000 }, async (ctx) => {
      needCluster(ctx);
      const cgroup = await memoryCgroup(32);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
      // At once, so that the kernel acts long before the worker's next sample.
      const [outgrown, sibling] = await executor.mapArray([outgrowCgroup.with({ cgroup, mb: 200 }), holdMemory.with({ mb: 20, holdMs: 4000 })], { workers: 1, slots: 2 });
      expect(await outgrown!.wait()).toBe("OUT_OF_MEMORY");
      const error = (await outgrown!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
      expect(error).toBeInstanceOf(JobEndedWithoutResultError);
      expect(error.logTail).toContain("Task 0 was killed by the kernel's out-of-memory killer (its process ended by SIGKILL)");
      expect(await sibling!.result()).toMatchObject({ mb: 20, memPerNode: "100" });
    });

    test("but a task that kills itself with SIGKILL, with no OOM kill, ends FAILED", { timeout: 180_000 }, async (ctx) => {
      needCluster(ctx);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
      const [killed] = await executor.mapArray([killSelf.with(undefined), square.with(3)], { workers: 1, slots: 2 });
      expect(await killed!.wait()).toBe("FAILED");
      const error = (await killed!.result().catch((e: unknown) => e)) as TaskFailedError;
      expect(error).toBeInstanceOf(TaskFailedError);
      expect(error.remote.message).toBe("Task 0's process ended by SIGKILL before it wrote a result");
    });
  });
});
