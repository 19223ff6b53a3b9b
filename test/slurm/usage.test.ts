// What tasks used, measured on the real cluster's nodes: CPU time, peak
// memory, node and slot, one per element and packed, against tasks whose use
// is known. Tolerances (documented in the README, "See what ran"):
// - CPU time: the task's own, plus at most 0.3 s of the runner's work for it
//   (importing the task module, reading its record), in 10 ms ticks;
// - peak memory: what the task held, within -8 / +16 MiB, over a twin task
//   that holds nothing (the runner or slot process, about 40-60 MiB, is in
//   both: it counts against `mem` as it would in an element of its own).
import { beforeAll, describe, expect, test } from "vitest";
import { command, LocalTransport, SlurmExecutor, type Job, type MapArrayOptions, type TaskUsage } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { useResources } from "../fixtures/usage.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

/** A command of `procs` Python processes, each holding `mb` MiB and burning `cpu` s of its own CPU time, then sleeping `sleep` s. */
const python = (mb: number, cpu: number, procs = 1, sleep = 1.5) =>
  command("/bin/bash", [
    "-c",
    `for _ in $(seq ${procs}); do /usr/bin/python3 -c 'import time
b = b"x" * (${mb} << 20)
while time.process_time() < ${cpu}: pass
time.sleep(${sleep})' & done; wait`,
  ]);

const usages = async (jobs: readonly Job<unknown>[]): Promise<TaskUsage[]> => {
  expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(jobs.map(() => "COMPLETED"));
  return Promise.all(jobs.map(async (j) => (await j.usage())!));
};

const ways: Array<[string, MapArrayOptions]> = [
  ["one per element", {}],
  ["packed (one worker, one slot)", { workers: 1, slots: 1 }],
];

describe("usage per task, measured on the node", () => {
  for (const [name, packing] of ways) {
    test(`${name}: a task holding 80 MiB that burns 2 s of CPU shows both, a function task and a command alike`, { timeout: 240_000 }, async (ctx) => {
      needCluster(ctx);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "200M" });
      // Each twin that holds nothing first: in a worker, the next task's slot then carries nothing of the last.
      const jobs = await executor.mapArray(
        [useResources.with({ mb: 0, cpuSeconds: 0, holdMs: 1500 }), useResources.with({ mb: 80, cpuSeconds: 2, holdMs: 1500 }), python(0, 0), python(80, 2)],
        packing,
      );
      const [f0, f80, c0, c80] = await usages(jobs);
      for (const [idle, busy] of [
        [f0!, f80!],
        [c0!, c80!],
      ] as const) {
        expect(busy.cpuSeconds).toBeGreaterThanOrEqual(2 - 0.03);
        expect(busy.cpuSeconds).toBeLessThanOrEqual(2.3);
        expect(idle.cpuSeconds).toBeLessThanOrEqual(0.3);
        expect(busy.memPeakMb! - idle.memPeakMb!).toBeGreaterThanOrEqual(80 - 8);
        expect(busy.memPeakMb! - idle.memPeakMb!).toBeLessThanOrEqual(80 + 16);
        expect(busy.memSamples).toBeGreaterThanOrEqual(2);
        expect(busy.wallSeconds).toBeGreaterThanOrEqual(busy.cpuSeconds! + 1.4);
        expect(busy.cpuEfficiency).toBeCloseTo(busy.cpuSeconds! / busy.wallSeconds, 5);
      }
      for (const [k, u] of [f0!, f80!, c0!, c80!].entries()) {
        if (packing.workers) expect(u.accounting).toBeUndefined();
        else {
          // sacct's figures for the element agree: its CPU adds the batch shell's and the runner's start (Node, the bundle).
          const a = u.accounting!;
          expect(a.cpuSeconds).toBeGreaterThanOrEqual(u.cpuSeconds! - 0.03);
          expect(a.cpuSeconds).toBeLessThanOrEqual(u.cpuSeconds! + 0.5);
          expect(a.elapsedSeconds).toBeGreaterThanOrEqual(Math.floor(u.wallSeconds));
          // Sampled every second here (JobAcctGatherFrequency=task=1), the batch step's shell included.
          if (a.maxRssMb !== undefined && k % 2 === 1) expect(Math.abs(a.maxRssMb - u.memPeakMb!)).toBeLessThanOrEqual(16);
        }
        expect(["n1", "n2"]).toContain(u.node);
        expect(u.jobId).toBe(jobs[k]!.id);
        expect(u.requested).toEqual({ cpus: 1, memMb: 200, timeSeconds: 120 });
        expect(u.slot).toBe(packing.workers ? 0 : undefined);
        expect(u.gpu).toBeUndefined();
      }
      // Not yet ended: no usage.
      const pending = await executor.mapArray([python(0, 0, 1, 30)], packing);
      expect(await pending[0]!.usage()).toBeUndefined();
      await pending[0]!.cancel();
    });
  }

  test("a task that keeps both CPUs of its 2-CPU slot busy shows about twice as much CPU time as wall time", { timeout: 240_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "200M", cpusPerTask: 2 });
    for (const [, packing] of ways) {
      // One at a time: the two nodes share this machine's cores.
      const [u] = await usages(await executor.mapArray([python(0, 1.5, 2, 0)], packing));
      expect(u!.requested?.cpus).toBe(2);
      expect(u!.cpuSeconds).toBeGreaterThanOrEqual(3 - 0.05);
      expect(u!.cpuSeconds).toBeLessThanOrEqual(3.3);
      expect(u!.cpuSeconds! / u!.wallSeconds).toBeGreaterThan(1.5);
      expect(u!.cpuSeconds! / u!.wallSeconds).toBeLessThanOrEqual(2.05);
      expect(u!.cpuEfficiency).toBeGreaterThan(0.75);
    }
  });
});
