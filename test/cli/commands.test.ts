// The slurmkit command line on real run folders made on the real cluster:
// status, results, logs, rerun and cancel, locally and over SSH.
import { execa } from "execa";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, inject, onTestFinished, test } from "vitest";
import { command, LocalTransport, loadJobs, ParameterError, rerun, SlurmExecutor, SubmissionError, type Job } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { flaky } from "../fixtures/sweep.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { needCluster, slurm } from "../helpers/cluster.js";
import { acceptedLogins, answerPrompts, needSsh } from "../helpers/ssh.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

/** Runs the built bin; never rejects. */
async function cli(args: readonly string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await execa("node", [bin, ...args], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF, CI: "" } });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

const submissions = async (folder: string) => (await readdir(folder)).filter((n) => /^\d{8}T\d{6}Z-[0-9a-f]{6}$/.test(n)).sort();
const FAILING = [1, 4, 7];

describe("the slurmkit command line on a sweep with 3 failed tasks", { timeout: 240_000 }, () => {
  let folder: string;
  let marker: string;
  let jobs: Job<unknown>[];

  beforeAll(async () => {
    if (!inject("cluster").available) return; // each test then skips, or fails under CI=true
    slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
    folder = await runsFolder();
    marker = join(folder, "fixed");
    const executor = new SlurmExecutor({ folder, time: 2, mem: "100M" });
    jobs = await executor.mapArray(Array.from({ length: 10 }, (_, i) => flaky.with({ i, fail: FAILING.includes(i), unless: marker })));
    await Promise.all(jobs.map((j) => j.wait()));
  }, 240_000);

  test("status: a table per submission, counts per state, exit 1 when a task failed; --json and --tasks", async (ctx) => {
    needCluster(ctx);
    const plain = await cli(["status", folder]);
    expect(plain.exitCode).toBe(1);
    const [head, row, blank, usageHead, usageRow, ...rest] = plain.stdout.split("\n");
    expect(head!.split("\t")).toEqual(["SUBMISSION", "TASKS", "COMPLETED", "FAILED"]); // not a TTY: tab-separated, no colour
    expect(row!.split("\t").slice(1)).toEqual(["10", "7", "3"]);
    // What the tasks used, against what they asked for: every task that ran was measured.
    expect(blank).toBe("");
    expect(usageHead!.split("\t")).toEqual(["SUBMISSION", "MEASURED", "CPU USED", "CPU HELD", "CPU EFF", "MEM PEAK", "MEM MEAN", "MEM ASKED", "MEM EFF", "LONGEST"]);
    expect(usageRow!.split("\t")[1]).toBe("10");
    expect(rest).toEqual([]);
    expect(plain.stdout).not.toContain("\x1b[");
    const json = JSON.parse((await cli(["status", folder, "--json", "--tasks"])).stdout) as {
      submissions: Array<{ tasks: number; states: Record<string, number>; usage: { measured: number; cpuSeconds: number; memPeakMb: number } }>;
      tasks: Array<{ index: number; state: string; host: string; startedAt: number; endedAt: number; id: string; cpuSeconds: number; memPeakMb: number }>;
      exitCode: number;
    };
    expect(json.submissions).toHaveLength(1);
    expect(json.submissions[0]!.states).toEqual({ COMPLETED: 7, FAILED: 3 });
    expect(json.submissions[0]!.usage.measured).toBe(10);
    expect(json.submissions[0]!.usage.memPeakMb).toBeGreaterThan(20);
    expect(json.exitCode).toBe(1);
    expect(json.tasks.map((t) => t.state)).toEqual(jobs.map((j) => j.state));
    expect(json.tasks.map((t) => t.id)).toEqual(jobs.map((j) => j.id));
    for (const t of json.tasks) {
      expect(["n1", "n2"]).toContain(t.host);
      expect(t.endedAt).toBeGreaterThanOrEqual(t.startedAt);
      expect(t.cpuSeconds).toBeGreaterThanOrEqual(0);
      expect(t.memPeakMb).toBeGreaterThan(20);
    }
    const tasks = await cli(["status", folder, "--tasks"]);
    const lines = tasks.stdout.split("\n").filter((l) => /^\d+\t/.test(l));
    expect(lines).toHaveLength(10);
    expect(lines[1]!.split("\t").slice(2, 5)).toEqual(["1", jobs[1]!.id, "FAILED"]);
  });

  test("results: one JSON line per task with its value, or its error with message, remote stack, host and log", async (ctx) => {
    needCluster(ctx);
    const out = await cli(["results", folder]);
    expect(out.exitCode).toBe(0);
    const rows = out.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => r.index)).toEqual([...Array(10).keys()]);
    for (const [i, r] of rows.entries()) {
      expect(r.id).toBe(jobs[i]!.id);
      if (FAILING.includes(i)) {
        expect(r.state).toBe("FAILED");
        const error = r.error as Record<string, string>;
        expect(error.name).toBe("RangeError");
        expect(error.message).toBe(`task ${i} fails until ${marker} exists`);
        expect(error.stack).toContain("sweep.ts");
        expect(["n1", "n2"]).toContain(error.host);
        expect(error.log).toBe(jobs[i]!.paths.stderr);
        expect(r.result).toBeUndefined();
      } else {
        expect(r.state).toBe("COMPLETED");
        expect(r.result).toEqual({
          i,
          big: 2 ** 40 + i,
          huge: 18446744073709552000,
          negative: -(2 ** 40),
          ratio: i / 4,
          bytes: { $base64: Buffer.from([i, 255]).toString("base64") },
          text: "naïve ✓",
        });
      }
    }
    // The wide integer is written with every digit, though JSON.parse in JavaScript rounds it.
    expect(out.stdout).toContain('"huge":18446744073709551615');
    const failed = await cli(["results", folder, "--failed"]);
    expect(
      failed.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { task: number }).task),
    ).toEqual(FAILING);
  });

  test("Python's msgpack reads a result file written on the cluster, with the same values and integers kept", async (ctx) => {
    needCluster(ctx);
    const script = [
      "import json, msgpack, sys",
      "r = msgpack.unpackb(open(sys.argv[1], 'rb').read(), raw=False)",
      "v = r['value']",
      "print(json.dumps({'ok': r['ok'], 'host': r['host'], 'jobId': r['jobId'], 'types': {k: type(x).__name__ for k, x in v.items()}, 'big': v['big'], 'huge': v['huge'], 'negative': v['negative'], 'bytes': list(v['bytes']), 'text': v['text'], 'startedAt': type(r['startedAt']).__name__}))",
    ].join("\n");
    // Debian's python3, which python3-msgpack (installed by cluster.sh) serves; a pyenv python3 earlier on PATH would not have it.
    const { stdout } = await execa("/usr/bin/python3", ["-c", script, jobs[2]!.paths.result]);
    const read = JSON.parse(stdout) as Record<string, unknown>;
    expect(read).toEqual({
      ok: true,
      host: expect.stringMatching(/^n[12]$/),
      jobId: jobs[2]!.id,
      types: { i: "int", big: "int", huge: "int", negative: "int", ratio: "float", bytes: "bytes", text: "str" },
      big: 2 ** 40 + 2,
      huge: 18446744073709552000, // JSON.parse here rounds it; the exact digits are checked below
      negative: -(2 ** 40),
      bytes: [2, 255],
      text: "naïve ✓",
      startedAt: "int",
    });
    expect(stdout).toContain('"huge": 18446744073709551615');
  });

  test("logs: by index or Slurm id, --err, --attempt; a task that does not exist is exit 2", async (ctx) => {
    needCluster(ctx);
    expect((await cli(["logs", folder, "0"])).stdout).toMatch(/^hello from 0 on n[12]$/);
    expect((await cli(["logs", folder, jobs[2]!.id])).stdout).toMatch(/^hello from 2 on n[12]$/);
    expect((await cli(["logs", folder, "4", "--err"])).stdout).toContain("RangeError: task 4 fails until");
    expect((await cli(["logs", folder, "4", "--attempt", "0"])).stdout).toMatch(/^hello from 4/);
    const missing = await cli(["logs", folder, "99"]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain("No task 99 in this folder: it has indices 0 to 9");
    const attempt = await cli(["logs", folder, "4", "--attempt", "1"]);
    expect(attempt.exitCode).toBe(2);
    expect(attempt.stderr).toContain("Expected --attempt to be an attempt of task 4: 0, got '1'");
  });

  test("bad commands, folders and overrides: a clear message, exit 2, nothing submitted", async (ctx) => {
    needCluster(ctx);
    const before = await submissions(folder);
    await writeFile(join(folder, "fixed-not-a-folder"), "");
    const cases: Array<[string[], string]> = [
      [["frobnicate", folder], "unknown command 'frobnicate'"],
      [["statsu", folder], "did you mean status?"],
      [["status", join(folder, "nope")], "or its subfolders: it is empty or does not exist"],
      [["status", join(folder, "fixed-not-a-folder")], "cannot be listed"],
      [["status", "/tmp"], "No slurmkit submission (manifest.json) in /tmp"],
      [["status"], "slurmkit status needs a run folder"],
      [["status", folder, "--bogus"], "Unknown option '--bogus'"],
      [["rerun", folder, "--failed", "--slurm", "mem=lots"], "Expected `mem` to be megabytes or a size with a unit such as `500M`, `32G` or `32GB`, or 0 for all of each node's memory, got `lots`"],
      [["rerun", folder, "--failed", "--slurm", "cpus_per_tsk=2"], "cpus_per_task"],
      [["rerun", folder, "--failed", "--state", "TIMEOUT"], "Say which tasks to rerun, one way"],
      [["rerun", folder], "Say which tasks to rerun, one way"],
      [["rerun", folder, "--state", "FIALED"], "Expected --state to be end states separated by commas"],
      [["rerun", folder, "42"], "No task 42"],
      [["status", folder, "--ssh", "nobody", "--identity", "key"], "Expected --ssh user@host or user@host:port (port 1-65535) with --identity"],
      [["status", folder, "--ssh=-oProxyCommand=touch /tmp/x"], "Expected --ssh to be a Host alias from ~/.ssh/config or user@host[:port]"],
      [["status", folder, "--ssh-config", "ssh_config"], "--ssh-config, --identity and --known-hosts go with --ssh DEST"],
      [["status", "/tmp", "--ssh", "somewhere", "--ssh-config", "c", "--identity", "k"], "--ssh-config is for the system's ssh"],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(message);
    }
    expect(await submissions(folder)).toEqual(before);
  });

  test("rerun --failed reruns exactly the 3 failed tasks with the overrides; status, results and loadJobs then report the latest run", async (ctx) => {
    needCluster(ctx);
    const [original] = await submissions(folder);
    await writeFile(marker, "");
    // --dry-run prints what would be submitted and submits nothing.
    const dry = await cli(["rerun", folder, "--failed", "--slurm", "mem=200M", "--dry-run"]);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain("#SBATCH --mem=200M");
    expect(dry.stdout).toMatch(/^3 tasks into \S+\n/);
    expect(dry.stdout).toContain("Nothing was submitted (--dry-run).");
    expect(await submissions(folder)).toEqual([original]);
    const out = await cli(["rerun", folder, "--failed", "--slurm", "mem=200M"]);
    expect(out.stderr).toBe("");
    expect(out.exitCode).toBe(0);
    const added = (await submissions(folder)).filter((n) => n !== original);
    expect(added).toHaveLength(1);
    expect(out.stdout).toMatch(new RegExp(`^Rerunning 3 tasks of ${original} \\(1, 4, 7\\) as ${added[0]}: Slurm job \\d+$`));
    const manifest = JSON.parse(await readFile(join(folder, added[0]!, "manifest.json"), "utf8")) as { taskCount: number; rerun: unknown };
    expect(manifest.taskCount).toBe(3);
    expect(manifest.rerun).toEqual({ of: original, tasks: FAILING });
    expect(await readFile(join(folder, added[0]!, "job.sbatch"), "utf8")).toContain("#SBATCH --mem=200M");

    const watched = await cli(["watch", folder, "--interval", "0.5"]);
    expect(watched.exitCode).toBe(0);
    expect(watched.stdout).toMatch(new RegExp(`${original}  10/10 done  0 running  0 pending  0 failed\\n`));

    const status = await cli(["status", folder]);
    expect(status.exitCode).toBe(0);
    expect(status.stdout.split("\n")[0]!.split("\t")).toEqual(["SUBMISSION", "TASKS", "COMPLETED", "RERUN"]);
    expect(status.stdout.split("\n")[1]!.split("\t")).toEqual([original, "10", "10", "3"]);

    const rows = (await cli(["results", folder])).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { task: number; id: string; state: string; result: { i: number } });
    expect(rows.map((r) => [r.task, r.state, r.result.i])).toEqual([...Array(10).keys()].map((i) => [i, "COMPLETED", i]));
    for (const i of FAILING) expect(rows[i]!.id).not.toBe(jobs[i]!.id);

    for (const where of [folder, join(folder, original!)]) {
      const loaded = await loadJobs(where);
      expect(loaded).toHaveLength(10);
      expect(await Promise.all(loaded.map(async (j) => ((await j.result()) as { i: number }).i))).toEqual([...Array(10).keys()]);
      expect(loaded.map((j) => j.id)).toEqual(rows.map((r) => r.id));
      // Indices as the command line numbers them: a rerun's future has its original task's index, and its own folder's taskIndex.
      expect(loaded.map((j) => j.index)).toEqual(rows.map((r) => r.task));
      expect(FAILING.map((i) => loaded[i]!.taskIndex)).toEqual([0, 1, 2]);
    }
    // Attempts count across reruns: attempt 0 failed, attempt 1 is the rerun.
    expect((await cli(["logs", folder, "7", "--attempt", "0", "--err"])).stdout).toContain("RangeError: task 7 fails until");
    expect((await cli(["logs", folder, "7", "--attempt", "1"])).stdout).toMatch(/^hello from 7 on n[12]$/);
  });
});

describe("rerun() and cancel from the SDK and the command line", { timeout: 240_000 }, () => {
  test("rerun() checks before it submits: bad parameters, jobs still running, bad `only`; cancel ends what is named", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    const jobs = await executor.mapArray([command("sleep", ["300"]), command("sleep", ["300"]), command("sleep", ["300"])]);
    onTestFinished(() => Promise.all(jobs.map((j) => j.cancel())).then(() => undefined)); // never leave sleepers holding the cluster's CPUs
    const before = await submissions(folder);
    await expect(rerun(jobs)).rejects.toThrow(/Expected every job to have ended; .* is (PENDING|RUNNING)/);
    await expect(rerun(jobs, { only: ["DONE" as never] })).rejects.toThrow(ParameterError);
    expect(await rerun(jobs, { only: "failed" })).toEqual([]);

    const one = await cli(["cancel", folder, "1"]);
    expect(one.exitCode).toBe(0);
    expect(one.stdout).toBe(`Cancelled 1 task: 1 (${jobs[1]!.id})`);
    expect(await jobs[1]!.wait()).toBe("CANCELLED");
    expect((await cli(["status", folder])).exitCode).toBe(3); // the others are still pending or running
    await expect(rerun([jobs[1]!], { parameters: { mem: "lots" } })).rejects.toThrow(ParameterError);
    expect(await submissions(folder)).toEqual(before);

    const all = await cli(["cancel", folder]);
    expect(all.stdout).toBe(`Cancelled 2 tasks: 0 (${jobs[0]!.id}), 2 (${jobs[2]!.id})`);
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(["CANCELLED", "CANCELLED", "CANCELLED"]);
    const status = await cli(["status", folder, "--json"]);
    expect(status.exitCode).toBe(1);
    expect((JSON.parse(status.stdout) as { submissions: Array<{ states: object }> }).submissions[0]!.states).toEqual({ CANCELLED: 3 });

    // rerun() from the SDK: the cancelled tasks run again with a new command time limit, as a new submission.
    const again = await rerun(jobs, { only: ["CANCELLED"], parameters: { time: 1 } });
    expect(again).toHaveLength(3);
    expect((await submissions(folder)).length).toBe(2);
    const { stdout } = await slurm("scontrol", ["show", "job", again[0]!.id.split("_")[0]!]);
    expect(stdout).toMatch(/TimeLimit=00:01:00/);
    onTestFinished(() => Promise.all(again.map((j) => j.cancel())).then(() => undefined));
  });
});

describe("a rerun is all or nothing", { timeout: 240_000 }, () => {
  test("tasks from two submissions, where the overrides suit one and not the other: a ParameterError, and nothing is submitted", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    const plain = await executor.mapArray([flaky.with({ i: 0, fail: true, unless: "/nonexistent" })]);
    const packed = await executor.mapArray([flaky.with({ i: 1, fail: true, unless: "/nonexistent" }), flaky.with({ i: 2, fail: false, unless: "" })], { workers: 1 });
    const all = [...plain, ...packed];
    await Promise.all(all.map((j) => j.wait()));
    const before = await submissions(folder);
    // Two ranks per task suit the plain submission; the packed one asked for a worker count, which several ranks cannot have.
    await expect(rerun(all, { only: "failed", parameters: { nodes: 1, ntasksPerNode: 2 } })).rejects.toThrow(/Expected `workers` to be left out for jobs with several ranks/);
    // A bad override fails even when no job is chosen.
    await expect(rerun(all, { only: ["TIMEOUT"], parameters: { mem: "lots" } })).rejects.toThrow(ParameterError);
    expect(await submissions(folder)).toEqual(before);
    // The same task named twice (by its index and its Slurm id) is rerun once.
    const twice = await cli(["rerun", folder, "0", plain[0]!.id]);
    expect(twice.stdout).toMatch(/^Rerunning 1 task of \S+ \(0\) as \S+: Slurm job \d+$/);
    await Promise.all((await loadJobs(folder)).map((j) => j.wait()));
  });
});

describe("a rerun that sbatch refuses halfway", { timeout: 240_000 }, () => {
  test("the reruns submitted before the refusal are cancelled and never listed: loadJobs still shows the original runs", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    const one = await executor.mapArray([flaky.with({ i: 0, fail: true, unless: "/nonexistent" })]);
    const ranked = await new SlurmExecutor({ folder, time: 2, nodes: 1, ntasksPerNode: 2 }).mapArray([flaky.with({ i: 1, fail: true, unless: "/nonexistent" })]);
    await Promise.all([...one, ...ranked].map((j) => j.wait()));
    const before = await submissions(folder);
    // Two CPUs per task fit the first (one rank) and not the second (two ranks on one 2-CPU node): sbatch refuses only the second.
    const error = (await rerun([...one, ...ranked], { only: "failed", parameters: { cpusPerTask: 2 } }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(SubmissionError);
    expect(error.message).toContain("Requested node configuration is not available");
    const added = (await submissions(folder)).filter((n) => !before.includes(n));
    expect(added).toHaveLength(2);
    const manifests = await Promise.all(added.map(async (n) => JSON.parse(await readFile(join(folder, n, "manifest.json"), "utf8")) as { jobId: string | null }));
    expect(manifests.map((m) => m.jobId)).toEqual([null, null]); // the first was withdrawn, the second never submitted
    const loaded = await loadJobs(folder);
    expect(loaded.map((j) => j.id)).toEqual([one[0]!.id, ranked[0]!.id]);
    expect(await Promise.all(loaded.map((j) => j.wait()))).toEqual(["FAILED", "FAILED"]);
    const { stdout } = await slurm("squeue", ["-h", "-o", "%i %T", "-u", "root"]);
    expect(stdout).not.toMatch(/PENDING|RUNNING/);
  });
});

describe("logs --follow, and reruns of packed tasks", { timeout: 240_000 }, () => {
  test("logs --follow prints a running task's output as it grows, and returns once the task ended", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    const [job] = await executor.mapArray([command("bash", ["-c", "for i in 1 2 3 4 5; do echo line $i; sleep 1; done"])]);
    const follow = execa("node", [bin, "logs", folder, "0", "--follow"], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF } });
    const chunks: string[] = [];
    follow.stdout.on("data", (d: Buffer) => chunks.push(String(d)));
    const r = await follow;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("line 1\nline 2\nline 3\nline 4\nline 5");
    // It printed the first line before the last one existed: the output came as the log grew.
    const first = chunks.findIndex((c) => c.includes("line 1"));
    expect(chunks[first]).not.toContain("line 5");
    expect(await job!.wait()).toBe("COMPLETED");
  });

  test("rerun() of failed tasks in a packed submission: new workers run exactly those, and loadJobs lists every task by its latest run", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const marker = join(folder, "fixed");
    const executor = new SlurmExecutor({ folder, time: 2 });
    const jobs = await executor.mapArray(
      Array.from({ length: 6 }, (_, i) => flaky.with({ i, fail: i === 1 || i === 4, unless: marker })),
      { workers: 2 },
    );
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(["COMPLETED", "FAILED", "COMPLETED", "COMPLETED", "FAILED", "COMPLETED"]);
    await writeFile(marker, "");
    const again = await rerun(jobs, { only: "failed" });
    expect(await Promise.all(again.map(async (j) => ((await j.result()) as { i: number }).i))).toEqual([1, 4]);
    const [original, added] = await submissions(folder);
    const manifest = JSON.parse(await readFile(join(folder, added!, "manifest.json"), "utf8")) as { workers?: { count: number }; rerun: unknown; taskCount: number };
    expect(manifest).toMatchObject({ taskCount: 2, workers: { count: 2 }, rerun: { of: original, tasks: [1, 4] } });
    const loaded = await loadJobs(folder);
    expect(await Promise.all(loaded.map(async (j) => ((await j.result()) as { i: number }).i))).toEqual([0, 1, 2, 3, 4, 5]);
    expect((await cli(["status", folder])).exitCode).toBe(0);
  });
});

describe("the command line over SSH", { timeout: 240_000 }, () => {
  test("every command on a folder reached over SSH: status, results, logs, rerun, watch and cancel, with host keys checked", async (ctx) => {
    const info = needSsh(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    const marker = join(folder, "fixed");
    const jobs = await executor.mapArray([flaky.with({ i: 0, fail: false, unless: "" }), flaky.with({ i: 1, fail: true, unless: marker })]);
    await Promise.all(jobs.map((j) => j.wait()));
    const ssh = ["--ssh", "root@127.0.0.1:2222", "--identity", join(info.dir, "userkey"), "--known-hosts", join(info.dir, "known_hosts")];
    const status = await cli(["status", folder, "--json", ...ssh]);
    expect(status.stderr).toBe("");
    expect(status.exitCode).toBe(1);
    expect((JSON.parse(status.stdout) as { submissions: Array<{ states: object }> }).submissions[0]!.states).toEqual({ COMPLETED: 1, FAILED: 1 });
    const rows = (await cli(["results", folder, ...ssh])).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { state: string; result?: { big: number }; error?: { message: string } });
    expect(rows[0]!.result!.big).toBe(2 ** 40);
    expect(rows[1]!.error!.message).toBe(`task 1 fails until ${marker} exists`);
    expect((await cli(["logs", folder, "1", ...ssh])).stdout).toMatch(/^hello from 1 on n[12]$/);
    // rerun and watch over SSH: the failed task runs again from the stored spec and completes.
    await writeFile(marker, "");
    const before = await submissions(folder);
    const again = await cli(["rerun", folder, "1", "--slurm", "sbatch.comment=ssh-rerun", ...ssh]);
    expect(again.stderr).toBe("");
    expect(again.stdout).toMatch(/^Rerunning 1 task of \S+ \(1\) as \S+: Slurm job \d+$/);
    const [added] = (await submissions(folder)).filter((n) => !before.includes(n));
    expect(await readFile(join(folder, added!, "job.sbatch"), "utf8")).toContain(`#SBATCH --comment='slurmkit:${added}:0 ssh-rerun'`); // the tag, then the user's comment
    const watched = await cli(["watch", folder, "--json", ...ssh]);
    const last = JSON.parse(watched.stdout.trim().split("\n").at(-1)!) as { submissions: Array<{ states: object; reruns: number }>; exitCode: number };
    expect(last.submissions[0]).toMatchObject({ states: { COMPLETED: 2 }, reruns: 1 });
    expect(watched.exitCode).toBe(0);
    // cancel over SSH.
    const sleepers = await executor.mapArray([command("sleep", ["300"]), command("sleep", ["300"])]);
    onTestFinished(() => Promise.all(sleepers.map((j) => j.cancel())).then(() => undefined));
    const sleepFolder = dirname(dirname(sleepers[0]!.paths.result));
    const cancelled = await cli(["cancel", sleepFolder, ...ssh]);
    expect(cancelled.stdout).toBe(`Cancelled 2 tasks: 0 (${sleepers[0]!.id}), 1 (${sleepers[1]!.id})`);
    expect(await Promise.all(sleepers.map((j) => j.wait()))).toEqual(["CANCELLED", "CANCELLED"]);
    // An unknown host key is refused, as in the SDK.
    const stranger = await cli(["status", folder, "--ssh", "root@127.0.0.1:2222", "--identity", join(info.dir, "userkey"), "--known-hosts", "/dev/null"]);
    expect(stranger.exitCode).toBe(2);
    expect(stranger.stderr).toMatch(/host key|known_hosts/i);
  });

  test("--ssh takes a Host alias for the system's ssh (--ssh-config for another ssh_config); an unknown host key says how to accept it", async (ctx) => {
    const info = needSsh(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    const jobs = await executor.mapArray([flaky.with({ i: 0, fail: false, unless: "" }), flaky.with({ i: 1, fail: true, unless: join(folder, "never") })]);
    await Promise.all(jobs.map((j) => j.wait()));
    const config = join(info.dir, "openssh-config");
    const ssh = ["--ssh", "slurmkit-via-bastion", "--ssh-config", config];
    const status = await cli(["status", folder, "--json", ...ssh]);
    expect(status.exitCode).toBe(1);
    expect((JSON.parse(status.stdout) as { submissions: Array<{ states: object }> }).submissions[0]!.states).toEqual({ COMPLETED: 1, FAILED: 1 });
    expect(status.stderr).toBe("slurmkit: connecting to slurmkit-via-bastion (root@127.0.0.1:2222)");
    expect((await cli(["logs", folder, "1", ...ssh])).stdout).toMatch(/^hello from 1 on n[12]$/);
    // A config whose known_hosts does not have the server's key.
    const stranger = join(await runsFolder(), "ssh_config");
    await writeFile(stranger, (await readFile(config, "utf8")).replaceAll(join(info.dir, "known_hosts"), "/dev/null"));
    const refused = await cli(["status", folder, "--ssh", "slurmkit-test", "--ssh-config", stranger]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("Run `ssh slurmkit-test` once in a terminal, compare the fingerprint");
  });

  test("connect logs in once (MFA answered on the terminal) and later runs without a terminal use it; after --close they fail at once, saying what to do", async (ctx) => {
    const info = needSsh(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2 });
    await Promise.all((await executor.mapArray([flaky.with({ i: 0, fail: false, unless: "" })])).map((j) => j.wait()));
    const sockets = await runsFolder();
    const askpass = await answerPrompts(info);
    const ssh = ["--ssh", "slurmkit-mfa", "--ssh-config", join(info.dir, "openssh-config")];
    const run = (args: string[], prompts: boolean) =>
      execa("node", [bin, ...args], {
        reject: false,
        stdin: "ignore",
        env: { SLURMKIT_SSH_DIR: sockets, CI: "", ...(prompts ? {} : { SSH_ASKPASS: "", SSH_ASKPASS_REQUIRE: "" }) },
      });
    try {
      const before = await acceptedLogins(info, "mfa");
      const connected = await run(["connect", "slurmkit-mfa", "--ssh-config", join(info.dir, "openssh-config"), "--persist", "5m"], true);
      expect(connected.stdout).toContain("Connected to slurmkit-mfa.");
      expect(connected.exitCode).toBe(0);
      expect(await askpass.prompts()).toHaveLength(1);
      // No terminal and no askpass now: the runs ride the connection connect opened.
      for (let i = 0; i < 3; i++) {
        const status = await run(["status", folder, ...ssh], false);
        expect(status.stderr).toBe("");
        expect(status.exitCode).toBe(0);
      }
      expect(await acceptedLogins(info, "mfa")).toBe(before + 1);
      expect((await run(["connect", "slurmkit-mfa", "--ssh-config", join(info.dir, "openssh-config"), "--close"], false)).stdout).toBe("Closed the connection to slurmkit-mfa.");
      const refused = await run(["status", folder, ...ssh], false);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain("nothing can answer a prompt here (no terminal): open the connection first in a terminal, with `slurmkit connect slurmkit-mfa`");
      expect(await askpass.prompts()).toHaveLength(1);
    } finally {
      askpass.restore();
    }
  });
});
