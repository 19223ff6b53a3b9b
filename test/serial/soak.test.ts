// The soak: 100,000 packed tasks while workers are SIGKILLed at random and
// slurmctld restarts once. Every task ends once, with its own result or, when
// its worker died under it, a failure; a task runs again only when a worker
// was killed while it ran. It runs in the serial group (it restarts
// slurmctld) and brings the cluster back when it ends.
// SLURMKIT_SOAK_TASKS sets the task count.
import { execa } from "execa";
import { mkdtemp, open, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, onTestFinished, test } from "vitest";
import { JobEndedWithoutResultError, loadJobs, SlurmExecutor, type JobState } from "../../src/index.js";
import { parseRecords } from "../../src/protocol/record-stream.js";
import { decodeTaskRecord } from "../../src/protocol/task-stream.js";
import { marked } from "../fixtures/tasks.js";
import { clusterScript, needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { stopController } from "../helpers/controller.js";
import { runsFolder } from "../helpers/runs-folder.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const N = Number(process.env.SLURMKIT_SOAK_TASKS ?? "100000");
const KILLS = 6;

/** A seeded generator, so that a failing soak can be run again the same way. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

describe("the soak", { timeout: 1_200_000 }, () => {
  afterEach(async () => {
    await execa("bash", [clusterScript, "up"], { reject: false });
  });

  test(`${N.toLocaleString("en")} packed tasks, ${KILLS} workers SIGKILLed at random and one slurmctld restart: every task ends once, and runs again only after a kill under it`, async (ctx) => {
    const info = needCluster(ctx);
    await waitFor("an empty queue", async () => ((await slurm("squeue", ["-h", "-o", "%i"])).stdout.trim() === "" ? true : undefined), 300_000);
    const marks = join(await mkdtemp(join(tmpdir(), "slurmkit-soak-")), "marks");
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, cpusPerTask: 1, mem: "100M" });
    onTestFinished(() => executor.close());
    executor.watcher.setIntervals({ minMs: 500, maxMs: 2000, resultGraceMs: 2000 });
    const t0 = Date.now();
    const jobs = await executor.mapArray(
      Array.from({ length: N }, (_, i) => marked.with({ i, marks })),
      { workers: "auto" },
    );
    const dir = dirname(dirname(jobs[0]!.paths.result));
    let settled = 0;
    const states = Promise.all(jobs.map((j) => j.wait().finally(() => settled++)));

    // Progress, from the marks the tasks append as they start (not from the client's polls).
    const marksFile = await open(marks, "a+");
    onTestFinished(() => marksFile.close());
    let started = 0;
    let offset = 0;
    const progress = async () => {
      const { buffer, bytesRead } = await marksFile.read({ buffer: Buffer.alloc(1 << 20), position: offset });
      offset += bytesRead;
      for (let i = 0; i < bytesRead; i++) if (buffer[i] === 10) started++;
      return started / N;
    };
    // Kill k when about k/(KILLS + 2) of the tasks have started, of a worker chosen at random; slurmctld restarts
    // (SIGTERM, 5 s down, then up) after the second kill while the run and the kills go on.
    const random = seeded(20261204);
    /** Killed workers, as their array element (`A_w`): what the tasks' marks name. */
    const killed = new Set<string>();
    let restart: Promise<number> | undefined;
    while (killed.size < KILLS && settled < N) {
      await sleep(200);
      if ((await progress()) < (killed.size + 1 + random() * 0.5) / (KILLS + 2)) continue;
      const { stdout } = await execa("pgrep", ["-f", "--", `${dir} --worker`], { reject: false });
      const pids = stdout.split("\n").filter(Boolean).map(Number);
      if (pids.length === 0) continue;
      const victim = pids[Math.floor(random() * pids.length)]!;
      // The element a pid is (its environment), read before the kill; a worker that exited meanwhile is skipped.
      const environ = await readFile(`/proc/${victim}/environ`, "utf8").catch(() => "");
      const env = Object.fromEntries(environ.split("\0").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      if (!env.SLURM_ARRAY_JOB_ID) continue;
      try {
        process.kill(victim, "SIGKILL");
      } catch {
        continue;
      }
      killed.add(`${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`);
      if (killed.size === 2) {
        restart = (async () => {
          await stopController(info.slurmConf);
          const at = Date.now() - t0;
          await sleep(5000);
          await execa("bash", [clusterScript, "up"]);
          return at;
        })();
      }
    }
    const restartedAt = (await restart) ?? 0;
    const ended: JobState[] = await states;
    const seconds = (Date.now() - t0) / 1000;
    expect(killed.size).toBe(KILLS);
    expect(restartedAt).toBeGreaterThan(0);

    // Runs, from the marks: each task's runs, and under which worker.
    const runs = new Map<number, string[]>();
    for (const line of (await readFile(marks, "utf8")).split("\n")) {
      if (!line) continue;
      const [i, worker] = line.split(" ") as [string, string];
      runs.set(Number(i), [...(runs.get(Number(i)) ?? []), worker]);
    }
    // Results, from every worker's stream: how many each task has.
    const resultsOf = new Uint8Array(N);
    const streams = join(dir, "streams");
    for (const f of (await readdir(streams)).filter((f) => f.endsWith(".rec"))) {
      for (const payload of parseRecords(await readFile(join(streams, f))).records) {
        const r = decodeTaskRecord(payload, f);
        if ("result" in r) resultsOf[r.index]!++;
      }
    }

    const completed = ended.filter((s) => s === "COMPLETED").length;
    const failed = ended.map((s, i) => (s === "COMPLETED" ? -1 : i)).filter((i) => i >= 0);
    const twice = [...runs.values()].filter((r) => r.length > 1).length;
    const values = await Promise.all(jobs.filter((j) => j.state === "COMPLETED").map((j) => j.result()));
    const errors = await Promise.all(failed.map((i) => jobs[i]!.result().catch((e: unknown) => e)));
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as { arrays: unknown[] };
    console.log(
      `soak: ${N.toLocaleString("en")} tasks in ${seconds.toFixed(1)} s; ${KILLS} workers SIGKILLed, slurmctld stopped at ${(restartedAt / 1000).toFixed(1)} s and started 5 s later; ` +
        `${completed.toLocaleString("en")} completed, ${failed.length} failed with a killed worker (${failed.filter((i) => !runs.has(i)).length} of them never ran), ${twice} ran twice, ${manifest.arrays.length} arrays of workers`,
    );

    // Every task ended, once: a completed one has exactly one result, its own; a failed one none, and it failed with its worker.
    expect(completed + failed.length).toBe(N);
    expect(values).toEqual(jobs.filter((j) => j.state === "COMPLETED").map((j) => j.taskIndex * 2));
    expect(ended.map((s, i) => (s === "COMPLETED" ? resultsOf[i] : 1 - resultsOf[i]!))).toEqual(ended.map(() => 1));
    expect(errors.filter((e) => !(e instanceof JobEndedWithoutResultError))).toEqual([]);
    // A task that did not complete ran last under a killed worker, or never ran (workers died holding it more than MAX_DEATHS times);
    // a task that ran more than once ran under a killed worker every time but its last.
    expect(failed.filter((i) => runs.has(i) && !killed.has(runs.get(i)!.at(-1)!))).toEqual([]);
    expect([...runs].filter(([, r]) => r.slice(0, -1).some((w) => !killed.has(w)))).toEqual([]);
    // Each completed task ran; failures are few (a killed worker's running tasks, and tasks kept after MAX_DEATHS).
    expect(jobs.filter((j) => j.state === "COMPLETED" && !runs.has(j.taskIndex)).map((j) => j.taskIndex)).toEqual([]);
    expect(failed.length).toBeLessThanOrEqual(KILLS * 4);
    // A fresh reader, as a later process would, sees the same ends.
    const reloaded = await loadJobs(dir);
    expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(ended);
  });
});
