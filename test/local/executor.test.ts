import { getEventListeners } from "node:events";
import { describe, expect, test } from "vitest";
import { autoExecutor, command, JobEndedWithoutResultError, LocalExecutor, LocalTransport, SlurmExecutor, WaitTimeoutError } from "../../src/index.js";
import { whereAmI } from "../fixtures/tasks.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

describe("LocalExecutor", () => {
  test("many waits on one AbortSignal: it holds one listener, and an abort ends every wait with its reason", async () => {
    const executor = new LocalExecutor({ folder: await runsFolder(), maxParallel: 1 });
    const jobs = await executor.mapArray(Array.from({ length: 2_000 }, () => command("sleep", ["30"])));
    const controller = new AbortController();
    const waits = jobs.map((job) => job.wait({ signal: controller.signal }).catch((e: unknown) => e));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    // A wait that ends takes its callback away, and with the last one the signal's listener goes.
    const other = new AbortController();
    const one = jobs[0]!.wait({ signal: other.signal, timeoutMs: 10 }).catch((e: unknown) => e);
    expect(getEventListeners(other.signal, "abort")).toHaveLength(1);
    expect(await one).toBeInstanceOf(WaitTimeoutError);
    expect(getEventListeners(other.signal, "abort")).toHaveLength(0);
    controller.abort(new Error("enough"));
    expect(new Set((await Promise.all(waits)).map((e) => (e as Error).message))).toEqual(new Set(["enough"]));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    expect(jobs.every((job) => !job.done())).toBe(true);
    await Promise.all(jobs.map((job) => job.cancel()));
  });

  test("runs at most maxParallel tasks at once; cancel() on a queued task gives CANCELLED, on a running one too", async () => {
    const executor = new LocalExecutor({ folder: await runsFolder(), maxParallel: 1 });
    const jobs = await executor.mapArray([command("sleep", ["30"]), command("sleep", ["30"]), command("true")]);
    // A future's state is what its watcher saw, as for Slurm jobs: one poll shows the first task started and the others queued.
    await executor.watcher.pollNow();
    expect(jobs.map((j) => j.state)).toEqual(["RUNNING", "PENDING", "PENDING"]);
    await jobs[1]!.cancel();
    expect(await jobs[1]!.wait()).toBe("CANCELLED");
    await jobs[0]!.cancel();
    const error = (await jobs[0]!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("CANCELLED");
    expect(await jobs[2]!.result()).toEqual({ exitCode: 0 });
  });

  test("time: a task still running at its limit gets SIGTERM and ends TIMEOUT, its log saying so; a bad time is a ParameterError", async () => {
    const executor = new LocalExecutor({ folder: await runsFolder(), time: "0:02" });
    expect(executor.timeSeconds).toBe(2);
    const [slow, quick] = await executor.mapArray([command("sleep", ["60"]), command("true")]);
    const error = (await slow!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("TIMEOUT");
    expect(await slow!.stderr()).toContain("task 0 ran past its time limit of 2 s and was stopped");
    expect(await quick!.result()).toEqual({ exitCode: 0 });
    expect(() => new LocalExecutor({ folder: "x", time: "soon" })).toThrow(/Expected `time` to be minutes .* got `soon`/);
  });

  test("the same run-folder layout as SlurmExecutor", async () => {
    const executor = new LocalExecutor({ folder: await runsFolder() });
    const job = await executor.submit(whereAmI.with(10));
    await job.result();
    expect(job.paths.result).toMatch(new RegExp(`^${executor.folder}/[^/]+/results/0\\.result$`));
    expect(job.paths.stdout).toMatch(/\/logs\/0\.out$/);
    expect(job.paths.stderr).toMatch(/\/logs\/0\.err$/);
    expect(job.paths.state).toMatch(/\/state\/0\.state$/);
  });

  test("a wait can be aborted with an AbortSignal; the job goes on", async () => {
    const executor = new LocalExecutor({ folder: await runsFolder() });
    const job = await executor.submit(whereAmI.with(1500));
    const controller = new AbortController();
    const waiting = job.result({ signal: controller.signal });
    controller.abort(new Error("gave up"));
    await expect(waiting).rejects.toThrow("gave up");
    expect((await job.result()).rank).toBe(0);
  });
});

describe("autoExecutor", () => {
  test("picks Slurm when squeue answers", async (ctx) => {
    needCluster(ctx);
    expect(await autoExecutor({ folder: await runsFolder() })).toBeInstanceOf(SlurmExecutor);
  });

  test("picks LocalExecutor where there is no Slurm (no squeue on PATH)", async () => {
    const saved = process.env.PATH;
    process.env.PATH = await runsFolder();
    try {
      const executor = await autoExecutor({ folder: await runsFolder(), time: 5 });
      expect(executor).toBeInstanceOf(LocalExecutor);
      // The fallback keeps each task's time limit.
      expect((executor as LocalExecutor).timeSeconds).toBe(300);
    } finally {
      process.env.PATH = saved;
    }
  });

  test("bad parameters are an error before any scheduler is asked: its transport runs nothing", async () => {
    class Counting extends LocalTransport {
      asked = 0;
      override run(...args: Parameters<LocalTransport["run"]>) {
        this.asked++;
        return super.run(...args);
      }
    }
    const transport = new Counting();
    await expect(autoExecutor({ folder: await runsFolder(), time: "soon", transport })).rejects.toThrow("Expected `time` to be minutes");
    expect(transport.asked).toBe(0);
  });
});
