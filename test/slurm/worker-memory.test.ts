// Memory in workers, on the real cluster: a packed task gets its own `mem`,
// slurmkit's processes are asked for on top, and each task is held to its own.
// The test cluster kills a job over its --mem within a second
// (JobAcctGatherParams=OverMemoryKill), as a cgroup would.
import { existsSync } from "node:fs";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { command, JobEndedWithoutResultError, LocalTransport, SlurmExecutor, TaskFailedError, type Job, type MapArrayOptions } from "../../src/index.js";
import { Watcher } from "../../src/slurm/watcher.js";
import { holdMemory, killSelf, outgrowCgroup } from "../fixtures/memory.js";
import { square } from "../fixtures/tasks.js";
import { runsFolder } from "../helpers/behaviour.js";
import { needCluster } from "../helpers/cluster.js";

beforeAll(() => {
  Watcher.for(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
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
    const jobs = [...(await executor.mapArray([pythonHolding30(), pythonHolding30()])), ...(await executor.mapArray([holdMemory.with({ mb: 30, holdMs: 3000 }), holdMemory.with({ mb: 30, holdMs: 3000 })]))];
    expect(await states(jobs)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
  });

  const packings: Array<[string, MapArrayOptions, number]> = [
    ['workers: "auto"', { workers: "auto" }, 1],
    ['tasksPerElement: "auto"', { tasksPerElement: "auto" }, 1],
    ["workers: 2, slots: 2", { workers: 2, slots: 2 }, 2],
  ];
  for (const [name, packing, slots] of packings) {
    test(`packed with ${name}, the same tasks at mem: 100M complete; each worker asks for slots × 100 MiB + 96 MiB, and each task sees its own 100 MiB`, { timeout: 180_000 }, async (ctx) => {
      needCluster(ctx);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
      const commands = await executor.mapArray(Array.from({ length: 8 }, pythonHolding30), packing);
      const functions = await executor.mapArray(Array.from({ length: 8 }, () => holdMemory.with({ mb: 30, holdMs: 3000 })), packing);
      for (const jobs of [commands, functions]) {
        expect((await manifestOf(jobs[0]!)).workers).toMatchObject({ slots, taskMemMb: 100, memMb: slots * 100 + 96 });
      }
      expect(await states([...commands, ...functions])).toEqual(Array(16).fill("COMPLETED"));
      for (const job of functions) expect(await job.result()).toEqual({ mb: 30, memPerNode: "100" });
    });
  }

  test('1,000 trivial function tasks at mem: 100M with workers: "auto" all complete', { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
    const jobs = await executor.mapArray(Array.from({ length: 1000 }, (_, i) => square.with(i)), { workers: "auto" });
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map((r) => r.square)).toEqual(Array.from({ length: 1000 }, (_, i) => i * i));
  });
});

describe("a worker holds each task to its own mem", () => {
  test("in a two-slot worker, a task that allocates past its own mem ends OUT_OF_MEMORY, and its sibling completes", { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: MEM });
    // 10 MiB every 200 ms: the worker's sample (every 500 ms) sees it pass 100 MiB long before the element's 296 MiB.
    const [greedy, sibling] = await executor.mapArray([holdMemory.with({ mb: 250, holdMs: 5000, stepMb: 10, stepMs: 200 }), holdMemory.with({ mb: 20, holdMs: 8000 })], { workers: 1, slots: 2 });
    expect(await greedy!.wait()).toBe("OUT_OF_MEMORY");
    const error = (await greedy!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("OUT_OF_MEMORY");
    expect(error.logTail).toMatch(/Task 0 used \d+ MiB, more than its mem of 100 MiB, and was stopped/);
    expect(await sibling!.result()).toEqual({ mb: 20, memPerNode: "100" });
    expect(sibling!.id).toBe(greedy!.id);
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
      expect(await sibling!.result()).toEqual({ mb: 20, memPerNode: "100" });
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
