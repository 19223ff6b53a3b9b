// Long jobs on the real cluster: Slurm's warning before the time limit and on
// preemption, a checkpoint, a requeue under the same job id, and the cap.
// Each timeout costs up to a minute.
import { execa } from "execa";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { command, JobEndedWithoutResultError, lines, LocalTransport, loadJobs, report, SlurmExecutor } from "../../src/index.js";
import { TaskRecords } from "../../src/engine/task-records.js";
import { decodeRound } from "../../src/protocol/records.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { packr } from "../../src/protocol/codec.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { endless, environment, patient, ranked, resumable, stubborn } from "../fixtures/requeue.js";
import { square, stoppedBySigterm } from "../fixtures/tasks.js";
import { needCluster, waitFor } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { preemptLow, preemptWhenRunning, startRequeuedAtOnce } from "../helpers/requeue.js";

const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const started = (path: string) => () =>
  readFile(path).then(
    () => true,
    () => false,
  );

describe("checkpoint and requeue on the cluster", { timeout: 240_000 }, () => {
  beforeAll(() => {
    slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
  });

  test("a warning that comes while setup runs, before the runner listens, is kept: the task hears it as it starts, checkpoints and resumes", async (ctx) => {
    needCluster(ctx);
    // Slurm sends its warning up to a minute early: with a short time limit, it can come before the runner runs.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, signal: "USR2@30", setup: [lines("echo setup-started >&2; sleep 6")] });
    const [job] = await executor.mapArray([resumable.with({ step: 0, endings: [] })]);
    await waitFor("setup to start", async () => ((await job!.stderr()).includes("setup-started") ? true : undefined));
    await execa("scancel", ["--batch", "--signal=USR2", job!.id]);
    const release = startRequeuedAtOnce(job!);
    try {
      expect(await job!.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 1 });
    } finally {
      release();
    }
    expect(await job!.stdout()).toContain("attempt 0 warned: TIMEOUT");
  });

  test("the default warning for a 2-minute task does not come in its first half minute (Slurm sends it up to a minute early)", async (ctx) => {
    needCluster(ctx);
    // USR2@90 came at Slurm's first check after the start (within 30 s): a checkpointing task had no time, and a signal before the batch shell's trap killed it.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2 });
    const [job] = await executor.mapArray([patient.with(35)]);
    expect(await job!.result()).toEqual({ warnedAfterMs: null });
    expect(await readFile(join(dirname(dirname(job!.paths.result)), "job.sbatch"), "utf8")).toContain("#SBATCH --signal=B:USR2@30\n");
  });

  test("a timeout: the task checkpoints, is requeued under the same id, resumes and completes; loadJobs in a new process follows it", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, signal: "USR2@30" });
    const [job] = await executor.mapArray([resumable.with({ step: 0, endings: [] })]);
    const id = job!.id;
    const folder = dirname(dirname(job!.paths.result));
    // A fresh process rebuilds the future from the run folder before the requeue, and follows it to the end.
    const reloaded = execa(tsx, [join(fixtures, "reload.mts"), folder], { env: { SLURM_CONF: process.env.SLURM_CONF } });
    const release = startRequeuedAtOnce(job!);
    try {
      expect(await job!.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 1 });
    } finally {
      release();
    }
    expect(job!.id).toBe(id);
    const attempts = await job!.attempts();
    expect(attempts.map((a) => [a.attempt, a.ended, a.requeued])).toEqual([
      [0, "TIMEOUT", true],
      [1, "COMPLETED", false],
    ]);
    expect(attempts[0]!.host).toMatch(/^n[12]$/);
    // Both attempts' output, the second under its header.
    const stdout = await job!.stdout();
    expect(stdout).toContain("attempt 0 starts at step 0\nattempt 0 warned: TIMEOUT\n");
    expect(stdout).toMatch(/===== slurmkit: task 0, attempt 1, on n[12] at [^\n]+ =====\nattempt 1 starts at step 1\n/);
    expect(await job!.stderr()).toContain("requeued after attempt 0 (TIMEOUT)");
    const [seen] = JSON.parse((await reloaded).stdout) as Array<{ id: string; state: string; value?: unknown }>;
    expect(seen).toEqual({ id, state: "COMPLETED", value: { resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 1 } });
  });

  test("the cap: with maxRequeues 1 a task that never finishes ends TIMEOUT after 2 attempts, with both attempts' logs", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, signal: "USR2@30", maxRequeues: 1 });
    const job = await executor.submit(endless.with({ step: 0, endings: [] }));
    const release = startRequeuedAtOnce(job);
    let error: unknown;
    try {
      error = await job.result().catch((e: unknown) => e);
    } finally {
      release();
    }
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect((error as JobEndedWithoutResultError).state).toBe("TIMEOUT");
    expect(job.state).toBe("TIMEOUT");
    expect((await job.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["TIMEOUT", true],
      ["TIMEOUT", false],
    ]);
    const stdout = await job.stdout();
    expect(stdout).toMatch(/attempt 0 of endless on n[12]\nattempt 0 warned: TIMEOUT\n/);
    expect(stdout).toMatch(/===== slurmkit: task 0, attempt 1, [^\n]+\nattempt 1 of endless on n[12]\nattempt 1 warned: TIMEOUT\n/);
    expect(await job.stderr()).toContain("task 0 is not requeued: it reached maxRequeues (1) timeouts");
  });

  test("a task that ignores the warning and fails from its own SIGTERM handler at the limit ends TIMEOUT, its error in the log", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, signal: "USR2@30" });
    const started = join(await mkdtemp(join(tmpdir(), "slurmkit-stopped-")), "started");
    const job = await executor.submit(stoppedBySigterm.with(started));
    const error = await job.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect((error as JobEndedWithoutResultError).state).toBe("TIMEOUT");
    const stderr = await job.stderr();
    expect(stderr).toMatch(/slurmkit runner: task 0 failed after SIGTERM on n[12]: Error: stopped by SIGTERM after saving/);
    expect(stderr).toContain("slurmkit runner: task 0 terminated by SIGTERM; no result written");
  });

  test("a command task with requeue.onTimeout saves its own state on the signal, is requeued, resumes and completes", async (ctx) => {
    needCluster(ctx);
    const work = await mkdtemp(join(tmpdir(), "slurmkit-requeue-cmd-"));
    const script = [
      'state="$1/saved"',
      'if [ -f "$state" ]; then echo "resumed from $(cat "$state")"; exit 0; fi',
      'trap \'echo 41 > "$state"; echo "saved on USR2"; exit 3\' USR2',
      "echo working; while :; do sleep 1; done",
    ].join("\n");
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, signal: "USR2@30" });
    const job = await executor.submit(command("bash", ["-c", script, "resumer", work], { requeue: { onTimeout: true } }));
    const release = startRequeuedAtOnce(job);
    try {
      expect(await job.result()).toEqual({ exitCode: 0 });
    } finally {
      release();
    }
    expect((await job.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["TIMEOUT", true],
      ["COMPLETED", false],
    ]);
    expect(await job.stdout()).toMatch(/^working\nsaved on USR2\n\n===== slurmkit: task 0, attempt 1, [^\n]+\nresumed from 41\n$/);
  });

  test("preemption: a task in the low partition checkpoints when a high job preempts it, resumes under the same id and completes", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), partition: "low", time: 10 });
    const [job] = await executor.mapArray([resumable.with({ step: 0, endings: [] })]);
    const id = job!.id;
    const release = startRequeuedAtOnce(job!);
    try {
      await preemptWhenRunning(job!, started(job!.paths.state));
      expect(await job!.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["PREEMPTED"], restarts: 1 });
    } finally {
      release();
    }
    expect(job!.id).toBe(id);
    expect((await job!.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["PREEMPTED", true],
      ["COMPLETED", false],
    ]);
    expect(await job!.stdout()).toContain("attempt 0 warned: PREEMPTED\n");
  });

  test("preemption without a checkpoint ends PREEMPTED, typed, and Slurm does not rerun the task", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), partition: "low", time: 10 });
    const job = await executor.submit(stubborn.with(600));
    await preemptWhenRunning(job, started(job.paths.state));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("PREEMPTED");
    expect(error.logTail).toContain("DUE TO PREEMPTION");
    expect((await job.attempts()).map((a) => [a.ended, a.requeued])).toEqual([["PREEMPTED", false]]);
  });

  test("four ranks on two nodes: every rank gets the warning and is stopped before the requeue; only rank 0's checkpoint decides", async (ctx) => {
    needCluster(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-ranks-"));
    const executor = new SlurmExecutor({ folder: await runsFolder(), nodes: 2, ntasksPerNode: 2, time: 1, signal: "USR2@30" });
    const job = await executor.submit(ranked.with({ step: 0, endings: [], dir }));
    const release = startRequeuedAtOnce(job);
    try {
      // Attempt 1 finds none of attempt 0's four processes alive.
      expect(await job.result()).toEqual({ attempt: 1, rank: 0, earlier: 4, alive: [], endings: ["TIMEOUT"] });
    } finally {
      release();
    }
    const warned = (await readdir(dir)).filter((n) => n.startsWith("warned-")).sort();
    expect(warned).toEqual(["warned-0", "warned-1", "warned-2", "warned-3"]);
    for (const name of warned) expect(await readFile(join(dir, name), "utf8")).toBe("TIMEOUT");
    expect((await job.attempts()).length).toBe(2);
  });

  test("packed: a task checkpoints before its own time limit, its worker runs it again, and it completes; the task beside it is untouched", async (ctx) => {
    needCluster(ctx);
    // HUP rather than USR2: the slots must survive a warning signal whose default action ends a process.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, signal: "HUP@30" });
    const [resumed, quick] = await executor.mapArray([resumable.with({ step: 0, endings: [] }), square.with(7)], { workers: 1, slots: 2 });
    expect(await resumed!.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["TIMEOUT"], restarts: 0 });
    expect(await quick!.result()).toMatchObject({ square: 49 });
    // One worker ran both attempts: same id, no Slurm requeue.
    expect(resumed!.id).toMatch(/^\d+_0$/);
    expect((await resumed!.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["TIMEOUT", true],
      ["COMPLETED", false],
    ]);
    expect(await resumed!.stdout()).toMatch(/^attempt 0 starts at step 0\nattempt 0 warned: TIMEOUT\n\n===== slurmkit: task 0, attempt 1, [^\n]+\nattempt 1 starts at step 1\n$/);
    expect(await resumed!.stderr()).not.toContain("before it wrote a result");
    // The report draws the attempt that was requeued beside the two tasks' last runs.
    const path = join(await runsFolder(), "report.html");
    expect(await report([resumed!, quick!], path)).toMatchObject({ tasks: 2, attempts: 1, failures: 0 });
    const data = JSON.parse(/<script id="slurmkit-data" type="application\/json">(.*?)<\/script>/s.exec(await readFile(path, "utf8"))![1]!) as {
      states: string[];
      tasks: { attempt: number[]; state: number[]; task: number[] };
    };
    const earlier = data.tasks.attempt.indexOf(1);
    expect([data.tasks.task[earlier], data.states[data.tasks.state[earlier]!]]).toEqual([0, "TIMEOUT"]);
  });

  test("packed: a preempted worker passes the warning on; the task that checkpoints resumes when the worker is requeued, the one that cannot ends PREEMPTED", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), partition: "low", time: 10 });
    const [resumed, stuck] = await executor.mapArray([resumable.with({ step: 0, endings: [] }), stubborn.with(600)], { workers: 1, slots: 2 });
    const release = startRequeuedAtOnce(resumed!);
    try {
      // Each task's RUNNING record is in its worker's stream once the future says RUNNING.
      await preemptWhenRunning(resumed!, async () => [resumed!, stuck!].every((j) => j.state === "RUNNING"));
      const error = (await stuck!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
      expect(error).toBeInstanceOf(JobEndedWithoutResultError);
      expect(error.state).toBe("PREEMPTED");
      expect(await resumed!.result()).toEqual({ resumedAt: 1, attempt: 1, endings: ["PREEMPTED"], restarts: 1 });
    } finally {
      release();
    }
    expect((await resumed!.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["PREEMPTED", true],
      ["COMPLETED", false],
    ]);
    expect(resumed!.id).toBe(stuck!.id);
  });

  /** Runs the preempted-walk-away fixture (its client exits at once), preempts its worker once `ready` says so, and waits for every task's result with no client. */
  const preemptedWalkAway = async (mode: "setup" | "running") => {
    const marks = join(await mkdtemp(join(tmpdir(), "slurmkit-preempt-walk-")), "marks");
    const { stdout } = await execa(tsx, [join(fixtures, "preempted-walk-away.ts"), await runsFolder(), marks, mode]);
    const dir = stdout.trim().split("\n").at(-1)!;
    const logs = join(dir, "logs", "elements");
    const elementLog = async () => {
      const names = (await readdir(logs).catch(() => [] as string[])).filter((n) => n.endsWith(".err")).sort();
      return (await Promise.all(names.map((n) => readFile(join(logs, n), "utf8")))).join("");
    };
    const records = new TaskRecords(new LocalTransport(), new RunFolder(dir));
    const ready =
      mode === "setup"
        ? async () => (await elementLog()).includes("setup-started")
        : async () => {
            await records.refresh();
            return records.state(0)?.state === "RUNNING";
          };
    await waitFor(`the worker to be ready for preemption (${mode})`, async () => ((await ready()) ? true : undefined), 90_000);
    await preemptLow();
    // No client watches: the run goes on by itself.
    await waitFor(
      "all 6 results, with no client",
      async () => {
        await records.refresh();
        return Array.from({ length: 6 }, (_, i) => records.result(i)).every(Boolean) ? true : undefined;
      },
      360_000,
    );
    const workers = (await readdir(logs)).map((n) => n.replace(/\.(out|err)$/, ""));
    const firstWorker = workers.sort((x, y) => Number.parseInt(x, 10) - Number.parseInt(y, 10))[0]!;
    const rounds = (await readdir(join(dir, "rounds"))).filter((n) => /^\d+$/.test(n));
    const round = decodeRound(await readFile(join(dir, "rounds", "1")), "1");
    const runs = (await readFile(marks, "utf8"))
      .trim()
      .split("\n")
      .map((line) => line.split(" "));
    return { dir, records, firstWorker, rounds, round, runs, log: await elementLog() };
  };

  test("packed, walk-away: a worker preempted while its setup runs starts no task and submits the next round itself; with no client, every task runs once", {
    timeout: 480_000,
  }, async (ctx) => {
    needCluster(ctx);
    const { dir, firstWorker, rounds, round, runs, log } = await preemptedWalkAway("setup");
    // The preempted worker ran nothing, and submitted round 1, whose worker ran every task once.
    expect(rounds).toEqual(["1"]);
    expect(round.by).toBe(firstWorker);
    expect(log).toContain(`worker ${firstWorker} submitted round 1 of workers (job ${round.jobId}`);
    expect(runs.map(([i]) => Number(i)).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(runs.map(([, worker]) => worker!.split("_")[0]))).toEqual(new Set([round.jobId]));
    const jobs = await loadJobs(dir);
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual([0, 2, 4, 6, 8, 10]);
  });

  test("packed, walk-away: a preempted worker ends a task that ignores the warning PREEMPTED before Slurm's deadline, and submits the next round for the rest", {
    timeout: 480_000,
  }, async (ctx) => {
    needCluster(ctx);
    const { dir, records, firstWorker, rounds, round, runs, log } = await preemptedWalkAway("running");
    expect(records.result(0)).toMatchObject({ ok: false, state: "PREEMPTED", jobId: firstWorker });
    expect(rounds).toEqual(["1"]);
    expect(round.by).toBe(firstWorker);
    expect(log).toContain(`worker ${firstWorker} submitted round 1 of workers (job ${round.jobId}`);
    // Tasks 1 to 5 ran once each, all in round 1 (the first worker ran only task 0).
    expect(runs.map(([i]) => Number(i)).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(runs.map(([, worker]) => worker!.split("_")[0]))).toEqual(new Set([round.jobId]));
    const jobs = await loadJobs(dir);
    const error = (await jobs[0]!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error.state).toBe("PREEMPTED");
    expect(await Promise.all(jobs.slice(1).map((j) => j.result()))).toEqual([2, 4, 6, 8, 10]);
  });

  test("four ranks on two nodes each see their own rank, node, the expanded host list and their GPUs", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), nodes: 2, ntasksPerNode: 2, gres: "gpu:2", time: 5 });
    const job = await executor.submit(environment.with(undefined));
    const rank0 = await job.result();
    // Rank 0's result settles the job; the other ranks write theirs as they finish, maybe a moment later.
    const rankResult = (r: number) => readFile(job.paths.result.replace(/0\.result$/, `0.r${r}.result`)).catch(() => undefined);
    const others = await Promise.all([1, 2, 3].map(async (r) => (packr.unpack(await waitFor(`rank ${r}'s result`, () => rankResult(r), 30_000)) as { value: typeof rank0 }).value));
    const all = [rank0, ...others];
    for (const [r, env] of all.entries()) {
      expect(env).toMatchObject({ slurm: true, rank: r, localRank: r % 2, nodeRank: Math.floor(r / 2), worldSize: 4, localWorldSize: 2, nodeCount: 2, hosts: ["n1", "n2"], restarts: 0 });
      expect(env.hostname).toBe(`n${Math.floor(r / 2) + 1}`);
      expect(env.jobId).toBe(job.id);
      expect(env.gpus).toEqual(["0", "1"]);
      expect(env.cpus.length).toBeGreaterThan(0);
    }
  });
});
