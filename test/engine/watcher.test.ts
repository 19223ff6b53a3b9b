// The watcher's state machine on recorded squeue/sacct output: no cluster, real files in a temp folder.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test, vi } from "vitest";
import { newJob, type Job, type JobBackend } from "../../src/core/job.js";
import { JobEndedWithoutResultError, RunFolderError, WaitTimeoutError } from "../../src/base/errors.js";
import { packr } from "../../src/protocol/codec.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { parseQueueLines } from "../../src/slurm/parse.js";
import type { QueueEntry, WatchedScheduler } from "../../src/engine/scheduler.js";
import type { SchedulerCallCounts } from "../../src/slurm/scheduler.js";
import { FAILING_POLLS, READ_ATTEMPTS, Watcher, type WatchedFiles, type WatcherHealth } from "../../src/engine/watcher.js";
import { LocalTransport } from "../../src/transport/local.js";

/** Replays recorded squeue and sacct output, one entry per poll (the last one repeats). */
class RecordedScheduler implements WatchedScheduler {
  readonly calls: SchedulerCallCounts = { sbatch: 0, squeue: 0, sacct: 0, scancel: 0, limits: 0 };
  squeue: string[] = [];
  sacct: (string | undefined)[] = [];
  squeueError: Error | undefined;
  async queue(): Promise<QueueEntry[]> {
    this.calls.squeue++;
    if (this.squeueError) throw this.squeueError;
    return parseQueueLines(this.squeue.length > 1 ? this.squeue.shift()! : (this.squeue[0] ?? ""));
  }
  async accounting(): Promise<QueueEntry[] | undefined> {
    this.calls.sacct++;
    const text = this.sacct.length > 1 ? this.sacct.shift() : this.sacct[0];
    return text === undefined ? undefined : parseQueueLines(text);
  }
}

const backend: JobBackend = {
  acquire() {},
  release() {},
  async cancel() {},
  async readText() {
    return "";
  },
};

async function setup(options: { resultGraceMs?: number } = {}) {
  const folder = new RunFolder(await mkdtemp(join(tmpdir(), "slurmkit-watcher-")));
  await Promise.all([folder.logsDir, folder.resultsDir, folder.stateDir, folder.elementLogsDir].map((d) => mkdir(d, { recursive: true })));
  const scheduler = new RecordedScheduler();
  const watcher = new Watcher(scheduler, new LocalTransport());
  watcher.setIntervals({ minMs: 200, maxMs: 200, resultGraceMs: options.resultGraceMs ?? 60_000 });
  const track = (index: number, options: { exitElement?: number; elementStderr?: string } = {}): Job<unknown> => {
    const job = newJob(backend, `100_${index}`, index, folder);
    watcher.track(job, folder, "100", index, options);
    return job;
  };
  const result = (index: number, value: unknown) => writeFile(folder.task(index).result, packr.pack({ ok: true, value, host: "n1", jobId: `100_${index}`, startedAt: 1, endedAt: 2 }));
  return { folder, scheduler, watcher, track, result };
}

async function polls(watcher: Watcher, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await watcher.pollNow();
}

describe("the watcher on recorded scheduler output", () => {
  test("a task its runner requeued stays one unsettled future while Slurm shows the ended attempt, and settles at its true end", async () => {
    const { folder, scheduler, watcher, track, result } = await setup();
    const job = track(0);
    const state = (s: string, at: number) => writeFile(folder.task(0).state, packr.pack({ state: s, host: "n1", jobId: "100_0", pid: 1, at }));
    await state("RUNNING", Date.now());
    scheduler.squeue = ["100_0|RUNNING", "100_0|PREEMPTED", "100_0|REQUEUED", ""];
    scheduler.sacct = ["100_0|TIMEOUT"];
    await watcher.pollNow();
    expect(job.state).toBe("RUNNING");
    await state("REQUEUED", Date.now());
    await polls(watcher, 4);
    expect(job.done()).toBe(false);
    expect(job.state).toBe("PENDING");
    scheduler.squeue = ["100_0|RUNNING"];
    await state("RUNNING", Date.now());
    await watcher.pollNow();
    expect(job.state).toBe("RUNNING");
    await result(0, "resumed");
    await watcher.pollNow();
    expect(await job.result()).toBe("resumed");
  });

  test("a requeue whose next attempt never starts ends with Slurm's state a minute after the client first saw it, whatever the node's clock says", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const { folder, scheduler, watcher, track } = await setup();
      const job = track(0);
      // Written by a node whose clock is an hour behind.
      await writeFile(folder.task(0).state, packr.pack({ state: "REQUEUED", host: "n1", jobId: "100_0", pid: 1, at: Date.now() - 3_600_000 }));
      scheduler.squeue = ["100_0|TIMEOUT"];
      await polls(watcher, 3);
      expect(job.done()).toBe(false);
      vi.setSystemTime(Date.now() + 61_000);
      await polls(watcher, 2);
      expect(job.state).toBe("TIMEOUT");
    } finally {
      vi.useRealTimers();
    }
  });

  test("squeue states become job states; a listed result settles the job with its value", async () => {
    const { scheduler, watcher, track, result } = await setup();
    const job = track(0);
    scheduler.squeue = ["100_[0]|PENDING", "100_0|RUNNING"];
    await watcher.pollNow();
    expect(job.state).toBe("PENDING");
    await watcher.pollNow();
    expect(job.state).toBe("RUNNING");
    await result(0, { loss: 0.5 });
    await watcher.pollNow();
    expect(await job.result()).toEqual({ loss: 0.5 });
    expect(watcher.trackedCount).toBe(0);
  });

  test("a job that ended without a result fails on the second poll in a row, with its log tail", async () => {
    const { folder, scheduler, watcher, track } = await setup();
    const job = track(0);
    await writeFile(folder.task(0).stderr, "Traceback\nboom\n");
    scheduler.squeue = ["100_0|FAILED"];
    await watcher.pollNow();
    expect(job.done()).toBe(false);
    await watcher.pollNow();
    expect(job.state).toBe("FAILED");
    const error = await job.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect((error as JobEndedWithoutResultError).logTail).toBe("Traceback\nboom");
  });

  test("a job COMPLETED without a visible result waits out the grace period: a late result still settles it", async () => {
    const { scheduler, watcher, track, result } = await setup({ resultGraceMs: 60_000 });
    const job = track(0);
    scheduler.squeue = [""];
    scheduler.sacct = ["100_0|COMPLETED"];
    await polls(watcher, 4);
    expect(job.done()).toBe(false);
    await result(0, 42);
    await watcher.pollNow();
    expect(await job.result()).toBe(42);
  });

  test("after the grace period, a job COMPLETED without a result ends COMPLETED with JobEndedWithoutResultError", async () => {
    const { scheduler, watcher, track } = await setup({ resultGraceMs: 0 });
    const job = track(0);
    scheduler.squeue = [""];
    scheduler.sacct = ["100_0|COMPLETED"];
    await watcher.pollNow();
    expect(job.done()).toBe(false);
    await watcher.pollNow();
    expect(job.state).toBe("COMPLETED");
    await expect(job.result()).rejects.toThrow("Job 100_0 (task 0) ended with state COMPLETED and wrote no result");
  });

  test("with stage-out, a result counts only once the element's exit marker is there", async () => {
    const { folder, scheduler, watcher, track, result } = await setup();
    const job = track(3, { exitElement: 3 });
    scheduler.squeue = ["100_3|RUNNING"];
    await result(3, "done");
    await polls(watcher, 2);
    expect(job.done()).toBe(false);
    expect(job.state).toBe("RUNNING");
    await writeFile(join(folder.resultsDir, RunFolder.exitedName(3)), "");
    await watcher.pollNow();
    expect(await job.result()).toBe("done");
  });

  test("with stage-out, a result counts without the marker once the job has ended", async () => {
    const { scheduler, watcher, track, result } = await setup();
    const job = track(1, { exitElement: 1 });
    scheduler.squeue = ["100_1|COMPLETED"];
    await result(1, 7);
    await watcher.pollNow();
    expect(await job.result()).toBe(7);
  });

  test("gone from squeue and sacct (accounting off): the state file decides, a runner that said RUNNING means FAILED", async () => {
    const { folder, scheduler, watcher, track } = await setup();
    const job = track(0);
    await writeFile(folder.task(0).state, packr.pack({ state: "RUNNING", host: "n1", jobId: "100_0", pid: 1, at: 1 }));
    scheduler.squeue = [""];
    scheduler.sacct = [undefined];
    await polls(watcher, 2);
    expect(job.state).toBe("FAILED");
  });

  test("gone with no state file: UNKNOWN", async () => {
    const { scheduler, watcher, track } = await setup();
    const job = track(0);
    scheduler.squeue = [""];
    scheduler.sacct = [undefined];
    await polls(watcher, 2);
    expect(job.state).toBe("UNKNOWN");
  });

  test("a packed task is PENDING while its element runs, until its own state file exists", async () => {
    const { folder, scheduler, watcher, track } = await setup();
    const job = track(5, { elementStderr: folder.elementLog("100", 0, "err") });
    scheduler.squeue = ["100_5|RUNNING"];
    await watcher.pollNow();
    expect(job.state).toBe("PENDING");
    await writeFile(folder.task(5).state, packr.pack({ state: "RUNNING", host: "n1", jobId: "100_0", pid: 1, at: 1 }));
    await watcher.pollNow();
    expect(job.state).toBe("RUNNING");
  });

  test("a truncated result file is read again on the next polls; it settles the job UNKNOWN only after READ_ATTEMPTS polls, with the error as its cause", async () => {
    const { folder, scheduler, watcher, track } = await setup();
    const job = track(0);
    const bytes = packr.pack({ ok: true, value: "x".repeat(100), host: "n1", jobId: "100_0", startedAt: 1, endedAt: 2 });
    await writeFile(folder.task(0).result, bytes.subarray(0, 40));
    scheduler.squeue = ["100_0|RUNNING"];
    await polls(watcher, READ_ATTEMPTS - 1);
    expect(job.done()).toBe(false);
    await watcher.pollNow();
    expect(job.state).toBe("UNKNOWN");
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error.logTail).toContain(
      `could not read the result of 100_0 on ${READ_ATTEMPTS} polls in a row: ${folder.task(0).result} is not a readable result file (40 bytes, truncated or corrupt msgpack`,
    );
    expect(error.cause).toBeInstanceOf(RunFolderError);
  });

  test("a result read that fails once (a transient file-system error) is read again, and the job settles COMPLETED", async () => {
    const { folder, scheduler, result } = await setup();
    // The same files, but the first read of a result fails as a flaky NFS or sftp read would.
    let failures = 1;
    const local = new LocalTransport();
    const flaky: WatchedFiles = {
      list: (dir) => local.list(dir),
      readFrom: (path, offset) => local.readFrom(path, offset),
      writeFile: (path, data) => local.writeFile(path, data),
      readFile: async (path) => {
        if (path.endsWith(".result") && failures-- > 0) throw Object.assign(new Error(`EIO: i/o error, open '${path}'`), { code: "EIO" });
        return local.readFile(path);
      },
    };
    const watcher = new Watcher(scheduler, flaky);
    const job = newJob(backend, "100_0", 0, folder);
    watcher.track(job, folder, "100", 0);
    await result(0, 42);
    scheduler.squeue = ["100_0|COMPLETED"];
    await watcher.pollNow();
    expect(job.done()).toBe(false);
    expect(watcher.stats().lastError?.message).toContain("EIO");
    await watcher.pollNow();
    expect(await job.result()).toBe(42);
  });

  test("a results folder that cannot be listed fails only its own submission's polls; the other submission settles", async () => {
    const { scheduler, watcher, track, result } = await setup();
    const other = new RunFolder(await mkdtemp(join(tmpdir(), "slurmkit-watcher-")));
    await mkdir(other.resultsDir, { recursive: true });
    const broken = newJob(backend, "200_0", 0, other);
    watcher.track(broken, other, "200", 0);
    // Not a folder any more (root reads through permissions, so this is the listing error a test can make).
    await rm(other.resultsDir, { recursive: true });
    await writeFile(other.resultsDir, "");
    const job = track(0);
    await result(0, "fine");
    scheduler.squeue = ["100_0|COMPLETED\n200_0|RUNNING"];
    await watcher.pollNow();
    expect(await job.result()).toBe("fine");
    // While Slurm says it runs, its result cannot be there yet: a folder that cannot be listed counts as no failure.
    await polls(watcher, READ_ATTEMPTS + 1);
    expect(broken.state).toBe("RUNNING");
    // Once it has ended, the listing failures count, and it settles UNKNOWN after READ_ATTEMPTS polls, with the error.
    scheduler.squeue = ["200_0|COMPLETED"];
    await polls(watcher, READ_ATTEMPTS - 1);
    expect(broken.done()).toBe(false);
    expect(watcher.stats().lastError?.message).toContain("ENOTDIR");
    await watcher.pollNow();
    expect(broken.state).toBe("UNKNOWN");
    expect(((await broken.result().catch((e: unknown) => e)) as Error).cause).toMatchObject({ code: "ENOTDIR" });
  });

  test("polls that keep failing are reported once after FAILING_POLLS, and once when they work again; jobs keep waiting", async () => {
    const { scheduler, watcher, track, result } = await setup();
    const job = track(0);
    const events: WatcherHealth[] = [];
    const stop = watcher.onHealth((e) => events.push(e));
    scheduler.squeueError = new Error("slurm_load_jobs error: Unable to contact slurm controller");
    await polls(watcher, FAILING_POLLS - 1);
    expect(events).toEqual([]);
    await polls(watcher, 3);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: "failing", failedPolls: FAILING_POLLS });
    expect((events[0] as { error: Error }).error.message).toContain("Unable to contact slurm controller");
    expect(watcher.stats().failedPolls).toBe(FAILING_POLLS + 2);
    expect(job.done()).toBe(false);
    // A wait with a bound rejects, typed, and the job goes on.
    const waited = await job.wait({ timeoutMs: 300 }).catch((e: unknown) => e);
    expect(waited).toBeInstanceOf(WaitTimeoutError);
    expect(waited).toMatchObject({ jobId: "100_0", state: "PENDING", timeoutMs: 300 });
    expect(watcher.trackedCount).toBe(1);
    scheduler.squeueError = undefined;
    scheduler.squeue = ["100_0|COMPLETED"];
    await result(0, 7);
    await watcher.pollNow();
    expect(events.map((e) => e.kind)).toEqual(["failing", "recovered"]);
    expect(await job.result({ timeoutMs: 1000 })).toBe(7);
    stop();
  });

  test("without a listener, a failing watcher says so on stderr", async () => {
    const { scheduler, watcher, track } = await setup();
    track(0);
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      scheduler.squeueError = new Error("squeue: command not found");
      await polls(watcher, FAILING_POLLS);
    } finally {
      spy.mockRestore();
    }
    expect(lines).toEqual([`slurmkit: ${FAILING_POLLS} polls in a row failed; jobs keep waiting and polls go on. Last error: squeue: command not found\n`]);
  });

  test("while squeue fails, a job whose result is listed settles with it; the others wait, and a results folder that cannot be listed counts no failure", async () => {
    const { scheduler, watcher, track, result } = await setup();
    const done = track(0);
    const waiting = track(1);
    const other = new RunFolder(await mkdtemp(join(tmpdir(), "slurmkit-watcher-")));
    await writeFile(other.resultsDir, ""); // not a folder: its listing fails
    const unlistable = newJob(backend, "200_0", 0, other);
    watcher.track(unlistable, other, "200", 0);
    await result(0, "kept");
    const health: WatcherHealth[] = [];
    watcher.onHealth((e) => health.push(e));
    scheduler.squeueError = new Error("slurm_load_jobs error: Unable to contact slurm controller");
    await polls(watcher, READ_ATTEMPTS + 2);
    expect(health.map((e) => e.kind)).toEqual(READ_ATTEMPTS + 2 >= FAILING_POLLS ? ["failing"] : []);
    expect(await done.result()).toBe("kept");
    expect([waiting.done(), waiting.state, unlistable.done(), unlistable.state]).toEqual([false, "PENDING", false, "PENDING"]);
    expect(watcher.stats().failedPolls).toBe(READ_ATTEMPTS + 2);
    expect(scheduler.calls.sacct).toBe(0);
  });

  test("a poll whose squeue fails changes no job and keeps the error in stats", async () => {
    const { scheduler, watcher, track } = await setup();
    const job = track(0);
    scheduler.squeueError = new Error("slurm_load_jobs error: Unable to contact slurm controller");
    await polls(watcher, 3);
    expect(job.state).toBe("PENDING");
    expect(job.done()).toBe(false);
    expect(watcher.stats().lastError?.message).toContain("Unable to contact slurm controller");
    expect(scheduler.calls.sacct).toBe(0);
  });
});
