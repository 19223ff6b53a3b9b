import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { rankOrFail } from "../fixtures/ranks.js";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import {
  afterOk,
  command,
  LocalExecutor,
  JobEndedWithoutResultError,
  loadJobs,
  ParameterError,
  SlurmExecutor,
  SubmissionError,
  LocalTransport,
  TaskFailedError,
  type SlurmExecutorOptions,
} from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { readStream } from "../../src/protocol/record-stream.js";
import { decodeTaskRecord } from "../../src/protocol/task-stream.js";
import { hog, whereAmI } from "../fixtures/tasks.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { FaultyTransport } from "../helpers/faults.js";

async function slurmExecutor(options: Partial<SlurmExecutorOptions> = {}): Promise<SlurmExecutor> {
  return new SlurmExecutor({ folder: await runsFolder(), time: 5, ...options });
}

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

describe("SlurmExecutor on the real cluster", () => {
  test("afterOk names a whole array by its id, a part of one element by element; `after` renders it with --kill-on-invalid-dep", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor();
    // Still running when `after` names them below: a job already known to have completed needs no dependency.
    const jobs = await executor.mapArray([0, 1, 2].map(() => command("sleep", ["10"])));
    const single = await executor.submit(command("true"));
    const array = jobs[0]!.id.split("_")[0]!;
    expect(afterOk(jobs)).toBe(`afterok:${array}`);
    expect(afterOk([jobs[2]!, jobs[0]!, single])).toBe(`afterok:${array}_0:${array}_2:${single.id}`);
    // Packed tasks have no element of their own: Slurm's afterok on their workers would not wait for them to succeed.
    const packed = await executor.mapArray(
      [0, 1, 2].map(() => command("true")),
      { workers: 1 },
    );
    expect(() => afterOk([packed[2]!, jobs[0]!, packed[0]!])).toThrow(
      "Invalid afterOk: Expected job futures with an array element of their own; tasks 0, 2 are packed in workers, which end COMPLETED whatever their tasks did, so no Slurm dependency can wait for them to succeed. Pass them as the `after` option of submit() or mapArray() instead: it checks each task before the dependent runs",
    );
    const local = await new LocalExecutor({ folder: await runsFolder() }).submit(command("true"));
    expect(() => afterOk([jobs[0]!, local])).toThrow(`Invalid submit options: Expected \`after[1]\` to be a job future from SlurmExecutor or loadJobs, got \`${local.id}\``);
    const then = await executor.submit(command("true"), { after: [jobs[1]!] });
    const script = await readFile(join(dirname(dirname(then.paths.result)), "job.sbatch"), "utf8");
    expect(script).toContain(`#SBATCH --dependency=afterok:${array}_1\n#SBATCH --kill-on-invalid-dep=yes\n`);
    executor.update({ dependency: `afterok:${array}` });
    await expect(executor.submit(command("true"), { after: jobs })).rejects.toThrow(
      `Invalid submit options: Expected either \`after\` or the \`dependency\` parameter, not both (dependency is \`afterok:${array}\`)`,
    );
    expect(await Promise.all([...jobs, single, then].map((j) => j.wait()))).toEqual(Array(5).fill("COMPLETED"));
    executor.update({ dependency: undefined as unknown as string });
    expect(() => afterOk([])).toThrow("Invalid submit options: Expected `after` to be a non-empty array of job futures, got ``");
    await expect(executor.submit(command("true"), { after: single as unknown as [] })).rejects.toThrow(
      "Invalid submit options: Expected `after` to be an array of jobs (futures from submit, mapArray or loadJobs), got a Job",
    );
    // Jobs that already completed need no dependency (Slurm may have forgotten them); a failed one is an error now.
    const later = await executor.submit(command("true"), { after: jobs });
    expect(await readFile(join(dirname(dirname(later.paths.result)), "job.sbatch"), "utf8")).not.toContain("--dependency");
    const failed = await executor.submit(command("false"));
    expect(await failed.wait()).toBe("FAILED");
    await expect(executor.submit(command("true"), { after: [failed] })).rejects.toThrow(`Invalid submit options: Job ${failed.id} in \`after\` already ended FAILED, so these tasks could never start`);
    expect(await later.wait()).toBe("COMPLETED");
  });

  test("one sbatch call runs an array spread over n1 and n2", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ cpusPerTask: 2 });
    const before = executor.watcher.stats().calls.sbatch;
    const jobs = await executor.mapArray([0, 1, 2, 3, 4, 5].map(() => whereAmI.with(1500)));
    expect(executor.watcher.stats().calls.sbatch - before).toBe(1);
    const arrayId = jobs[0]!.id.split("_")[0];
    expect(jobs.map((j) => j.id)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${arrayId}_${i}`));
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(new Set(results.map((r) => r.node))).toEqual(new Set(["n1", "n2"]));
    const script = await readdir(join(jobs[0]!.paths.result, "..", ".."));
    expect(script).toContain("job.sbatch");
  });

  test("a mapArray of command tasks spreads over n1 and n2 too", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ cpusPerTask: 2 });
    const jobs = await executor.mapArray([0, 1, 2, 3, 4, 5].map((i) => command("sh", ["-c", 'sleep 1.5; echo "$1 $SLURMD_NODENAME"', "sh", String(i)])));
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual(jobs.map(() => ({ exitCode: 0 })));
    const lines = await Promise.all(jobs.map(async (j) => (await j.stdout()).trim()));
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["0", "1", "2", "3", "4", "5"]);
    expect(new Set(lines.map((l) => l.split(" ")[1]))).toEqual(new Set(["n1", "n2"]));
  });

  test("arrayParallelism becomes --array=0-(N-1)%P; cancel() on a pending element gives CANCELLED", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ arrayParallelism: 1 });
    const jobs = await executor.mapArray([0, 1, 2].map(() => command("sleep", ["30"])));
    const arrayId = jobs[0]!.id.split("_")[0]!;
    ctx.onTestFinished(async () => void (await slurm("scancel", [arrayId])));
    const queued = await slurm("squeue", ["-h", "-j", arrayId, "-o", "%i|%T"]);
    expect(queued.stdout).toMatch(new RegExp(`^${arrayId}_\\[[0-9-]+%1\\]\\|PENDING$`, "m"));
    await jobs[2]!.cancel();
    expect(await jobs[2]!.wait()).toBe("CANCELLED");
    const error = (await jobs[2]!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("CANCELLED");
    expect(error.shortMessage).toBe(`Job ${jobs[2]!.id} (task 2) ended with state CANCELLED and wrote no result`);
    await waitFor("element 0 to start", async () => (jobs[0]!.state === "RUNNING" ? true : undefined));
    // Slurm shows RUNNING once the batch script starts; the runner is running the command once it wrote its state file.
    await waitFor("task 0's runner to start its command", async () => (existsSync(jobs[0]!.paths.state) ? true : undefined));
    // A running command is cancelled too: the runner leaves without a result.
    await Promise.all(jobs.slice(0, 2).map((j) => j.cancel()));
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(["CANCELLED", "CANCELLED", "CANCELLED"]);
    expect(await jobs[0]!.stderr()).toContain("slurmkit runner: task 0 terminated by SIGTERM; no result written");
  });

  test("a command that ends with 143 just before the runner's own TERM (Slurm signals processes one by one) writes no result; alone, 143 is its exit code", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor();
    // The order a cancel can take on a busy node: the command's shell reports its child's TERM, and the runner's TERM comes 200 ms later.
    const late = 'r=$PPID; (sleep 0.2; kill -TERM "$r") >/dev/null 2>&1 & exit 143';
    const [signalled, alone] = await executor.mapArray([command("sh", ["-c", late]), command("sh", ["-c", "exit 143"])]);
    ctx.onTestFinished(async () => void (await slurm("scancel", [signalled!.id.split("_")[0]!])));
    const error = (await signalled!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(await signalled!.stderr()).toContain("slurmkit runner: task 0 terminated by SIGTERM; no result written");
    expect(((await alone!.result().catch((e: unknown) => e)) as { exitCode?: number }).exitCode).toBe(143);
  });

  test("a job killed over its memory limit fails as OUT_OF_MEMORY with the log tail", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ mem: "150M" });
    const job = await executor.submit(hog.with(600));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("OUT_OF_MEMORY");
    expect(error.logTail).toContain("Exceeded job memory limit");
    expect(job.state).toBe("OUT_OF_MEMORY");
  });

  test("200 tracked jobs cost one squeue call per poll, and no sacct call while squeue lists them", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ sbatch: { hold: true } });
    const jobs = await executor.mapArray(Array.from({ length: 200 }, (_, i) => command("echo", [String(i)])));
    ctx.onTestFinished(async () => void (await slurm("scancel", [jobs[0]!.id.split("_")[0]!])));
    const w = executor.watcher;
    expect(w.trackedCount).toBeGreaterThanOrEqual(200);
    const squeue0 = w.stats().calls.squeue;
    const sacct0 = w.stats().calls.sacct;
    const polls0 = w.stats().polls;
    for (let i = 0; i < 3; i++) await w.pollNow();
    expect(w.stats().polls - polls0).toBeGreaterThanOrEqual(3);
    expect(w.stats().calls.squeue - squeue0).toBe(w.stats().polls - polls0);
    expect(w.stats().calls.sacct - sacct0).toBe(0);
    expect(jobs.every((j) => j.state === "PENDING")).toBe(true);
    await jobs[0]!.cancel();
    await slurm("scancel", [jobs[0]!.id.split("_")[0]!]);
    expect(new Set(await Promise.all(jobs.map((j) => j.wait())))).toEqual(new Set(["CANCELLED"]));
  });

  test("a multi-node job runs one rank per node through srun; rank 0's result is the job's", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ nodes: 2, ntasksPerNode: 1 });
    const job = await executor.submit(whereAmI.with(100));
    expect(await job.result()).toEqual({ node: "n1", rank: 0 });
    // Every rank's result, in rank order (rank 1's may be renamed a moment after rank 0's settled the job).
    expect(await job.results()).toEqual([
      { node: "n1", rank: 0 },
      { node: "n2", rank: 1 },
    ]);
    // Rank 1 may still be renaming its file when rank 0's result settles the job.
    const files = await waitFor("rank 1's result", async () => {
      const names = (await readdir(join(job.paths.result, ".."))).sort();
      return names.includes("0.r1.result") ? names : undefined;
    });
    expect(files).toEqual(["0.r1.result", "0.result"]);
    // A rank above 0 that failed: result() is rank 0's, results() rejects with that rank's error.
    const failing = await executor.submit(rankOrFail.with(1));
    expect(await failing.result()).toBe(0);
    const error = (await failing.results().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.remote.message).toBe("rank 1 failed on purpose");
    // Every rank that succeeded, in order; a job of one rank gives one.
    expect(await (await executor.submit(rankOrFail.with(5))).results()).toEqual([0, 1]);
    expect(await (await (await slurmExecutor()).submit(rankOrFail.with(5))).results()).toEqual([0]);
  });

  test("the interval backs off by 1.5x while nothing changes, up to the ceiling, never below the floor, and returns to the floor on a change", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ sbatch: { hold: true } });
    const [job] = await executor.mapArray([command("true")]);
    ctx.onTestFinished(async () => void (await slurm("scancel", [job!.id.split("_")[0]!])));
    const w = executor.watcher;
    const saved = w.intervals;
    ctx.onTestFinished(() => w.setIntervals(saved));
    await w.pollNow();
    w.setIntervals({ minMs: 10, maxMs: 1000 });
    expect(w.intervals.minMs).toBe(200);
    expect(w.intervalMs).toBe(200);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      await w.pollNow(); // the held job stays PENDING: nothing changes
      seen.push(w.intervalMs);
    }
    expect(seen).toEqual([300, 450, 675, 1000, 1000, 1000]);
    await slurm("scontrol", ["release", job!.id.split("_")[0]!]);
    await waitFor("the released job to change state", async () => {
      await w.pollNow();
      return job!.state !== "PENDING" ? true : undefined;
    });
    expect(w.intervalMs).toBe(200);
  });

  test("a poll that settles packed tasks from their streams is a change: the interval goes back to the floor", async (ctx) => {
    needCluster(ctx);
    // A watcher of its own (a transport with its own key): no other test's jobs change under its polls.
    const executor = await slurmExecutor({ mem: "100M", sbatch: { hold: true }, transport: new FaultyTransport(new LocalTransport()) });
    const jobs = await executor.mapArray([command("true"), command("true"), command("true")], { workers: 1 });
    const array = jobs[0]!.id.split("_")[0]!;
    ctx.onTestFinished(async () => {
      await slurm("scancel", [array]);
      executor.close();
    });
    const w = executor.watcher;
    // Backed off far enough that no poll of its own comes while the worker runs.
    w.setIntervals({ minMs: 200, maxMs: 600_000 });
    for (let i = 0; i < 12; i++) await w.pollNow();
    expect(w.intervalMs).toBeGreaterThan(20_000);
    await slurm("scontrol", ["release", array]);
    // Every task's result in the worker's stream, read here without the watcher.
    const streams = join(dirname(dirname(jobs[0]!.paths.result)), "streams");
    await waitFor("the worker to write three results", async () => {
      const names = await readdir(streams).catch(() => [] as string[]);
      const records = (await Promise.all(names.filter((n) => n.endsWith(".rec")).map((n) => readStream(join(streams, n))))).flatMap((r) => r.records);
      return records.filter((p) => "result" in decodeTaskRecord(p, "rec")).length === 3 ? true : undefined;
    });
    expect(jobs.map((j) => j.state)).toEqual(["PENDING", "PENDING", "PENDING"]);
    // One poll sees the three results at once: they settle in their unit, and that is a change.
    await w.pollNow();
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);
    expect(w.intervalMs).toBe(200);
  });

  test("an unreadable result fails that job only; the others still settle", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const dir = join(folder, "corrupt");
    await mkdir(join(dir, "results"), { recursive: true });
    const manifest = { version: 1, kind: "slurm", createdAt: new Date().toISOString(), taskCount: 2, jobId: "3999998", array: true, ranks: 1 };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    await writeFile(join(dir, "results", "0.result"), Buffer.from([0xc1, 0xc1, 0xc1]));
    const [bad, other] = await loadJobs(folder);
    const executor = await slurmExecutor();
    const good = await executor.submit(command("true"));
    const error = (await bad!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.logTail).toContain(`slurmkit: could not read the result of ${bad!.id}`);
    expect(await good.result()).toEqual({ exitCode: 0 });
    expect(await other!.wait()).toBe("UNKNOWN");
  });

  test("a job Slurm has never heard of fails within two polls", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const dir = join(folder, "forgotten");
    await mkdir(join(dir, "results"), { recursive: true });
    const manifest = { version: 1, kind: "slurm", createdAt: new Date().toISOString(), taskCount: 1, jobId: "3999999", array: true, ranks: 1 };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    const [job] = await loadJobs(folder);
    const w = slurmWatcher(new LocalTransport());
    await w.pollNow();
    await w.pollNow();
    expect(job!.done()).toBe(true);
    const error = (await job!.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("UNKNOWN");
  });

  test("sbatch refusing the job is a SubmissionError with the command, exit code and stderr", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor({ partition: "no-such-partition" });
    const error = (await executor.submit(command("true")).catch((e: unknown) => e)) as SubmissionError;
    expect(error).toBeInstanceOf(SubmissionError);
    expect(error.exitCode).toBe(1);
    expect(error.stderr).toContain("invalid partition specified: no-such-partition");
    expect(error.command[0]).toBe("sbatch");
    expect(error.shortMessage).toMatch(/^Command failed with exit code 1: sbatch --parsable \/.*job\.sbatch$/);
  });

  test("bad parameters are refused before anything is written or submitted", async (ctx) => {
    needCluster(ctx);
    const executor = await slurmExecutor();
    const before = executor.watcher.stats().calls.sbatch;
    expect(() => executor.update({ cpusPerTask: 0 })).toThrow(ParameterError);
    expect(() => new SlurmExecutor({ folder: executor.folder, cpus: 2 } as never)).toThrow("Invalid SlurmExecutor options: Unknown option `cpus` (did you mean `cpusPerTask`?); accepted: account,");
    await expect(executor.mapArray([command("true"), "echo hi" as never])).rejects.toThrow("Invalid tasks: Expected `tasks[1]` to be a task spec from command() or task.with(), got `echo hi`");
    expect(executor.watcher.stats().calls.sbatch).toBe(before);
    expect(await readdir(executor.folder)).toEqual([]);
  });

  test("a job name with quotes, spaces, $, # and a backslash reaches Slurm intact", async (ctx) => {
    needCluster(ctx);
    const name = `it's "a" $HOME \`id\` #x a\\b job`;
    const executor = await slurmExecutor({ jobName: name });
    const job = await executor.submit(command("true"));
    const { stdout } = await slurm("squeue", ["-h", "-t", "all", "-j", job.id, "-o", "%j"]);
    expect(stdout.trim()).toBe(name);
    await job.result();
  });
});
