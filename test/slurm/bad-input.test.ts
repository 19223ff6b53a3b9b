// A new user's mistakes, as a table: each is refused with its typed error, naming what was wrong, before anything
// reaches sbatch, and no run folder is left. Then what only sbatch can refuse: marked in the folder, and `status`
// says so with sbatch's message and a non-zero exit. On the real cluster.
import { execa } from "execa";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import {
  asCompleted,
  command,
  defineTask,
  formatPreview,
  type Job,
  LocalExecutor,
  LocalTransport,
  loadJobs,
  modules,
  OpenSshTransport,
  ParameterError,
  parseSlurmFlags,
  progress,
  report,
  rerun,
  SlurmExecutor,
  type SlurmExecutorOptions,
  stageIn,
  SubmissionError,
  venvPerNode,
} from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { echo, square } from "../fixtures/tasks.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

/** A mistake: what it does with a fresh executor, and the words its ParameterError must hold. */
type Case = [name: string, act: (e: SlurmExecutor, folder: string, done: Job<unknown>) => unknown, words: string];

class Point {
  constructor(readonly x: number) {}
}
const cycle: Record<string, unknown> = {};
cycle.self = cycle;
const t = defineTask(import.meta.url, "t", (x: unknown) => x);

const CASES: Case[] = [
  // Options objects, checked at run time (JavaScript callers, spreads and `as any`).
  ["a misspelt executor setting", (_, folder) => new SlurmExecutor({ folder, nodeBinry: "node" } as never), "Unknown option `nodeBinry` (did you mean `nodeBinary`?)"],
  ["a misspelt parameter", (_, folder) => new SlurmExecutor({ folder, cpus: 2 } as never), "Unknown option `cpus` (did you mean `cpusPerTask`?)"],
  ["LocalExecutor's maxParalel", (_, folder) => new LocalExecutor({ folder, maxParalel: 2 } as never), "Unknown option `maxParalel` (did you mean `maxParallel`?)"],
  ["maxParallel of the wrong type", (_, folder) => new LocalExecutor({ folder, maxParallel: "2" } as never), "Expected `maxParallel` to be a positive integer, got `2`"],
  ["mapArray's worker", (e) => e.mapArray([command("true")], { worker: 1 } as never), "Unknown option `worker` (did you mean `workers`?)"],
  ["workers: many", (e) => e.mapArray([command("true")], { workers: "many" } as never), 'Expected `workers` to be a positive integer or "auto", got `many`'],
  ["submit takes no packing", (e) => e.submit(command("true"), { workers: 2 } as never), "Unknown option `workers`; accepted: after"],
  ["modules' use as a string", () => modules(["python/3.11"], { use: "/path" } as never), "Expected `use` to be an array of paths or runtime values, got `/path`"],
  ["venvPerNode's requirement", () => venvPerNode({ path: "/v", wheelhouse: "/w", requirement: "r.txt" } as never), "Unknown option `requirement` (did you mean `requirements`?)"],
  ["stageIn(null)", () => stageIn(null as never), "Expected an options object, got `null`"],
  ["command's evn", () => command("true", [], { evn: { A: "1" } } as never), "Unknown option `evn` (did you mean `env`?)"],
  ["defineTask's checkpiont", () => defineTask(import.meta.url, "x", (x: number) => x, { checkpiont: () => 1 } as never), "Unknown option `checkpiont` (did you mean `checkpoint`?)"],
  ["wait's timeout", (_e, _f, done) => done.wait({ timeout: 5 } as never), "Unknown option `timeout` (did you mean `timeoutMs`?)"],
  ["result's timeoutMs of the wrong type", (_e, _f, done) => done.result({ timeoutMs: "5s" } as never), "Expected `timeoutMs` to be milliseconds from 0 to 2147483647"],
  ["asCompleted's signl", async (_e, _f, done) => asCompleted([done], { signl: AbortSignal.timeout(5) } as never).next(), "Unknown option `signl` (did you mean `signal`?)"],
  ["loadJobs' sshh", (_, folder) => loadJobs(folder, { sshh: "cedar" } as never), "Unknown option `sshh` (did you mean `ssh`?)"],
  ["rerun's olny", (_e, _f, done) => rerun([done], { olny: "failed" } as never), "Unknown option `olny` (did you mean `only`?)"],
  ["progress' interval", (_e, _f, done) => progress([done], { interval: 5 } as never), "Unknown option `interval` (did you mean `intervalMs`?)"],
  ["report's titel", (_e, folder, done) => report([done], join(folder, "r.html"), { titel: "x" } as never), "Unknown option `titel` (did you mean `title`?)"],
  ["parseSlurmFlags' flg", () => parseSlurmFlags([], { flg: "--slurm" } as never), "Unknown option `flg` (did you mean `flag`?)"],
  ["check()'s partion", (e) => e.check({ partion: "debug" } as never), "Unknown option `partion` (did you mean `partition`?)"],
  ["OpenSshTransport's confgFile", () => new OpenSshTransport("cedar", { confgFile: "/x" } as never), "Unknown option `confgFile` (did you mean `configFile`?)"],
  // Conflicts that only sbatch would have found.
  ["mem with memPerCpu", (_, folder) => new SlurmExecutor({ folder, mem: "100M", memPerCpu: "1G" }), "Expected one way to ask for memory"],
  ["mem set twice", (_, folder) => new SlurmExecutor({ folder, mem: "100M", sbatch: { mem: "200M" } }), "`sbatch.mem` sets --mem, which the parameter `mem` sets too"],
  ["job_name in sbatch", (_, folder) => new SlurmExecutor({ folder, sbatch: { job_name: "x" } } as never), "`sbatch.job_name` sets --job-name: use the parameter `jobName` instead"],
  ["a camel-case sbatch key", (_, folder) => new SlurmExecutor({ folder, sbatch: { mailType: "END" } } as never), "got `mailType`: write `mail-type`"],
  ["memPerCpu with mem-per-gpu", (e) => e.update({ memPerCpu: "1G", sbatch: { "mem-per-gpu": "2G" } }), '`memPerCpu` and `sbatch["mem-per-gpu"]`: Slurm refuses them together'],
  ["nodes from high to low", (e) => e.update({ nodes: "4-2" }), "Expected `nodes` to be a range from low to high"],
  [
    "mem: 0 with workers",
    (e) => {
      e.update({ mem: 0 });
      return e.mapArray([command("true"), command("true")], { workers: 1 });
    },
    "Expected no `workers`, `slots` or `tasksPerElement` with `mem: 0`",
  ],
  // Arguments that would not come back equal.
  ["a function in an argument", (e) => e.mapArray([t.with(1), t.with({ f: () => 42 })]), "task 1: `arg.f` is a function"],
  ["a symbol", (e) => e.mapArray([t.with(Symbol("s"))]), "task 0: `arg` is a symbol"],
  ["a cycle", (e) => e.mapArray([t.with(cycle)]), "task 0: `arg.self` refers back to an object that contains it"],
  ["a class instance", (e) => e.mapArray([t.with({ at: new Point(1) })]), "task 0: `arg.at` is an instance of Point"],
];

describe("a new user's mistakes, refused before sbatch", () => {
  test.for(CASES)("%s", async ([, act, words], ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const options: SlurmExecutorOptions = { folder, time: 2, mem: "100M" };
    const executor = new SlurmExecutor(options);
    const done = (await new LocalExecutor({ folder: await runsFolder() }).submit(command("true"))) as Job<unknown>;
    await done.wait();
    const before = executor.watcher.stats().calls.sbatch;
    const error = await (async () => act(executor, folder, done))().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, "refused").toBeInstanceOf(ParameterError);
    expect((error as ParameterError).message).toContain(words);
    expect(executor.watcher.stats().calls.sbatch).toBe(before);
    expect(await readdir(folder)).toEqual([]);
  });
});

describe("what sbatch refuses, and what is accepted", () => {
  test("a submission sbatch refuses is marked in its folder; status prints sbatch's message and exits 1", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2, mem: "100M", partition: "no-such-partition" });
    const error = await executor.mapArray([command("true"), command("true")]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SubmissionError);
    const [name] = await readdir(folder);
    const manifest = JSON.parse(await readFile(join(folder, name!, "manifest.json"), "utf8")) as { withdrawn: boolean; refused: string };
    expect(manifest.withdrawn).toBe(true);
    expect(manifest.refused).toMatch(/invalid partition/i);
    const status = await execa("node", [bin, "status", folder], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF } });
    expect(status.exitCode).toBe(1);
    expect(status.stdout).toMatch(new RegExp(`^${name}: sbatch refused it \\(2 tasks, none ran\\): .*invalid partition`, "im"));
    const json = JSON.parse((await execa("node", [bin, "status", folder, "--json"], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF } })).stdout) as {
      refused: { submission: string; taskCount: number; message: string }[];
      exitCode: number;
    };
    expect(json.exitCode).toBe(1);
    expect(json.refused).toEqual([{ submission: name, taskCount: 2, message: manifest.refused, rerun: false }]);
  });

  test("mem: 0 is Slurm's 'all of each node's memory'; jobs are named after their tasks, or jobName", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: 0 });
    const [job] = await executor.mapArray([square.with(3)]);
    expect(await job!.result()).toMatchObject({ square: 9 });
    const named = await executor.submit(command("/bin/true"));
    await named.wait();
    executor.update({ jobName: "my-sweep", mem: "100M" });
    const own = await executor.submit(echo.with(1));
    await own.wait();
    // Accounting may show a job's record before its name is in (as "allocation"): ask until it is.
    const names = (id: string) =>
      waitFor(`${id}'s name in sacct`, async () => {
        const name = (await slurm("sacct", ["-n", "-X", "-P", "-j", id, "-o", "JobName"])).stdout.trim().split("\n")[0];
        return name && name !== "allocation" ? name : undefined;
      });
    expect(await names(job!.id)).toBe("square");
    expect(await names(named.id)).toBe("true");
    expect(await names(own.id)).toBe("my-sweep");
    expect(await readFile(join(executor.folder, (await readdir(executor.folder)).sort()[0]!, "job.sbatch"), "utf8")).toContain("#SBATCH --mem=0\n");
  });

  test("executor.plan() shows the scripts, tasks and packing, and writes and submits nothing", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2, mem: "100M" });
    const before = executor.watcher.stats().calls.sbatch;
    const preview = await executor.plan([...[1, 2, 3, 4].map((x) => square.with(x)), command("echo", ["hi"])], { workers: 2 });
    expect(preview.taskCount).toBe(5);
    expect(preview.tasks).toEqual({ "tasks.ts#square": 4, echo: 1 });
    expect(preview.workers).toMatchObject({ count: 2, slots: 1, taskMemMb: 100 });
    expect(preview.scripts).toHaveLength(1);
    expect(preview.scripts[0]!.text).toContain("#SBATCH --job-name=square+1\n");
    expect(preview.scripts[0]!.text).toContain("#SBATCH --array=0-1\n");
    expect(formatPreview(preview)).toMatch(/^5 tasks into \S+\n {2}4 × tasks\.ts#square\n {2}1 × echo\npacked: 2 workers × 1 slot, \d+ MiB each/);
    expect(executor.watcher.stats().calls.sbatch).toBe(before);
    expect(await readdir(folder)).toEqual([]);
    await expect(executor.plan([command("true")], { worker: 2 } as never)).rejects.toThrow(ParameterError);
  });
});
