// status and results on packed submissions: a task whose worker's stream
// holds its completed result is read from the stream, with no future made
// for it (loadRun), and reported exactly as its future reports it.
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, inject, test } from "vitest";
import { LocalTransport, loadJobs, SlurmExecutor, TaskFailedError, type Job } from "../../src/index.js";
import { runOf } from "../../src/core/job.js";
import { loadRun } from "../../src/sdk/load-jobs.js";
import { toJson } from "../../src/report/json.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { flaky } from "../fixtures/sweep.js";
import { lingering } from "../fixtures/tasks.js";
import { needCluster } from "../helpers/cluster.js";
import { FaultyTransport } from "../helpers/faults.js";
import { runsFolder } from "../helpers/runs-folder.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

async function cli(args: readonly string[]): Promise<{ stdout: string; exitCode: number }> {
  const r = await execa("node", [bin, ...args], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF, CI: "" } });
  return { stdout: r.stdout, exitCode: r.exitCode ?? -1 };
}

const FAILING = [2, 5];
/** Values whose successors msgpack writes in every width: fixints, uint8, int8, a float, int64, and beyond 2^53. */
const SCALARS = [0, 126, 127, -40, 1.5, 2 ** 40, 2 ** 53];

describe("status and results on packed submissions read completed tasks from their streams", { timeout: 240_000 }, () => {
  let folder: string;
  let jobs: Job<unknown>[];

  beforeAll(async () => {
    if (!inject("cluster").available) return;
    slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
    folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2, mem: "100M" });
    const objects = await executor.mapArray(
      Array.from({ length: 8 }, (_, i) => flaky.with({ i, fail: FAILING.includes(i), unless: "/nonexistent" })),
      { workers: 2 },
    );
    const scalars = await executor.mapArray(
      SCALARS.map((x) => lingering.with(x)),
      { workers: 1 },
    );
    jobs = [...objects, ...scalars];
    await Promise.all(jobs.map((j) => j.wait()));
  }, 240_000);

  test("only the tasks without a completed result in a stream get a future", async (ctx) => {
    needCluster(ctx);
    expect(jobs.map((j) => j.state)).toEqual([...Array.from({ length: 8 }, (_, i) => (FAILING.includes(i) ? "FAILED" : "COMPLETED")), ...SCALARS.map(() => "COMPLETED")]);
    const parts = (await loadRun(folder, new LocalTransport()))!;
    expect(parts.map((p) => ({ tasks: p.taskCount, futures: p.jobs.map((j) => j.taskIndex), streamed: p.streamed?.settled.reduce((n, x) => n + x, 0) }))).toEqual([
      { tasks: 8, futures: FAILING, streamed: 6 },
      { tasks: SCALARS.length, futures: [], streamed: SCALARS.length },
    ]);
  });

  test("a streams folder that cannot be read at first: every task gets a future, and they settle as loadJobs's do", async (ctx) => {
    needCluster(ctx);
    let refused = 0;
    const faulty = new FaultyTransport(new LocalTransport(), {
      list: async (path, real) => {
        if (path.endsWith("/streams") && refused === 0) {
          refused++;
          throw Object.assign(new Error(`EACCES: permission denied, scandir '${path}'`), { code: "EACCES" });
        }
        return real();
      },
    });
    const parts = (await loadRun(folder, faulty))!;
    expect(refused).toBe(1);
    // The first submission's streams could not be listed: all its tasks get futures. The second's could.
    expect(parts.map((p) => ({ futures: p.jobs.length, streamed: p.streamed?.settled.reduce((n, x) => n + x, 0) }))).toEqual([
      { futures: 8, streamed: undefined },
      { futures: 0, streamed: SCALARS.length },
    ]);
    const states = await Promise.all(parts[0]!.jobs.map((j) => j.wait()));
    expect(states).toEqual(jobs.slice(0, 8).map((j) => j.state));
    expect(states.filter((s) => s === "FAILED")).toHaveLength(FAILING.length);
  });

  test("status counts them as the futures do: the same summaries as status --tasks, which makes a future per task", async (ctx) => {
    needCluster(ctx);
    const counted = await cli(["status", folder, "--json"]);
    const viewed = await cli(["status", folder, "--json", "--tasks"]);
    expect(counted.exitCode).toBe(1);
    const summaries = (text: string) => (JSON.parse(text) as { submissions: Array<{ states: Record<string, number> }> }).submissions;
    expect(summaries(counted.stdout).map((s) => s.states)).toEqual([{ COMPLETED: 6, FAILED: 2 }, { COMPLETED: SCALARS.length }]);
    expect(summaries(counted.stdout)).toEqual(summaries(viewed.stdout));
  });

  test("results gives each task's row as its future says: id, state, host, times, and its value or error", async (ctx) => {
    needCluster(ctx);
    const out = await cli(["results", folder]);
    expect(out.exitCode).toBe(0);
    const rows = out.stdout.split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    // Futures made the usual way, one per task, in a fresh load.
    const loaded = await loadJobs(folder);
    await Promise.all(loaded.map((j) => j.wait()));
    expect(rows).toHaveLength(loaded.length);
    const expected = await Promise.all(
      loaded.map(async (job, index) => {
        const state = await job.wait();
        const ran = runOf(job);
        const row: Record<string, unknown> = { index, task: job.taskIndex, id: job.id, state, host: ran?.host, startedAt: ran?.startedAt, endedAt: ran?.endedAt };
        if (state === "COMPLETED") row.result = JSON.parse(toJson(await job.result()));
        // A failed task's row names the error its task threw.
        else row.error = await job.result().then(String, (e: Error) => (e instanceof TaskFailedError ? e.remote.name : e.name));
        return row;
      }),
    );
    expect(
      rows.map((r) => ({
        index: r.index,
        task: r.task,
        id: r.id,
        state: r.state,
        host: r.host,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        ...("result" in r ? { result: r.result } : { error: (r.error as { name: string }).name }),
      })),
    ).toEqual(expected);
    expect(rows.slice(8).map((r) => r.result)).toEqual(SCALARS.map((x) => x + 1));
    expect(rows.filter((r) => r.state === "FAILED").map((r) => r.task)).toEqual(FAILING);
    const failed = await cli(["results", folder, "--failed"]);
    expect(failed.stdout.split("\n").map((l) => (JSON.parse(l) as { task: number }).task)).toEqual(FAILING);
  });
});
