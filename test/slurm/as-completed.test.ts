// asCompleted on the real cluster: futures in the order they settle, for one
// task per element, packed tasks and futures from loadJobs; an abort or a
// break ends the loop and leaves the jobs running.
import { dirname } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { asCompleted, type Job, LocalTransport, loadJobs, ParameterError, SlurmExecutor } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { whereAmI } from "../fixtures/tasks.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 300, maxMs: 1000 });
});

/** Sleeps in ms: task 1 ends first, then task 2, then task 0, seconds apart. */
const SLEEPS = [9_000, 500, 4_500];

/** The task indexes in the order asCompleted yields their jobs. */
async function order(jobs: readonly Job<unknown>[], signal?: AbortSignal): Promise<number[]> {
  const seen: number[] = [];
  for await (const job of asCompleted(jobs, signal ? { signal } : {})) seen.push(jobs.indexOf(job));
  return seen;
}

describe("asCompleted yields futures as they settle", { timeout: 240_000 }, () => {
  test("one task per element: in completion order, each once, each settled when yielded", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "100M" });
    const jobs = await executor.mapArray(SLEEPS.map((ms) => whereAmI.with(ms)));
    const yielded: typeof jobs = [];
    for await (const job of asCompleted(jobs)) {
      expect(job.done()).toBe(true);
      yielded.push(job);
    }
    expect(yielded.map((j) => jobs.indexOf(j))).toEqual([1, 2, 0]);
    expect(yielded.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);
    // Settled already: given back at once, in the order given.
    expect(await order([jobs[2]!, jobs[0]!, jobs[2]!])).toEqual([0, 1]);
  });

  test("packed tasks, and the same tasks as loadJobs gives them in another client", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "100M" });
    const jobs = await executor.mapArray(
      SLEEPS.map((ms) => whereAmI.with(ms)),
      { workers: 1, slots: 2 },
    );
    const loaded = await loadJobs(dirname(dirname(jobs[0]!.paths.result)));
    const [packed, reloaded] = await Promise.all([order(jobs), order(loaded)]);
    expect(packed).toEqual([1, 2, 0]);
    expect(reloaded).toEqual([1, 2, 0]);
  });

  test("an abort ends the loop without an error, and a break too; the jobs go on and complete", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "100M" });
    const jobs = await executor.mapArray(SLEEPS.map((ms) => whereAmI.with(ms)));
    const stop = new AbortController();
    const seen: number[] = [];
    for await (const job of asCompleted(jobs, { signal: stop.signal })) {
      seen.push(jobs.indexOf(job));
      stop.abort();
    }
    expect(seen).toEqual([1]);
    expect(jobs[0]!.done()).toBe(false);
    // A loop left with break stops waiting as well.
    const more: number[] = [];
    for await (const job of asCompleted(jobs)) {
      more.push(jobs.indexOf(job));
      if (more.length === 2) break;
    }
    expect(more).toEqual([1, 2]);
    expect(jobs[0]!.done()).toBe(false);
    expect(await jobs[0]!.wait()).toBe("COMPLETED");
    // An aborted signal yields nothing.
    expect(await order(jobs, AbortSignal.abort())).toEqual([]);
  });

  test("something that is not a job is a ParameterError naming its place", async () => {
    const iterator = asCompleted([42 as unknown as Job<unknown>]);
    await expect(iterator.next()).rejects.toThrow(ParameterError);
    await expect(asCompleted([42 as unknown as Job<unknown>]).next()).rejects.toThrow(/item 0 is number/);
  });
});
