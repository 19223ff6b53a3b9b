import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { command, LocalTransport, SlurmExecutor, TaskFailedError } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { explode, square, whereAmI } from "../fixtures/tasks.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

describe("packing and splitting on the real cluster", () => {
  test("packed tasks keep their own results, logs and failures", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, cpusPerTask: 2 });
    const tasks = [...[1, 2, 3, 4, 5, 6, 7].map((x) => square.with(x)), explode.with("only task 7 fails"), command("sh", ["-c", 'echo "out of $1"; echo "err of $1" >&2', "sh", "task 8"])];
    // Three tasks per element: three workers, which claim the tasks as they go.
    const jobs = await executor.mapArray(tasks, { tasksPerElement: 3 });
    const array = jobs[0]!.id;
    expect(jobs.every((j) => j.id === array)).toBe(true); // no worker has taken a task yet
    const outcomes = await Promise.all(
      jobs.map((j) =>
        j.result().then(
          (v) => v,
          (e: unknown) => e,
        ),
      ),
    );
    // Each future now carries the id of the worker that ran it.
    for (const job of jobs) expect([0, 1, 2].map((e) => `${array}_${e}`)).toContain(job.id);
    expect(outcomes.slice(0, 7).map((r) => (r as { square: number }).square)).toEqual([1, 4, 9, 16, 25, 36, 49]);
    expect(outcomes[7]).toBeInstanceOf(TaskFailedError);
    expect((outcomes[7] as TaskFailedError).remote.message).toBe("only task 7 fails");
    expect(outcomes[8]).toEqual({ exitCode: 0 });
    expect(jobs.map((j) => j.state)).toEqual([...Array(7).fill("COMPLETED"), "FAILED", "COMPLETED"]);
    expect(await jobs[8]!.stdout()).toBe("out of task 8\n");
    expect(await jobs[8]!.stderr()).toBe("err of task 8\n");
    expect(await jobs[7]!.stderr()).toContain("slurmkit runner: task 7 failed on");
    expect(await jobs[6]!.stderr()).toBe("");
    const manifest = JSON.parse(await readFile(join(dirname(dirname(jobs[0]!.paths.result)), "manifest.json"), "utf8")) as { workers: unknown; arrays: unknown };
    // Each task's memory is the cluster's DefMemPerCPU (500 MiB) × its 2 CPUs, as in its own element; the worker asks 32 + 96 MiB more.
    expect(manifest.workers).toEqual({ count: 3, slots: 1, taskTimeSeconds: 300, walltimeSeconds: 300 * 3 + 60, taskMemMb: 1000, memMb: 1128 });
    expect(manifest.arrays).toEqual([{ jobId: array, firstElement: 0, elements: 3 }]);
  });

  test("a packed task is PENDING until it starts, RUNNING while it runs, COMPLETED once its own result exists", async (ctx) => {
    needCluster(ctx);
    const w = slurmWatcher(new LocalTransport());
    const saved = w.intervals;
    ctx.onTestFinished(() => w.setIntervals(saved));
    w.setIntervals({ minMs: 250, maxMs: 250 });
    // One CPU: the element runs its two tasks one after the other.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, cpusPerTask: 1 });
    const [first, second] = await executor.mapArray([whereAmI.with(4000), whereAmI.with(4000)], { tasksPerElement: 2 });
    await waitFor("the first task to run", async () => (first!.state === "RUNNING" ? true : undefined));
    expect(second!.state).toBe("PENDING");
    await first!.result();
    expect(second!.done()).toBe(false);
    await waitFor("the second task to run", async () => (second!.state === "RUNNING" ? true : undefined));
    await second!.result();
    expect(second!.state).toBe("COMPLETED");
  });

  test("2,000 tasks at one per element split into arrays of MaxArraySize (1001); each future maps to its element", async (ctx) => {
    needCluster(ctx);
    // Held, so that the test runs four chosen elements rather than 2,000.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, sbatch: { hold: true } });
    expect((await executor.limits()).maxArraySize).toBe(1001);
    const before = { ...executor.watcher.stats().calls };
    const jobs = await executor.mapArray(Array.from({ length: 2000 }, (_, i) => square.with(i)));
    expect(executor.watcher.stats().calls.sbatch - before.sbatch).toBe(2);
    const [a, b] = [jobs[0]!.id.split("_")[0]!, jobs[1001]!.id.split("_")[0]!];
    ctx.onTestFinished(async () => void (await slurm("scancel", [a, b])));
    expect(a).not.toBe(b);
    expect([jobs[0]!.id, jobs[1000]!.id, jobs[1001]!.id, jobs[1999]!.id]).toEqual([`${a}_0`, `${a}_1000`, `${b}_0`, `${b}_998`]);
    const scripts = await Promise.all(["job.sbatch", "job-1.sbatch"].map((f) => readFile(join(dirname(dirname(jobs[0]!.paths.result)), f), "utf8")));
    expect(scripts[0]).toContain("#SBATCH --array=0-1000\n");
    expect(scripts[1]).toContain("#SBATCH --array=0-998\n");
    // Split only, not packed: each element runs one task, offset by the array's first element.
    expect(scripts[1]).toMatch(/ --element-offset 1001 --warning USR2 --max-requeues 3\n/);
    expect(scripts[1]).not.toContain("--worker");

    await slurm("scontrol", ["release", `${a}_0`, `${a}_1000`, `${b}_0`, `${b}_998`]);
    for (const i of [0, 1000, 1001, 1999]) expect(((await jobs[i]!.result()) as { square: number }).square).toBe(i * i);
    expect(jobs[5]!.done()).toBe(false);
    await slurm("scancel", [a, b]);
    expect(await jobs[5]!.wait()).toBe("CANCELLED");
    expect(await jobs[1500]!.wait()).toBe("CANCELLED");
  });

  test("a multi-rank submission split at MaxArraySize runs each element as one task: each rank writes its own result once, rank 0 the task's logs", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, nodes: 2, ntasksPerNode: 1, sbatch: { hold: true } });
    const jobs = await executor.mapArray(
      Array.from({ length: 1002 }, () => whereAmI.with(10)),
      { tasksPerElement: "auto" },
    );
    const [a, b] = [jobs[0]!.id.split("_")[0]!, jobs[1001]!.id.split("_")[0]!];
    ctx.onTestFinished(async () => void (await slurm("scancel", [a, b])));
    expect(jobs[1001]!.id).toBe(`${b}_0`);
    await slurm("scontrol", ["release", `${b}_0`]);
    expect(await jobs[1001]!.result()).toEqual({ node: "n1", rank: 0 });
    const results = dirname(jobs[1001]!.paths.result);
    const mine = await waitFor("rank 1's result", async () => {
      const names = (await readdir(results)).filter((n) => n.startsWith("1001."));
      return names.includes("1001.r1.result") ? names.sort() : undefined;
    });
    expect(mine).toEqual(["1001.r1.result", "1001.result"]);
    expect(await readdir(results)).not.toContain("0.result");
    expect(await readdir(dirname(jobs[1001]!.paths.stderr))).toEqual(expect.arrayContaining(["1001.out", "1001.err"]));
  });

  test('"auto" packs 2,000 function tasks into as many elements as the cluster runs at once (2 nodes x 2 CPUs), and all results are right', async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    expect((await executor.limits()).nodes.map((n) => `${n.name}:${n.cpus}`).sort()).toEqual(["n1:2", "n2:2"]);
    const before = executor.watcher.stats().calls.sbatch;
    const jobs = await executor.mapArray(
      Array.from({ length: 2000 }, (_, i) => square.with(i)),
      { tasksPerElement: "auto" },
    );
    expect(executor.watcher.stats().calls.sbatch - before).toBe(1);
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map((r) => r.square)).toEqual(Array.from({ length: 2000 }, (_, i) => i * i));
    // Four workers, one per CPU of the cluster; every task ran in one of them.
    const manifest = JSON.parse(await readFile(join(dirname(dirname(jobs[0]!.paths.result)), "manifest.json"), "utf8")) as { workers: { count: number }; arrays: Array<{ jobId: string }> };
    expect(manifest.workers.count).toBe(4);
    const workers = [0, 1, 2, 3].map((w) => `${manifest.arrays[0]!.jobId}_${w}`);
    expect(jobs.every((j) => workers.includes(j.id))).toBe(true);
  });

  test("bad tasksPerElement is refused before anything is submitted", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    await expect(executor.mapArray([square.with(1)], { tasksPerElement: 0 })).rejects.toThrow('Invalid mapArray options: Expected `tasksPerElement` to be a positive integer or "auto", got `0`');
    const multi = new SlurmExecutor({ folder: await runsFolder(), time: 5, nodes: 2 });
    await expect(multi.mapArray([square.with(1)], { tasksPerElement: 2 })).rejects.toThrow(
      "Invalid mapArray options: Expected `tasksPerElement` to be 1 for jobs with several ranks (nodes × ntasksPerNode = 2), got `2`",
    );
  });
});
