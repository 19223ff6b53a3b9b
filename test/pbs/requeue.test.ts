// Time limits, checkpoints and requeues on the OpenPBS test server. PBS sends
// no warning before the walltime: the batch script sends its own, and the
// runner requeues a checkpointed task with qrerun (the tests run as root, a
// PBS manager; see the README for sites where users may not qrerun).
import { execa } from "execa";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { LocalTransport, PbsExecutor } from "../../src/index.js";
import { pbsWatcher } from "../../src/pbs/watch.js";
import { environment, patient, ranked, resumable } from "../fixtures/requeue.js";
import { needPbs } from "../helpers/pbs.js";
import { runsFolder } from "../helpers/runs-folder.js";

const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

beforeAll(() => {
  pbsWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

describe("PBS time limits", () => {
  test("a task over its walltime checkpoints at the script's own warning, is rerun under the same id, resumes and completes; loadJobs in a new process follows it", async (ctx) => {
    const pbs = needPbs(ctx);
    // One minute: the warning comes 30 s before the walltime (PBS's timer is exact, so the lead needs no room for Slurm's early minute).
    const executor = new PbsExecutor({ folder: await runsFolder(), time: 1, mem: "200M" });
    const [job] = await executor.mapArray([resumable.with({ step: 0, endings: [] })]);
    const id = job!.id;
    const folder = dirname(dirname(job!.paths.result));
    const reloaded = execa(tsx, [join(fixtures, "reload.mts"), folder], { env: { PATH: `${pbs.bin}:${process.env.PATH}` } });
    // restarts is 0: PBS tells a job nothing of its reruns (its run_count is on the server only); attempts() counts them.
    expect(await job!.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 0 });
    expect(job!.id).toBe(id);
    const attempts = await job!.attempts();
    expect(attempts.map((a) => [a.attempt, a.ended, a.requeued])).toEqual([
      [0, "TIMEOUT", true],
      [1, "COMPLETED", false],
    ]);
    const stdout = await job!.stdout();
    expect(stdout).toContain("attempt 0 starts at step 0\nattempt 0 warned: TIMEOUT\n");
    expect(stdout).toMatch(/===== slurmkit: task 0, attempt 1, on \S+ at [^\n]+ =====\nattempt 1 starts at step 1\n/);
    // The runner says it asks first: qrerun from inside the job may end it before it can say more.
    expect(await job!.stderr()).toContain("asks for a requeue after attempt 0 (TIMEOUT)");
    const [seen] = JSON.parse((await reloaded).stdout) as Array<{ id: string; state: string; value?: unknown }>;
    expect(seen).toEqual({ id, state: "COMPLETED", value: { resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 0 } });
  });

  test("submit(): a checkpointing task over its walltime is rerun too (the job is left rerunnable for qrerun)", async (ctx) => {
    needPbs(ctx);
    const executor = new PbsExecutor({ folder: await runsFolder(), time: 1, mem: "200M" });
    const job = await executor.submit(resumable.with({ step: 0, endings: [] }));
    expect(await job.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 0 });
    expect((await job.attempts()).map((a) => [a.attempt, a.ended, a.requeued])).toEqual([
      [0, "TIMEOUT", true],
      [1, "COMPLETED", false],
    ]);
  });

  test("the warning comes from the script, lead seconds before the walltime, and not in a task's first half minute", async (ctx) => {
    needPbs(ctx);
    const executor = new PbsExecutor({ folder: await runsFolder(), time: 1, mem: "200M" });
    const [job] = await executor.mapArray([patient.with(40)]);
    const { warnedAfterMs } = await job!.result();
    // 60 s walltime, 30 s lead: at about 30 s into the job.
    expect(warnedAfterMs).not.toBeNull();
    expect(warnedAfterMs!).toBeGreaterThan(25_000);
    expect(warnedAfterMs!).toBeLessThan(35_000);
  });

  test("two ranks: each warns itself when the batch shell would be warned, both are stopped before the rerun, and only rank 0's checkpoint decides", async (ctx) => {
    needPbs(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-pbs-ranks-"));
    const executor = new PbsExecutor({ folder: await runsFolder(), ntasksPerNode: 2, time: 1, mem: "400M" });
    const job = await executor.submit(ranked.with({ step: 0, endings: [], dir }));
    // Attempt 1 finds neither of attempt 0's processes alive.
    expect(await job.result()).toEqual({ attempt: 1, rank: 0, earlier: 2, alive: [], endings: ["TIMEOUT"] });
    const warned = (await readdir(dir)).filter((n) => n.startsWith("warned-")).sort();
    expect(warned).toEqual(["warned-0", "warned-1"]);
    for (const name of warned) expect(await readFile(join(dir, name), "utf8")).toBe("TIMEOUT");
    expect((await job.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["TIMEOUT", true],
      ["COMPLETED", false],
    ]);
  });

  test("two ranks whose warning came while setup ran: each rank starts warned, and none dies of the signal", async (ctx) => {
    needPbs(ctx);
    // A one-minute job is warned at 30 s; setup takes 40.
    const executor = new PbsExecutor({ folder: await runsFolder(), ntasksPerNode: 2, time: 1, mem: "400M", setup: ["sleep 40"] });
    const job = await executor.submit(patient.with(3));
    expect(await job.results()).toEqual([{ warnedAfterMs: 0 }, { warnedAfterMs: 0 }]);
    expect(await job.wait()).toBe("COMPLETED");
  });

  test("jobEnvironment() on PBS: the job's ids, one rank on its node, and the CPUs it was given", async (ctx) => {
    needPbs(ctx);
    const executor = new PbsExecutor({ folder: await runsFolder(), time: 1, cpusPerTask: 2, mem: "200M" });
    const [job] = await executor.mapArray([environment.with(undefined as never)]);
    const env = await job!.result();
    expect(env.jobId).toBe(job!.id);
    expect(env.arrayJobId).toBe(job!.id.split("_")[0]);
    expect(env.arrayIndex).toBe(0);
    expect([env.rank, env.worldSize, env.nodeCount]).toEqual([0, 1, 1]);
    expect(env.hosts).toEqual([env.hostname]);
  });
});
