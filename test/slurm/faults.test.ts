import { TransportError } from "../../src/base/errors.js";
// Fault drills on the real cluster: each fault must settle every future
// correctly, with nothing lost. Faults are injected through a transport
// that wraps the real one (test/helpers/faults.ts).
import { execa } from "execa";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, onTestFinished, test, vi } from "vitest";
import { AmbiguousSubmissionError, command, LocalTransport, loadJobs, SlurmExecutor, SshTransport, WaitTimeoutError, type WatcherHealth } from "../../src/index.js";
import { FAILING_POLLS, READ_ATTEMPTS } from "../../src/engine/watcher.js";
import { square, whereAmI } from "../fixtures/tasks.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { FaultyTransport } from "../helpers/faults.js";
import { Watcher } from "../../src/engine/watcher.js";
import { NEVER_FOUND_AFTER_MS } from "../../src/slurm/recover.js";
import { needSsh, restartSshd, sshOptions } from "../helpers/ssh.js";

const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const submissionOf = (job: { paths: { result: string } }) => dirname(dirname(job.paths.result));

/** Runs test/fixtures/killed-client.ts: it submits `tasks` tasks and dies (SIGKILL) right after its `calls`-th sbatch. */
function killedClient(folder: string, tasks: number, calls: number, hold?: "hold") {
  // node itself runs the client (tsx as a loader), so the process that dies is the one execa started.
  return execa(process.execPath, ["--import", "tsx", join(fixtures, "killed-client.ts"), folder, String(tasks), String(calls), ...(hold ? [hold] : [])], {
    reject: false,
    env: { SLURM_CONF: process.env.SLURM_CONF },
  });
}

/** The local transport, except that squeue's answers by tag keep only the lines `keep` accepts: Slurm has forgotten the others. */
function forgetful(keep: (line: string) => boolean): FaultyTransport {
  return new FaultyTransport(new LocalTransport(), {
    async run(program, args, real) {
      const result = await real();
      if (program !== "squeue" || !args.includes("%F|%k")) return result;
      return { ...result, stdout: result.stdout.split("\n").filter(keep).join("\n") };
    },
  });
}

describe("fault drills", { timeout: 240_000 }, () => {
  test("the client killed (SIGKILL) between sbatch and the manifest's job id: loadJobs finds the jobs by their tag and returns their results", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const killed = await killedClient(folder, 3, 1);
    expect(killed.signal).toBe("SIGKILL");
    expect(killed.stdout).not.toContain("not reached");
    const [dir] = (await readdir(folder)).filter((n) => /^\d{8}T/.test(n));
    const before = JSON.parse(await readFile(join(folder, dir!, "manifest.json"), "utf8")) as { jobId: string | null };
    expect(before.jobId).toBeNull(); // the kill came before the manifest got its id
    const jobs = await loadJobs(folder);
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual([1, 2, 3].map((n) => expect.objectContaining({ x: n, square: n * n })));
    const after = JSON.parse(await readFile(join(folder, dir!, "manifest.json"), "utf8")) as { jobId: string | null };
    expect(after.jobId).toMatch(/^\d+$/);
    expect(jobs[0]!.id).toBe(`${after.jobId}_0`);
    const { stdout } = await slurm("squeue", ["-h", "-t", "all", "-j", after.jobId!, "-o", "%k"]);
    expect(stdout.split("\n")[0]).toBe(`slurmkit:${dir}:0`);
  });

  test("the client killed after sbatch, and squeue no longer lists the job when loadJobs runs: the id a runner wrote in a state file finds it", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const killed = await killedClient(folder, 3, 1);
    expect(killed.signal).toBe("SIGKILL");
    const [dir] = (await readdir(folder)).filter((n) => /^\d{8}T/.test(n));
    const results = join(folder, dir!, "results");
    await waitFor("three results", async () => ((await readdir(results).catch(() => [])).length === 3 ? true : undefined), 120_000);
    const real = (await slurm("squeue", ["-h", "-t", "all", "-o", "%F|%k"])).stdout
      .split("\n")
      .find((l) => l.endsWith(`|slurmkit:${dir}:0`))!
      .split("|")[0];
    const jobs = await loadJobs(folder, { transport: forgetful(() => false) });
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual([1, 2, 3].map((n) => expect.objectContaining({ x: n, square: n * n })));
    expect(jobs.map((j) => j.id)).toEqual([0, 1, 2].map((i) => `${real}_${i}`));
    const after = JSON.parse(await readFile(join(folder, dir!, "manifest.json"), "utf8")) as { jobId: string | null };
    expect(after.jobId).toBe(real);
  });

  test("a split array (MaxArraySize) whose client died after both sbatch calls, with squeue no longer listing the first array: one array found by its tag, the other by its runners' state files", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    // 1,003 held tasks: arrays of 1,001 and 2. Only three elements are released to run.
    const killed = await killedClient(folder, 1003, 2, "hold");
    expect(killed.signal).toBe("SIGKILL");
    const [dir] = (await readdir(folder)).filter((n) => /^\d{8}T/.test(n));
    const tagged = (await slurm("squeue", ["-h", "-t", "all", "-o", "%F|%k"])).stdout.split("\n");
    const idOf = (j: number) => tagged.find((l) => l.endsWith(`|slurmkit:${dir}:${j}`))!.split("|")[0]!;
    const [a, b] = [idOf(0), idOf(1)];
    onTestFinished(async () => void (await slurm("scancel", [a, b], { reject: false })));
    await slurm("scontrol", ["release", `${a}_0`, `${b}_0`, `${b}_1`]);
    const results = join(folder, dir!, "results");
    await waitFor("three results", async () => ((await readdir(results).catch(() => [])).length === 3 ? true : undefined), 120_000);
    const jobs = await loadJobs(folder, { transport: forgetful((line) => !line.endsWith(`:${dir}:0`)) });
    expect(jobs).toHaveLength(1003);
    expect([jobs[0]!.id, jobs[1000]!.id, jobs[1001]!.id, jobs[1002]!.id]).toEqual([`${a}_0`, `${a}_1000`, `${b}_0`, `${b}_1`]);
    for (const i of [0, 1001, 1002]) expect(await jobs[i]!.result()).toMatchObject({ x: i + 1, square: (i + 1) ** 2 });
    const manifest = JSON.parse(await readFile(join(folder, dir!, "manifest.json"), "utf8")) as { jobId: string; arrays?: unknown };
    expect(manifest.jobId).toBe(a);
  });

  test("the SSH connection cut while sbatch runs: the retry finds the job by its tag, and there is exactly one job", async (ctx) => {
    const info = needSsh(ctx);
    const lines: string[] = [];
    const ssh = new SshTransport(sshOptions(info, lines));
    onTestFinished(() => ssh.close());
    let cut = false;
    const transport = new FaultyTransport(ssh, {
      async run(program, _args, real) {
        if (program !== "sbatch" || cut) return real();
        // sbatch runs and makes the job; then the connection drops before its answer arrives.
        await real();
        cut = true;
        await restartSshd(2);
        throw new TransportError("exec", "root@127.0.0.1:2222", "the connection dropped while sbatch ran", { unreachable: true });
      },
    });
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, transport });
    const [job] = await executor.mapArray([square.with(7)]);
    expect(cut).toBe(true);
    expect(await job!.result()).toMatchObject({ x: 7, square: 49 });
    const tag = `slurmkit:${submissionOf(job!).split("/").at(-1)}:0`;
    const { stdout } = await slurm("squeue", ["-h", "-t", "all", "-o", "%F|%k"]);
    expect(new Set(stdout.split("\n").filter((l) => l.endsWith(`|${tag}`)))).toEqual(new Set([`${job!.id.split("_")[0]}|${tag}`]));
  });

  test("sbatch's answer lost and no job found by its tag: a typed error, nothing submitted again, and loadJobs finds nothing", async (ctx) => {
    needCluster(ctx);
    const transport = new FaultyTransport(new LocalTransport(), {
      run: (program, _args, real) => (program === "sbatch" ? Promise.reject(new TransportError("exec", "root@cluster", "the connection dropped before sbatch ran", { unreachable: true })) : real()),
    });
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2, transport });
    const error = (await executor.mapArray([square.with(5)]).catch((e: unknown) => e)) as AmbiguousSubmissionError;
    expect(error).toBeInstanceOf(AmbiguousSubmissionError);
    expect(error.tag).toMatch(/^slurmkit:\d{8}T\d{6}Z-[0-9a-f]{6}:0$/);
    const { stdout } = await slurm("squeue", ["-h", "-t", "all", "-o", "%k"]);
    expect(stdout.split("\n")).not.toContain(error.tag);
    expect(await loadJobs(folder)).toEqual([]);
    // Long after, with still no job: the submission is marked withdrawn, and loadJobs stops asking squeue.
    const manifestPath = join(folder, error.tag.split(":")[1]!, "manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as { createdAt: string; withdrawn?: true };
    expect(manifest.withdrawn).toBeUndefined();
    await writeFile(manifestPath, JSON.stringify({ ...manifest, createdAt: new Date(Date.now() - NEVER_FOUND_AFTER_MS - 60_000).toISOString() }));
    expect(await loadJobs(folder)).toEqual([]);
    expect(JSON.parse(await readFile(manifestPath, "utf8"))).toMatchObject({ withdrawn: true });
    let squeues = 0;
    const counting = new FaultyTransport(new LocalTransport(), {
      run: (program, _args, real) => {
        if (program === "squeue") squeues++;
        return real();
      },
    });
    expect(await loadJobs(folder, { transport: counting })).toEqual([]);
    expect(squeues).toBe(0);
  });

  test("squeue broken for the whole wait: the watcher reports it once, wait({ timeoutMs }) rejects typed, the job settles from its result all the same, and the watcher says when squeue works again", async (ctx) => {
    needCluster(ctx);
    let broken = true;
    const transport = new FaultyTransport(new LocalTransport(), {
      run: (program, _args, real) =>
        program === "squeue" && broken ? Promise.resolve({ stdout: "", stderr: "slurm_load_jobs error: Unable to contact slurm controller (connect failure)", exitCode: 1 }) : real(),
    });
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, transport });
    executor.watcher.setIntervals({ minMs: 200, maxMs: 400 });
    const events: WatcherHealth[] = [];
    const stop = executor.watcher.onHealth((e) => events.push(e));
    onTestFinished(stop);
    const [job] = await executor.mapArray([command("sleep", ["12"])]);
    const waited = await job!.wait({ timeoutMs: 6000 }).catch((e: unknown) => e);
    expect(waited).toBeInstanceOf(WaitTimeoutError);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: "failing", failedPolls: FAILING_POLLS });
    expect((events[0] as { error: Error }).error.message).toContain("Unable to contact slurm controller");
    expect(job!.done()).toBe(false);
    // Its result is final whatever squeue says: it settles while squeue is still broken.
    expect(await job!.result()).toEqual({ exitCode: 0 });
    expect(executor.watcher.stats().failedPolls).toBeGreaterThan(FAILING_POLLS);
    expect(events.map((e) => e.kind)).toEqual(["failing"]);
    broken = false;
    const [next] = await executor.mapArray([command("true", [])]);
    expect(await next!.result()).toEqual({ exitCode: 0 });
    expect(events.map((e) => e.kind)).toEqual(["failing", "recovered"]);
  });

  test("one submission's results folder cannot be listed: the other still settles, and that one settles UNKNOWN with the error", async (ctx) => {
    needCluster(ctx);
    let unreadable = "";
    const transport = new FaultyTransport(new LocalTransport(), {
      list: (path, real) => (path === unreadable ? Promise.reject(Object.assign(new Error(`EACCES: permission denied, scandir '${path}'`), { code: "EACCES" })) : real()),
    });
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, transport });
    executor.watcher.setIntervals({ minMs: 300, maxMs: 600 });
    const [blocked] = await executor.mapArray([square.with(1)]);
    unreadable = join(submissionOf(blocked!), "results");
    const [fine] = await executor.mapArray([square.with(2)]);
    expect(await fine!.result()).toMatchObject({ square: 4 });
    expect(await blocked!.wait()).toBe("UNKNOWN");
    const error = (await blocked!.result().catch((e: unknown) => e)) as Error & { cause: Error };
    expect(error.message).toContain(`could not read the result of ${blocked!.id} on ${READ_ATTEMPTS} polls in a row: EACCES`);
    expect(error.cause.message).toContain("EACCES");
  });

  test("no leaks: an executor's close() lets go of its watcher once its jobs settled; loadJobs({ executor }) uses that executor's connection", async (ctx) => {
    const info = needSsh(ctx);
    const before = Watcher.count;
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, ssh: sshOptions(info) });
    const [job] = await executor.mapArray([square.with(4)]);
    expect(Watcher.count).toBe(before + 1); // its own: one per SSH destination
    const loaded = await loadJobs(submissionOf(job!), { executor });
    executor.close(); // while the jobs still run: the watcher stays until they settle
    expect(Watcher.count).toBe(before + 1);
    expect(await Promise.all([job!.result(), loaded[0]!.result()])).toEqual([expect.objectContaining({ square: 16 }), expect.objectContaining({ square: 16 })]);
    await vi.waitFor(() => expect(Watcher.count).toBe(before));
  });

  test("a result read that fails once with a transient error: the job still settles COMPLETED", async (ctx) => {
    needCluster(ctx);
    let failures = 0;
    const transport = new FaultyTransport(new LocalTransport(), {
      readFile: (path, real) => (path.endsWith(".result") && failures++ === 0 ? Promise.reject(Object.assign(new Error(`EIO: i/o error, read '${path}'`), { code: "EIO" })) : real()),
    });
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, transport });
    const [job] = await executor.mapArray([square.with(3)]);
    expect(await job!.result()).toMatchObject({ x: 3, square: 9 });
    expect(failures).toBeGreaterThanOrEqual(2); // the failed read, and the one that worked
  });

  test.for([
    ["found by its tag at once", false],
    ["taken in when its workers claim tasks, squeue never showing its tag", true],
  ] as const)("more workers submitted while sbatch's answer is lost: the top-up is %s, and there is exactly one", async ([, hide], ctx) => {
    needCluster(ctx);
    let lost = 0;
    let hidden = 0;
    const transport = new FaultyTransport(new LocalTransport(), {
      async run(program, args, real) {
        if (program === "squeue" && args.includes("%F|%k") && lost > 0 && hide) {
          hidden++; // squeue does not show the new array
          return { stdout: "", stderr: "", exitCode: 0 };
        }
        const topUp = program === "sbatch" && args.some((a) => a.startsWith("--export=ALL,SLURMKIT_ELEMENT_OFFSET="));
        if (!topUp || lost > 0) return real();
        await real(); // sbatch made the array; its answer never arrives
        lost++;
        throw new TransportError("exec", "root@cluster", "the connection dropped while sbatch ran", { unreachable: true });
      },
    });
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, transport });
    executor.watcher.setIntervals({ minMs: 300, maxMs: 1000 });
    // The first task kills its worker (its slot's parent), so the other two are left unclaimed and more workers are submitted.
    // It waits a second first, so that its start is on disk (a task whose worker dies within the 20 ms before its start record
    // is flushed is handed back and runs again). The others run long enough for the watcher to see them start under the new workers.
    const killWorker = command("sh", ["-c", 'sleep 1; kill -9 "$(cut -d " " -f4 /proc/$PPID/stat)"']);
    const jobs = await executor.mapArray([killWorker, whereAmI.with(5000), whereAmI.with(5000)], { workers: 1 });
    expect(await jobs[1]!.result()).toMatchObject({ node: expect.stringMatching(/^n[12]$/) });
    expect(await jobs[2]!.result()).toMatchObject({ node: expect.stringMatching(/^n[12]$/) });
    await jobs[0]!.wait();
    expect(lost).toBe(1);
    // Hidden, the array can only have come in through its workers' claims; and no second one was sent meanwhile.
    if (hide) expect(hidden).toBeGreaterThanOrEqual(3);
    else expect(hidden).toBe(0);
    const dir = submissionOf(jobs[0]!);
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as { arrays: { jobId: string; firstElement: number; elements: number }[] };
    expect(manifest.arrays).toHaveLength(2);
    expect(manifest.arrays[1]).toMatchObject({ firstElement: 1, elements: 1 });
    const tag = `slurmkit:${dir.split("/").at(-1)}:workers`;
    const { stdout } = await slurm("squeue", ["-h", "-t", "all", "-o", "%F|%k"]);
    expect([...new Set(stdout.split("\n").filter((l) => l.endsWith(`|${tag}`)))]).toEqual([`${manifest.arrays[1]!.jobId}|${tag}`]);
  });
});
