// Fault drills that kill Slurm's own daemons: slurmctld, and the slurmd of a
// node running a task. They run in the serial group, after every other test,
// and bring the cluster back (cluster.sh up) when they end.
import { execa } from "execa";
import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, onTestFinished, test } from "vitest";
import { JobEndedWithoutResultError, loadJobs, LocalTransport, SlurmExecutor, type WatcherHealth } from "../../src/index.js";
import { whereAmI } from "../fixtures/tasks.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { clusterScript, needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { FaultyTransport } from "../helpers/faults.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pid in one of the cluster's pid files (`<state>/run/<name>.pid`). */
async function daemonPid(slurmConf: string, name: string): Promise<number> {
  return Number((await readFile(join(dirname(dirname(slurmConf)), "run", `${name}.pid`), "utf8")).trim());
}

/** A local transport that times squeue calls, so a drill can show the client met the outage (squeue waits for a controller that is down). */
function timingTransport(): { transport: FaultyTransport; longestSqueueMs: () => number } {
  let longest = 0;
  const transport = new FaultyTransport(new LocalTransport(), {
    async run(program, _args, real) {
      const started = Date.now();
      const result = await real();
      if (program === "squeue") longest = Math.max(longest, Date.now() - started);
      return result;
    },
  });
  return { transport, longestSqueueMs: () => longest };
}

/** Makes slurmctld save its job state now (a held job submitted, then cancelled) and waits until the file is written after each. */
async function savedState(slurmConf: string): Promise<void> {
  const file = join(dirname(dirname(slurmConf)), "state", "slurmctld", "job_state");
  // A new cluster's slurmctld has saved nothing yet: no file is older than any save.
  const savedAt = () =>
    stat(file).then(
      (s) => s.mtimeMs,
      (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? 0 : Promise.reject(e)),
    );
  const saved = async (what: string, act: () => Promise<unknown>) => {
    const before = await savedAt();
    await act();
    await waitFor(`slurmctld to save its job state after ${what}`, async () => ((await savedAt()) > before ? true : undefined), 30_000);
  };
  let held = "";
  await saved("a submission", async () => (held = (await slurm("sbatch", ["--parsable", "--hold", "-o", "/dev/null", "--wrap", "true"])).stdout.trim()));
  await saved("a cancel", () => slurm("scancel", [held]));
}

describe("Slurm daemons killed under running tasks", { timeout: 420_000 }, () => {
  beforeEach(async () => {
    // The drills count on free nodes: jobs left by earlier tests end first.
    await waitFor("an empty queue", async () => ((await slurm("squeue", ["-h", "-o", "%i"])).stdout.trim() === "" ? true : undefined), 300_000);
  });

  afterEach(async () => {
    // Whatever happened, the daemons run again and both nodes are back in service.
    await execa("bash", [clusterScript, "up"], { reject: false });
  });

  test("slurmctld killed (SIGKILL) while tasks run and restarted 15 s later: every task completes and every result is read", async (ctx) => {
    const info = needCluster(ctx);
    const { transport, longestSqueueMs } = timingTransport();
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, transport });
    onTestFinished(() => executor.close());
    executor.watcher.setIntervals({ minMs: 500, maxMs: 2000 });
    const health: WatcherHealth[] = [];
    onTestFinished(executor.watcher.onHealth((e) => health.push(e)));
    // Four run at once (two per node), some ending about when slurmctld comes back; two wait for a free CPU.
    const ms = [20_000, 25_000, 35_000, 45_000, 2_000, 2_000];
    const jobs = await executor.mapArray(ms.map((m) => whereAmI.with(m)));
    await waitFor("four tasks running", async () => (jobs.filter((j) => j.state === "RUNNING").length >= 4 ? true : undefined), 90_000);
    // slurmctld saves its state on a submission, not when a job starts. A crash loses the starts since the last
    // save, and Slurm then kills those tasks itself (orphan steps): a save comes first, and no task starts after it.
    const arrayId = jobs[0]!.id.split("_")[0]!;
    const started = async () => (await slurm("squeue", ["-h", "-t", "all", "-j", arrayId, "-o", "%T"])).stdout.split("\n").filter((s) => s && s !== "PENDING").length;
    for (let before = await started(); ; ) {
      await savedState(info.slurmConf);
      const after = await started();
      if (after === before) break;
      before = after;
    }

    process.kill(await daemonPid(info.slurmConf, "slurmctld"), "SIGKILL");
    expect((await slurm("scontrol", ["ping"], { reject: false })).stdout).toMatch(/DOWN/);
    await sleep(15_000);
    await execa("bash", [clusterScript, "up"]);

    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map((r) => r.node)).toEqual(ms.map(() => expect.stringMatching(/^n[12]$/)));
    expect(jobs.map((j) => j.state)).toEqual(ms.map(() => "COMPLETED"));
    // The client met the outage, and any failing report it made was followed by a recovery.
    expect(longestSqueueMs()).toBeGreaterThan(5000);
    expect(health.length % 2).toBe(0);
    for (const [i, e] of health.entries()) expect(e.kind).toBe(i % 2 === 0 ? "failing" : "recovered");
  });

  test("the slurmd of a node running a task killed: that task ends NODE_FAIL within SlurmdTimeout plus two polls, and the other tasks complete", async (ctx) => {
    const info = needCluster(ctx);
    const config = (await slurm("scontrol", ["show", "config"])).stdout;
    const slurmdTimeoutS = Number(/^SlurmdTimeout\s*=\s*(\d+)/m.exec(config)?.[1]);
    expect(slurmdTimeoutS).toBe(20);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 10, cpusPerTask: 2 });
    onTestFinished(() => executor.close());
    const maxPollMs = 5000;
    executor.watcher.setIntervals({ minMs: 1000, maxMs: maxPollMs });
    // Each task takes a whole node: the first two start on different nodes, the third waits for one.
    const [victim, other, later] = await executor.mapArray([whereAmI.with(600_000), whereAmI.with(20_000), whereAmI.with(1_000)]);
    await waitFor("the first two tasks running", async () => (victim!.state === "RUNNING" && other!.state === "RUNNING" ? true : undefined), 90_000);
    const node = (await slurm("squeue", ["-h", "-j", victim!.id, "-o", "%N"])).stdout.trim();
    expect(node).toMatch(/^n[12]$/);

    const killedAt = Date.now();
    process.kill(await daemonPid(info.slurmConf, `slurmd-${node}`), "SIGKILL");
    expect(await victim!.wait()).toBe("NODE_FAIL");
    const elapsedS = (Date.now() - killedAt) / 1000;
    // The documented bound (README, "Failure behaviour"): SlurmdTimeout, a third of it for slurmctld's ping, its message
    // timeout, and two polls (a job that ended without a result is seen ended twice before it settles).
    expect(elapsedS).toBeLessThan(slurmdTimeoutS * (4 / 3) + 10 + (2 * maxPollMs) / 1000 + 5);
    const error = await victim!.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error).toMatchObject({ state: "NODE_FAIL", jobId: victim!.id });

    const survivor = node === "n1" ? "n2" : "n1";
    expect(await other!.result()).toEqual({ node: survivor, rank: 0 });
    expect(await later!.result()).toEqual({ node: survivor, rank: 0 });
    expect(victim!.state).toBe("NODE_FAIL");
    // A later process reads the same states back.
    const loaded = await loadJobs(folder);
    expect(await Promise.all(loaded.map((j) => j.wait()))).toEqual(["NODE_FAIL", "COMPLETED", "COMPLETED"]);
    // The shell user sees which node failed under the task.
    const status = await execa(process.execPath, [bin, "status", "--tasks", "--json", folder], { reject: false, env: { SLURM_CONF: info.slurmConf } });
    expect(status.exitCode).toBe(1);
    const { tasks } = JSON.parse(status.stdout) as { tasks: { state: string; host?: string }[] };
    expect(tasks.map((t) => [t.state, t.host])).toEqual([
      ["NODE_FAIL", node],
      ["COMPLETED", survivor],
      ["COMPLETED", survivor],
    ]);
  });
});
