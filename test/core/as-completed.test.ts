// asCompleted and whenAborted with local processes (the cluster's cases are in test/slurm/as-completed.test.ts).
import { getEventListeners } from "node:events";
import { describe, expect, test } from "vitest";
import { whenAborted } from "../../src/base/abort.js";
import { asCompleted, command, type Job, LocalExecutor } from "../../src/index.js";
import { runsFolder } from "../helpers/runs-folder.js";

/** Local tasks that end in the order 1, 2, 0: sleeps of 1.6 s, 0.1 s and 0.8 s. */
async function sleepers(): Promise<Job<{ exitCode: number }>[]> {
  const executor = new LocalExecutor({ folder: await runsFolder(), maxParallel: 3 });
  executor.watcher.setIntervals({ minMs: 100, maxMs: 200 });
  return executor.mapArray(["1.6", "0.1", "0.8"].map((s) => command("sleep", [s])));
}

describe("asCompleted with local jobs", () => {
  test("yields in completion order; an abort and a break end the loop, and the jobs go on", async () => {
    const jobs = await sleepers();
    const order: number[] = [];
    for await (const job of asCompleted(jobs)) order.push(jobs.indexOf(job));
    expect(order).toEqual([1, 2, 0]);

    const again = await sleepers();
    const stop = new AbortController();
    const seen: number[] = [];
    for await (const job of asCompleted(again, { signal: stop.signal })) {
      seen.push(again.indexOf(job));
      stop.abort();
    }
    expect(seen).toEqual([1]);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
    const more: number[] = [];
    for await (const job of asCompleted(again)) {
      more.push(again.indexOf(job));
      break;
    }
    expect(more).toEqual([1]);
    expect(again[0]!.done()).toBe(false);
    expect(await again[0]!.wait()).toBe("COMPLETED");
  });
});

describe("whenAborted", () => {
  test("one listener per signal while waits are on it, none once they ended; an aborted signal calls back at once", async () => {
    const controller = new AbortController();
    const calls: number[] = [];
    const stops = [1, 2, 3].map((n) => whenAborted(controller.signal, () => calls.push(n)));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    for (const stop of stops) stop();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    const stopTwo = whenAborted(controller.signal, () => calls.push(2));
    whenAborted(controller.signal, () => calls.push(4));
    stopTwo();
    controller.abort();
    expect(calls).toEqual([4]);
    whenAborted(controller.signal, () => calls.push(5));
    await Promise.resolve();
    expect(calls).toEqual([4, 5]);
  });
});
