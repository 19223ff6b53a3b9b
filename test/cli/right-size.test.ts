// `slurmkit suggest` and `rerun --right-size` on a real run folder with
// OUT_OF_MEMORY and TIMEOUT tasks: what they ask for then completes.
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { command, LocalTransport, loadJobs, SlurmExecutor, type Job } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { useResources } from "../fixtures/usage.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

async function cli(args: readonly string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await execa("node", [bin, ...args], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF, CI: "" } });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

const states = (jobs: readonly Job<unknown>[]) => Promise.all(jobs.map((j) => j.wait()));

describe("right-sizing from what tasks used", () => {
  test("a sweep with an OUT_OF_MEMORY and a TIMEOUT task: suggest asks for more of each, rerun --right-size gives it, and both then complete", { timeout: 420_000 }, async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    // Small, realistic requests: 100 MiB and one minute per task, in workers that hold each task to them.
    const executor = new SlurmExecutor({ folder, time: 1, mem: "100M" });
    const tasks = [
      // 120 MiB: over 100 with the runner's own, under 224 (twice 100, rounded up to 32 MiB steps).
      useResources.with({ mb: 120, cpuSeconds: 0.2, holdMs: 3000 }),
      // 75 s: over one minute, under two.
      command("/bin/sleep", ["75"]),
      useResources.with({ mb: 10, cpuSeconds: 0.5, holdMs: 1000 }),
      useResources.with({ mb: 10, cpuSeconds: 0.5, holdMs: 1000 }),
    ];
    const jobs = await executor.mapArray(tasks, { workers: 2, slots: 1 });
    expect(await states(jobs)).toEqual(["OUT_OF_MEMORY", "TIMEOUT", "COMPLETED", "COMPLETED"]);

    const text = await cli(["suggest", folder]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain("4 tasks ended, 4 measured, 1 OUT_OF_MEMORY, 1 TIMEOUT");
    expect(text.stdout).toContain("--slurm time=00:02:00 mem=224M cpus_per_task=1");
    expect(text.stdout).toContain('{ time: "00:02:00", mem: "224M", cpusPerTask: 1 }');
    expect(text.stdout).toMatch(/1 task ran out of memory: mem is at least 2x the 100 MiB/);
    expect(text.stdout).toMatch(/1 task ran out of time: time is at least 2x the 00:01:00/);
    const json = JSON.parse((await cli(["suggest", folder, "--json"])).stdout) as { submissions: Array<{ options: Record<string, unknown>; memPeakMb: { max: number } }> };
    const [suggestion] = json.submissions;
    expect(suggestion!.options).toEqual({ time: "00:02:00", mem: "224M", cpusPerTask: 1 });
    // The largest peak of the tasks that completed: 10 MiB held over the slot's Node.
    expect(suggestion!.memPeakMb.max).toBeGreaterThan(10);
    expect(suggestion!.memPeakMb.max).toBeLessThan(100);

    // The suggestion, as executor options, runs the two tasks that ran out ...
    const suggested = new SlurmExecutor({ folder: await runsFolder(), ...suggestion!.options });
    const again = await suggested.mapArray([tasks[0]!, tasks[1]!], { workers: 2, slots: 1 });
    // ... and so does rerun --right-size, each task with twice what it ran out of.
    const rerun = await cli(["rerun", folder, "--failed", "--right-size"]);
    expect(rerun.exitCode).toBe(0);
    expect(rerun.stdout).toMatch(/Rerunning 1 task of \S+ \(0\) as \S+: Slurm job \d+, mem 100 MiB -> 224 MiB/);
    expect(rerun.stdout).toMatch(/Rerunning 1 task of \S+ \(1\) as \S+: Slurm job \d+, time 00:01:00 -> 00:02:00/);
    const latest = await loadJobs(folder);
    expect(await states([...again, ...latest])).toEqual(Array(6).fill("COMPLETED"));
    const [oom] = latest;
    const usage = await oom!.usage();
    expect(usage?.requested).toMatchObject({ memMb: 224, timeSeconds: 60 });
    expect(usage!.memPeakMb!).toBeGreaterThan(120);
  });

  test("--right-size that cannot grow a task says which and why, and submits nothing", { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    // A task that had all of a node's memory (4000 MiB here) and ran out of it.
    const executor = new SlurmExecutor({ folder, time: 1, mem: "4000M" });
    const jobs = await executor.mapArray([useResources.with({ mb: 4100, cpuSeconds: 0, holdMs: 3000 })]);
    expect(await states(jobs)).toEqual(["OUT_OF_MEMORY"]);
    const r = await cli(["rerun", folder, "--failed", "--right-size"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("--right-size cannot grow this task, so nothing was submitted");
    expect(r.stderr).toContain("already the most a node of the partition has (4000 MiB)");
    expect((await loadJobs(folder)).map((j) => j.id)).toEqual(jobs.map((j) => j.id));
  });
});
