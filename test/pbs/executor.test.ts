// PbsExecutor on the real OpenPBS test server (test/pbs/pbs.sh): what the
// conformance suite does not cover, or covers for PBS's own words.
import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import {
  atRuntime,
  command,
  JobEndedWithoutResultError,
  LocalTransport,
  loadJobs,
  ParameterError,
  PbsExecutor,
  rerun,
  stageIn,
  stageOut,
  TaskFailedError,
  type PbsExecutorOptions,
} from "../../src/index.js";
import { PbsScheduler } from "../../src/pbs/scheduler.js";
import { PBS_SCRIPT } from "../../src/pbs/script.js";
import { pbsWatcher } from "../../src/pbs/watch.js";
import { probe } from "../fixtures/probe.js";
import { rankOrFail, rankView } from "../fixtures/ranks.js";
import { square } from "../fixtures/tasks.js";
import { waitFor } from "../helpers/cluster.js";
import { needPbs } from "../helpers/pbs.js";
import { runsFolder } from "../helpers/runs-folder.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

/** The test server's hosts' addresses in its network namespace. */
const ADDRESSES: Record<string, string> = { pbshost: "10.123.0.1", pbshost2: "10.123.0.2" };

async function pbsExecutor(options: Partial<PbsExecutorOptions> = {}): Promise<PbsExecutor> {
  return new PbsExecutor({ folder: await runsFolder(), time: 5, mem: "200M", ...options });
}

/** Sets a server attribute for the length of `body`, then back to `after`. */
async function withServer<T>(set: string, after: string, body: () => Promise<T>): Promise<T> {
  await execa("qmgr", ["-c", `set server ${set}`]);
  try {
    return await body();
  } finally {
    await execa("qmgr", ["-c", `set server ${after}`]);
  }
}

beforeAll(() => {
  pbsWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

describe("PbsExecutor on the OpenPBS test server", () => {
  test("an array larger than max_array_size is split into arrays PBS takes, the last one of a single element", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor();
    const jobs = await withServer("max_array_size = 3", "max_array_size = 10000", () => executor.mapArray([0, 1, 2, 3, 4, 5, 6].map((x) => square.with(x))));
    expect((await Promise.all(jobs.map((j) => j.result()))).map((r) => r.square)).toEqual([0, 1, 4, 9, 16, 25, 36]);
    const folder = jobs[0]!.paths.result.replace(/\/results\/.*$/, "");
    const manifest = JSON.parse(await readFile(`${folder}/manifest.json`, "utf8")) as { kind: string; arrays: Array<{ jobId: string; elements: number }> };
    expect(manifest.kind).toBe("pbs");
    expect(manifest.arrays.map((a) => a.elements)).toEqual([3, 3, 1]);
    expect(jobs.map((j) => j.id)).toEqual([0, 1, 2, 0, 1, 2, 0].map((e, i) => `${manifest.arrays[Math.floor(i / 3)]!.jobId}_${e}`));
    // Each element's own log, named by its array and index as on Slurm.
    const logs = await readdir(`${folder}/logs/elements`);
    expect(logs).toContain(`${manifest.arrays[2]!.jobId}_0.err`);
  });

  test("tasks packed in workers run in their slots and report as one per element does", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor({ time: "00:02:00", mem: "100M" });
    const jobs = await executor.mapArray(
      [0, 1, 2, 3, 4, 5].map((x) => square.with(x)),
      { workers: 2, slots: 1 },
    );
    expect((await Promise.all(jobs.map((j) => j.result()))).map((r) => r.square)).toEqual([0, 1, 4, 9, 16, 25]);
    const script = await readFile(`${jobs[0]!.paths.result.replace(/\/results\/.*$/, "")}/job.sbatch`, "utf8");
    // Two slots' worth of a task's 100 MiB, and the worker's own margin: what Slurm's worker asks for too.
    expect(script).toMatch(/^#PBS -l select=1:ncpus=1:mem=\d+mb$/m);
    expect(script).toContain("#PBS -J 0-1");
  });

  test("two ranks on one node (select=1:ncpus=2:mpiprocs=2) run as pbsdsh tasks with the batch shell's variables and folder; rank 0's result is the job's, and a failing rank fails the job", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor({ time: 2, mem: "400M", ntasksPerNode: 2, setup: ["export SLURMKIT_TEST_FROM_SETUP=yes"] });
    const [job] = await executor.mapArray([rankView.with(undefined as never)]);
    const views = await job!.results();
    expect(views.map((v) => [v.env.rank, v.env.localRank, v.env.worldSize, v.env.localWorldSize, v.env.nodeRank, v.env.nodeCount])).toEqual([
      [0, 0, 2, 2, 0, 1],
      [1, 1, 2, 2, 0, 1],
    ]);
    for (const v of views) {
      expect(v.env.jobId).toBe(job!.id);
      // Either host of the server: both ranks on it.
      expect(v.env.hosts).toEqual(views[0]!.env.hosts);
      expect(v.env.hosts).toHaveLength(1);
      // PBS starts a task in the home folder, with PBS's variables alone: the launch gives each rank the batch shell's.
      expect(v.cwd).toBe(process.cwd());
      expect(v.fromSetup).toBe("yes");
      // The rendezvous is the host's address in the server's namespace.
      expect(v.torch).toMatchObject({ MASTER_ADDR: ADDRESSES[v.env.hosts[0]!], RANK: String(v.env.rank), WORLD_SIZE: "2", LOCAL_WORLD_SIZE: "2" });
    }
    expect((await job!.stdout()).split("\n").filter(Boolean).sort()).toEqual(["rank 0 of 2 here", "rank 1 of 2 here"]);
    const script = await readFile(`${dirname(dirname(job!.paths.result))}/job.sbatch`, "utf8");
    expect(script).toMatch(/^#PBS -l select=1:ncpus=2:mpiprocs=2:ompthreads=1:mem=\d+mb$/m);
    // Rank 1 fails: result() is rank 0's, results() rejects with rank 1's error, and the launch ends the job with its status.
    const failing = await executor.submit(rankOrFail.with(1));
    expect(await failing.result()).toBe(0);
    const error = (await failing.results().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.remote.message).toBe("rank 1 failed on purpose");
    const { stdout } = await waitFor("PBS to finish the failed job", async () => {
      const r = await execa("qstat", ["-x", "-f", failing.id]);
      return /job_state = F/.test(r.stdout) ? r : undefined;
    });
    expect(stdout).toMatch(/Exit_status = 1$/m);
    expect(await failing.stderr()).toContain("slurmkit: rank 1 ended with exit status 1; stopping the other ranks");
  });

  test("the first rank to fail stops the others, and the job ends with its exit status", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor({ time: 2, mem: "400M", ntasksPerNode: 2 });
    // Rank 1 fails at once; rank 0 would sleep a minute and succeed.
    const job = await executor.submit(command("sh", ["-c", 'if [ "$SLURMKIT_RANK" = 1 ]; then exit 5; fi; exec sleep 60']));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("FAILED");
    // The rank's status is its runner's: 1 for a task that failed (the command's own 5 is in the log).
    expect((await execa("qstat", ["-x", "-f", job.id])).stdout).toMatch(/Exit_status = 1$/m);
    const log = await job.stderr();
    expect(log).toContain("Command failed with exit code 5");
    expect(log).toContain("slurmkit: rank 1 ended with exit status 1; stopping the other ranks");
    expect(log).toContain("slurmkit runner: task 0 terminated by SIGTERM; no result written");
  });

  test("two hosts (select=2:ncpus=2:mpiprocs=2, place=scatter): ranks 0 and 1 on the first, 2 and 3 on the second, meeting at the first host's address; setup steps run once on each host, and each stages its own files out", async (ctx) => {
    needPbs(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-pbs-two-hosts-"));
    await writeFile(join(dir, "in.txt"), "shared input\n");
    const executor = await pbsExecutor({
      time: 2,
      mem: "400M",
      nodes: 2,
      ntasksPerNode: 2,
      setup: ["export SLURMKIT_TEST_FROM_SETUP=yes", stageIn({ from: join(dir, "in.txt"), to: atRuntime("$TMPDIR/data") }), stageOut({ from: atRuntime("$TMPDIR/out"), to: join(dir, "staged") })],
    });
    const job = await executor.submit(rankView.with(undefined as never));
    const views = await job.results();
    expect(views.map((v) => [v.env.rank, v.env.localRank, v.env.localWorldSize, v.env.nodeRank, v.env.worldSize, v.env.nodeCount])).toEqual([
      [0, 0, 2, 0, 4, 2],
      [1, 1, 2, 0, 4, 2],
      [2, 0, 2, 1, 4, 2],
      [3, 1, 2, 1, 4, 2],
    ]);
    for (const v of views) {
      expect(v.env.hosts).toEqual(["pbshost", "pbshost2"]);
      expect(v.torch).toMatchObject({ MASTER_ADDR: "10.123.0.1", RANK: String(v.env.rank), WORLD_SIZE: "4", NODE_RANK: String(v.env.nodeRank) });
      expect([v.cwd, v.fromSetup]).toEqual([process.cwd(), "yes"]);
      // Each rank staged in on its own host, into that host's own $TMPDIR.
      expect(v.input).toBe("shared input\n");
    }
    // The second MoM runs with its own host name: ranks 2 and 3 ran there, 0 and 1 did not.
    expect(views.map((v) => v.env.hostname === "pbshost2")).toEqual([false, false, true, true]);
    expect(await job.stderr()).toMatch(/slurmkit: staging in [^\n]* on pbshost2/);
    // Stage-out runs from the exit trap on each host, into <to>/<job>/<node>/.
    const staged = join(dir, "staged", job.id);
    await waitFor("stage-out on both hosts", async () => ((await readdir(staged).catch(() => [])).length === 2 ? true : undefined));
    const nodes = (await readdir(staged)).sort();
    expect(nodes).toEqual([views[0]!.env.hostname, "pbshost2"].sort());
    expect((await readdir(join(staged, views[0]!.env.hostname, "out"))).sort()).toEqual(["rank-0", "rank-1"]);
    expect((await readdir(join(staged, "pbshost2", "out"))).sort()).toEqual(["rank-2", "rank-3"]);
    expect(await readFile(join(staged, "pbshost2", "out", "rank-3"), "utf8")).toBe("from rank 3\n");
    expect(await readFile(`${dirname(dirname(job.paths.result))}/job.sbatch`, "utf8")).toMatch(/^#PBS -l select=2:ncpus=2:mpiprocs=2:ompthreads=1:mem=\d+mb\n#PBS -l place=scatter$/m);
  });

  test("the every-host helper of setup steps, on two hosts and under a setup file's set -euo pipefail: each host runs the script once as a pbsdsh task with its arguments, the batch shell's variables, folder and logs; a host's failure is the step's", async (ctx) => {
    needPbs(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-pbs-hosts-"));
    const run = (label: string, script: string, ...args: string[]) =>
      `if slurmkit_on_every_node ${[script, ...args].map((a) => `'${a}'`).join(" ")}; then echo "${label}: 0"; else echo "${label}: $?"; fi`;
    const body = [
      "#!/bin/bash",
      ...PBS_SCRIPT.nodeHelpers,
      "set -euo pipefail",
      `cd ${dir}`,
      "export SLURMKIT_TEST_FROM_BATCH='a b $c'",
      run("first", 'echo "on $slurmkit_node of $slurmkit_node_count in $PWD: $1 / $2 / $SLURMKIT_TEST_FROM_BATCH"; echo to-stderr >&2', "one arg", "two"),
      run("second", "exit 7"),
      run("third", "kill -TERM $$"),
    ].join("\n");
    await writeFile(join(dir, "job.sh"), `${body}\n`);
    const args = ["-k", "oed", "-o", join(dir, "out"), "-e", join(dir, "err"), "-l", "walltime=00:01:00", "-l", "select=2:ncpus=1", "-l", "place=scatter", join(dir, "job.sh")];
    const { stdout: id } = await execa("qsub", args, { cwd: dir });
    await waitFor("the job to finish", async () => (/job_state = F/.test((await execa("qstat", ["-x", "-f", id.trim()])).stdout) ? true : undefined));
    // pbshost2's MoM has its own host name; pbshost's is this machine's.
    const out = (await readFile(join(dir, "out"), "utf8")).split("\n");
    expect(out.slice(0, 2).sort()).toEqual([hostname().split(".")[0], "pbshost2"].sort().map((host) => `on ${host} of 2 in ${dir}: one arg / two / a b $c`));
    expect(out.slice(2)).toEqual(["first: 0", "second: 7", "third: 143", ""]);
    expect(await readFile(join(dir, "err"), "utf8")).toBe("to-stderr\nto-stderr\n");
  });

  test("a task over its walltime ends TIMEOUT (PBS's Exit_status -29)", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor({ time: "00:00:15" });
    const job = await executor.submit(command("sleep", ["300"]));
    expect(await job.wait()).toBe("TIMEOUT");
  });

  test("bad input is refused before qsub: nothing is written and nothing submitted", async (ctx) => {
    needPbs(ctx);
    const folder = await runsFolder();
    const executor = new PbsExecutor({ folder, time: 5 });
    const before = executor.watcher.stats().calls.qsub;
    const bad: Array<[() => Promise<unknown>, RegExp]> = [
      [() => executor.mapArray([square.with(1)], { workers: 0 }), /workers/],
      [() => executor.mapArray([command("echo", ["x"])], { tasksPerElment: 2 } as never), /did you mean `tasksPerElement`/],
      [() => executor.mapArray([square.with((() => 1) as never)]), /is a function, which cannot travel/],
      [async () => new PbsExecutor({ folder, qos: "high" } as never), /`qos` cannot be expressed on PBS/],
      [async () => new PbsExecutor({ folder, time: 5, ndoes: 2 } as never), /did you mean `nodes`/],
      [() => new PbsExecutor({ folder, time: 5, ntasksPerNode: 2 }).mapArray([square.with(1), square.with(2)], { workers: 1 }), /`workers` to be left out for jobs with several ranks/],
    ];
    for (const [attempt, message] of bad) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ParameterError);
      expect(String((error as Error).message) + (error as ParameterError).problems?.join("\n")).toMatch(message);
    }
    expect(executor.watcher.stats().calls.qsub).toBe(before);
    expect(existsSync(folder) ? (await readdir(folder)).filter((n) => n !== "code") : []).toEqual([]);
  });

  test("the bin reads a PBS run folder: status, logs, results, and cancel of a queued task", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor();
    const done = await executor.mapArray([command("sh", ["-c", "echo out-$0; exit 2", "a"]), command("echo", ["fine"])]);
    await Promise.all(done.map((j) => j.wait()));
    const folder = done[0]!.paths.result.replace(/\/results\/.*$/, "");
    const run = (args: string[]) => execa("node", [bin, ...args], { reject: false, env: { CI: "" } });
    const status = await run(["status", folder, "--tasks"]);
    expect(status.stdout).toMatch(/FAILED/);
    expect(status.stdout).toMatch(/COMPLETED/);
    const logs = await run(["logs", folder, "0"]);
    expect(logs.stdout).toContain("out-a");
    const results = await run(["results", folder, "--json"]);
    expect(
      results.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { state: string }).state),
    ).toEqual(["FAILED", "COMPLETED"]);
    // A job held from its submission (`pbs: { h: true }`) stays queued until cancelled through the bin.
    const held = await (await pbsExecutor({ pbs: { h: true } })).submit(command("echo", ["never"]));
    const heldFolder = held.paths.result.replace(/\/results\/.*$/, "");
    const cancel = await run(["cancel", heldFolder]);
    expect(cancel.exitCode, cancel.stderr).toBe(0);
    expect(await held.wait()).toBe("CANCELLED");
    const reloaded = await loadJobs(heldFolder);
    expect(await reloaded[0]!.wait()).toBe("CANCELLED");
  });

  test("rerun on PBS: the API with PBS parameters, and the bin with --pbs pairs; loadJobs lists each task by its latest run", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor();
    const jobs = await executor.mapArray([command("sh", ["-c", 'test "$NCPUS" = 2']), command("echo", ["ok"])]);
    expect(await Promise.all(jobs.map((j) => j.wait()))).toEqual(["FAILED", "COMPLETED"]);
    const [again] = await rerun(jobs, { only: "failed", parameters: { cpusPerTask: 2, pbs: { m: "n" } } });
    expect(await again!.wait()).toBe("COMPLETED");
    const script = await readFile(`${again!.paths.result.replace(/\/results\/.*$/, "")}/job.sbatch`, "utf8");
    expect(script).toContain("#PBS -l select=1:ncpus=2:mem=200mb");
    expect(script).toContain("#PBS -m n");
    // The bin: --pbs pairs are checked as the executor's are, then the rerun is submitted.
    const folder = jobs[0]!.paths.result.replace(/\/results\/.*$/, "");
    const run = (args: string[]) => execa("node", [bin, ...args], { reject: false, env: { CI: "" } });
    const refused = await run(["rerun", folder, "--all", "--pbs", "qos=high"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("`qos` cannot be expressed on PBS");
    const dry = await run(["rerun", folder, "--all", "--dry-run", "--pbs", "time=00:03:00"]);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("#PBS -l walltime=00:03:00");
    const reloaded = await loadJobs(dirname(folder));
    const states = await Promise.all(reloaded.map((j) => j.wait()));
    expect(states).toEqual(["COMPLETED", "COMPLETED"]);
  });

  test("check(): PBS's commands, the server, its queues and history, and a probe job; a queue that is not there fails", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor();
    const report = await executor.check();
    expect(report.ok, JSON.stringify(report.lines)).toBe(true);
    const names = report.lines.map((l) => l.name);
    for (const name of ["PBS commands", "PBS server", "max_array_size", "job history", "queue workq*", "probe job", "run folder on the nodes", "Node.js on the nodes", "node-local scratch"])
      expect(names).toContain(name);
    expect(report.lines.find((l) => l.name === "node-local scratch")!.detail).toMatch(/^\$TMPDIR=\/var\/tmp\/pbs\./);
    const wrong = await executor.check({ partition: "nosuch", job: false });
    expect(wrong.ok).toBe(false);
    expect(wrong.lines.find((l) => l.name === "queue nosuch")).toMatchObject({ status: "fail", detail: "not found", fix: expect.stringMatching(/^use one of (workq, short|short, workq)$/) });
    const cli = await execa("node", [bin, "doctor", "--pbs", "--no-job", "--folder", executor.folder], { reject: false, env: { CI: "" } });
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^OK +job history +on: qstat -x shows finished jobs$/m);
  });

  test("a client killed right after qsub answered: loadJobs finds the arrays by their tag and follows them, split ones included", async (ctx) => {
    const pbs = needPbs(ctx);
    const folder = await runsFolder();
    const killed = await withServer("max_array_size = 2", "max_array_size = 10000", () =>
      execa(tsx, [fileURLToPath(new URL("../fixtures/killed-client.ts", import.meta.url)), folder, "3", "2", "", "pbs"], { reject: false, env: { PATH: `${pbs.bin}:${process.env.PATH}` } }),
    );
    // tsx passes on its child's SIGKILL as 128 + 9.
    expect(killed.exitCode, killed.stderr).toBe(137);
    const [dir] = (await readdir(folder)).filter((n) => n !== "code");
    const before = JSON.parse(await readFile(`${folder}/${dir}/manifest.json`, "utf8")) as { jobId: string | null };
    expect(before.jobId).toBeNull();
    const jobs = await loadJobs(folder);
    expect((await Promise.all(jobs.map((j) => j.result()))).map((r) => (r as { square: number }).square)).toEqual([1, 4, 9]);
    const after = JSON.parse(await readFile(`${folder}/${dir}/manifest.json`, "utf8")) as { jobId: string; arrays: Array<{ firstElement: number; elements: number }> };
    expect(after.jobId).toMatch(/^\d+$/);
    // The second array has one element (`-J 0-1:2`), read back as one.
    expect(after.arrays.map((a) => [a.firstElement, a.elements])).toEqual([
      [0, 2],
      [2, 1],
    ]);
  });

  test("`after` waits for a whole array; naming only some of its tasks is refused before anything is written", async (ctx) => {
    needPbs(ctx);
    const executor = await pbsExecutor();
    const first = await executor.mapArray([command("sleep", ["3"]), command("sleep", ["3"])]);
    const before = (await readdir(executor.folder)).length;
    const error = await executor.mapArray([command("echo", ["x"])], { after: [first[0]!] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParameterError);
    expect((error as ParameterError).problems[0]).toContain("PBS cannot make a job wait for single subjobs of an array");
    expect((await readdir(executor.folder)).length).toBe(before);
    const [then] = await executor.mapArray([command("sh", ["-c", 'test -e "$1" && test -e "$2"', "sh", first[0]!.paths.result, first[1]!.paths.result])], { after: first });
    const script = await readFile(`${then!.paths.result.replace(/\/results\/.*$/, "")}/job.sbatch`, "utf8");
    expect(script).toContain(`#PBS -W depend=afterok:${first[0]!.id.split("_")[0]}[]`);
    expect(await then!.wait()).toBe("COMPLETED");
  });

  test("when the workers run out of walltime, the client submits more (a top-up round with its tag); loadJobs in a new process follows them", { timeout: 300_000 }, async (ctx) => {
    needPbs(ctx);
    // The short queue's walltime limit is 2 minutes: a worker there fits two or three 25 s tasks of a one-minute limit.
    const executor = await pbsExecutor({ time: 1, partition: "short" });
    const jobs = await executor.mapArray(
      Array.from({ length: 4 }, () => probe.with({ ms: 25_000 })),
      { workers: 1 },
    );
    const folder = jobs[0]!.paths.result.replace(/\/results\/.*$/, "");
    const manifestOf = async () => JSON.parse(await readFile(`${folder}/manifest.json`, "utf8")) as { workers: { walltimeSeconds: number }; arrays: Array<{ jobId: string }> };
    expect((await manifestOf()).workers.walltimeSeconds).toBe(120);
    const results = await Promise.all(jobs.map((j) => j.result()));
    const manifest = await manifestOf();
    expect(manifest.arrays.length).toBeGreaterThanOrEqual(2);
    expect(new Set(results.map((r) => r.worker?.split("_")[0])).size).toBeGreaterThanOrEqual(2);
    // The round's array carries the submission's tag, as the first one does, so a lost qsub answer can be found.
    const round = manifest.arrays[1]!.jobId;
    const shown = await execa("qstat", ["-x", "-f", `${round}[]`]);
    expect(shown.stdout.replace(/\n\t/g, "")).toContain(`SLURMKIT_TAG=slurmkit:${basename(folder)}:workers`);
    const reloaded = await loadJobs(dirname(folder));
    expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
  });

  test("a server without job history: said once, and the run folder still settles the futures", async (ctx) => {
    needPbs(ctx);
    const said: string[] = [];
    const scheduler = new PbsScheduler(new LocalTransport());
    scheduler.onNoHistory = (m) => said.push(m);
    const executor = await pbsExecutor();
    const [job] = await executor.mapArray([square.with(5)]);
    await job!.result();
    const entries = await withServer("job_history_enable = False", "job_history_enable = True", async () => {
      const first = await scheduler.queue([job!.id.split("_")[0]!]);
      await scheduler.queue([job!.id.split("_")[0]!]);
      return first;
    });
    expect(entries).toEqual([]);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/keeps no finished jobs \(job_history_enable is False\)/);
    expect(await (await loadJobs(job!.paths.result.replace(/\/results\/.*$/, "")))[0]!.wait()).toBe("COMPLETED");
  });
});
