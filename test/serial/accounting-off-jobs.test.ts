import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { command, JobEndedWithoutResultError, LocalTransport, SlurmExecutor } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { Scheduler } from "../../src/slurm/scheduler.js";
import { hog, square } from "../fixtures/tasks.js";
import { stubborn } from "../fixtures/requeue.js";
import { preemptWhenRunning } from "../helpers/requeue.js";
import { readFile } from "node:fs/promises";
import { clusterScript, needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

// With accounting off, sacct fails: squeue and the runner's files must decide.
describe("SlurmExecutor with accounting off", () => {
  beforeAll(async () => {
    slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
    if (process.getuid?.() === 0) await execa("bash", [clusterScript, "accounting", "off"], { reject: false });
  });
  afterAll(async () => {
    if (process.getuid?.() === 0) await execa("bash", [clusterScript, "accounting", "on"], { reject: false });
  });

  test("sacct really fails here", async (ctx) => {
    needCluster(ctx);
    expect(await new Scheduler(new LocalTransport()).accounting(["1"])).toBeUndefined();
  });

  test("results come back", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5 });
    const jobs = await executor.mapArray([2, 3].map((x) => square.with(x)));
    expect((await Promise.all(jobs.map((j) => j.result()))).map((r) => r.square)).toEqual([4, 9]);
    const done = await executor.submit(command("true"));
    expect(await done.result()).toEqual({ exitCode: 0 });
  });

  test("a job killed over its memory limit fails with JobEndedWithoutResultError and the log tail", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, mem: "150M" });
    const job = await executor.submit(hog.with(600));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("OUT_OF_MEMORY");
    expect(error.logTail).toContain("Exceeded job memory limit");
  });

  test("preemption without a checkpoint ends PREEMPTED, typed, from squeue alone", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), partition: "low", time: 10 });
    const job = await executor.submit(stubborn.with(600));
    await preemptWhenRunning(job, () =>
      readFile(job.paths.state).then(
        () => true,
        () => false,
      ),
    );
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("PREEMPTED");
    expect(error.logTail).toContain("DUE TO PREEMPTION");
  });

  test("a broken runner path fails with JobEndedWithoutResultError and the log tail", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, nodeBinary: "/nonexistent/node" });
    const job = await executor.submit(square.with(1));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("FAILED");
    expect(error.logTail).toContain("/nonexistent/node");
  });
});
