// What suggest() and rightSize() ask for, from given figures: pure units.
import { describe, expect, test } from "vitest";
import { formatClock, rightSize, roundMemMb, suggest, type TaskFigures } from "../../src/report/right-size.js";
import { UsageCounter } from "../../src/report/usage-totals.js";

const done = (wallSeconds: number, cpuSeconds: number, memPeakMb: number): TaskFigures => ({ state: "COMPLETED", wallSeconds, cpuSeconds, memPeakMb });

describe("what to ask for next time", () => {
  test("time and memory cover the largest use with headroom; CPUs cover the 95th percentile of CPUs kept busy", () => {
    const figures = [...Array.from({ length: 99 }, (_, i) => done(100 + i, (100 + i) * 1.5, 300 + i)), done(400, 800, 900)];
    const s = suggest(figures, { cpus: 4, memMb: 4096, timeSeconds: 3600 });
    expect(s.wallSeconds).toEqual({ p50: 149, p95: 194, max: 400 });
    // 400 s × 1.25 = 500 s, in whole minutes.
    expect(s.timeSeconds).toBe(540);
    // 900 MiB × 1.2 = 1080, in 256 MiB steps above 1 GiB.
    expect(s.memMb).toBe(1280);
    // 1.5 CPUs busy at the 95th percentile, rounded up.
    expect(s.cpus).toBe(2);
    // A single-threaded task that kept its CPU busy needs one, not two; one that idled needs one too.
    expect(suggest([done(100, 95, 100)], { cpus: 4 }).cpus).toBe(1);
    expect(suggest([done(100, 5, 100)], { cpus: 4 }).cpus).toBe(1);
    expect(s.flags).toEqual(["time=00:09:00", "mem=1280M", "cpus_per_task=2"]);
    expect(s.options).toEqual({ time: "00:09:00", mem: "1280M", cpusPerTask: 2 });
    expect(s.notes.some((n) => n.startsWith("CPU efficiency 38%"))).toBe(true);
    expect(s.notes.some((n) => n.startsWith("memory: the largest peak, 900 MiB, is 22% of mem"))).toBe(true);
    expect(s.notes.some((n) => n.startsWith("time: the longest task took 11%"))).toBe(true);
  });

  test("tasks that ran out of memory or time get at least twice what they had, capped by the partition", () => {
    const figures: TaskFigures[] = [done(20, 10, 50), { state: "OUT_OF_MEMORY", wallSeconds: 5, cpuSeconds: 1, memPeakMb: 100 }, { state: "TIMEOUT", wallSeconds: 60, cpuSeconds: 59, memPeakMb: 30 }];
    const s = suggest(figures, { cpus: 1, memMb: 100, timeSeconds: 60 });
    expect(s).toMatchObject({ outOfMemory: 1, timedOut: 1, memMb: 224, timeSeconds: 120 });
    expect(s.notes).toContain("1 task ran out of memory: mem is at least 2x the 100 MiB they had");
    const capped = suggest(figures, { cpus: 1, memMb: 100, timeSeconds: 60 }, { maxTimeSeconds: 90, maxMemMb: 150 });
    expect(capped).toMatchObject({ memMb: 150, timeSeconds: 90 });
    expect(capped.notes).toContain("time is capped at the partition's MaxTime, 00:01:30: tasks that need longer must checkpoint");
  });

  test("rerun --right-size: twice the mem or time that ran out, capped; one that cannot grow says why", () => {
    expect(rightSize("OUT_OF_MEMORY", { cpus: 1, memMb: 100 }, {})).toEqual({ parameters: { mem: "224M" }, note: "mem 100 MiB -> 224 MiB" });
    expect(rightSize("TIMEOUT", { cpus: 1, timeSeconds: 3600 }, { maxTimeSeconds: 5400 })).toEqual({ parameters: { time: "01:30:00" }, note: "time 01:00:00 -> 01:30:00 (the partition's MaxTime)" });
    expect(rightSize("FAILED", { cpus: 1, memMb: 100 }, {})).toBeUndefined();
    expect(() => rightSize("OUT_OF_MEMORY", { cpus: 1, memMb: 4000 }, { maxMemMb: 4000 })).toThrow("already the most a node of the partition has (4000 MiB)");
    expect(() => rightSize("TIMEOUT", { cpus: 1 }, {})).toThrow("pass --slurm time=");
  });

  test("nothing measured, nothing suggested, and it says so", () => {
    const s = suggest([{ state: "COMPLETED", wallSeconds: 3, cpuSeconds: undefined, memPeakMb: undefined }], undefined);
    expect(s.flags).toEqual([]);
    expect(s.notes).toEqual(["no task was measured (they ran before slurmkit recorded usage, or never started): nothing to suggest"]);
  });

  test("units: clock times and memory steps", () => {
    expect(formatClock(59.2)).toBe("00:01:00");
    expect(formatClock(90061)).toBe("25:01:01");
    expect([roundMemMb(1), roundMemMb(33), roundMemMb(1024), roundMemMb(1025)]).toEqual([32, 64, 1024, 1280]);
  });

  test("usage totals: CPU used against held, the largest and mean peak against mem", () => {
    const c = new UsageCounter({ cpus: 2, memMb: 1000, gpus: 1 });
    c.add(10_000, 15_000, 200 * 1024);
    c.add(30_000, 15_000, Number.NaN);
    c.add(20_000, 30_000, 400 * 1024);
    expect(c.totals()).toEqual({
      measured: 3,
      cpuSeconds: 60,
      heldCpuSeconds: 120,
      cpuEfficiency: 0.5,
      wallSeconds: 60,
      maxWallSeconds: 30,
      memPeakMb: 400,
      memMeanPeakMb: 300,
      requested: { cpus: 2, memMb: 1000, gpus: 1 },
      memEfficiency: 0.4,
      heldGpuSeconds: 60,
    });
  });
});
