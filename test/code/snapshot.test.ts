// Function tasks as code snapshots, on the real cluster (and over the real sshd).
import { execa } from "execa";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { defineTask, LocalTransport, SlurmExecutor, TaskFailedError, type Task } from "../../src/index.js";
import { packr } from "../../src/protocol/codec.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { needSsh, sshOptions } from "../helpers/ssh.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const index = join(root, "src/index.ts");

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

/** A fresh folder inside the repository (so that bare imports such as "zod" resolve), with a task module and a helper. */
async function project(version: string, extra = ""): Promise<{ dir: string; module: string }> {
  await mkdir(join(root, "test/.tmp"), { recursive: true });
  const dir = await mkdtemp(join(root, "test/.tmp/snapshot-"));
  await writeFile(join(dir, "helper.ts"), `export const helped = (x: number): string => "${version}:" + (x * 2);\n`);
  const module = join(dir, "tasks.ts");
  await writeFile(
    module,
    [
      `import { z } from "zod";`,
      `import { defineTask } from ${JSON.stringify(index)};`,
      `import { helped } from "./helper.ts";`,
      `const Input = z.object({ x: z.number() });`,
      `export const work = defineTask(import.meta.url, "work", (input: { x: number }) => ({ version: "${version}", helped: helped(Input.parse(input).x) }));`,
      `export const fail = defineTask(import.meta.url, "fail", (why: string): number => {`,
      `  throw new Error(why); // line 7`,
      `});`,
      extra,
    ].join("\n"),
  );
  return { dir, module };
}

/** The tasks of a module as defineTask made them (same URL and names as the module's own). */
function tasksOf(module: string) {
  const work = defineTask(module, "work", (_: { x: number }) => ({ version: "", helped: "" })) as Task<{ x: number }, { version: string; helped: string }>;
  const fail = defineTask(module, "fail", (_: string): number => 0);
  return { work, fail };
}

describe("function tasks run the code that was submitted", () => {
  test("a TypeScript module with a local helper and a package runs from its snapshot; edits after submit change nothing, also when the job is requeued", { timeout: 240_000 }, async (ctx) => {
    needCluster(ctx);
    const { dir, module } = await project("v1");
    const { work } = tasksOf(module);
    // slurmkit submits with --no-requeue unless told otherwise: this job may be requeued by hand.
    const executor = new SlurmExecutor({ folder: join(dir, "runs"), time: 5, sbatch: { hold: true, requeue: true } });
    const job = await executor.submit(work.with({ x: 21 }));
    ctx.onTestFinished(async () => void (await slurm("scancel", [job.id])));
    // The source changes, and its helper goes away, while the job waits in the queue.
    await writeFile(module, (await readFile(module, "utf8")).replaceAll('"v1"', '"v2"'));
    await rm(join(dir, "helper.ts"));
    await slurm("scontrol", ["release", job.id]);
    expect(await job.result()).toEqual({ version: "v1", helped: "v1:42" });
    // Requeued, it runs again from the same snapshot.
    const first = packr.unpack(await readFile(job.paths.result)) as { endedAt: number; value: unknown };
    // A job requeued while its node still cleans up after it is killed ("Job credential revoked"): let the node finish first.
    await waitFor("the job to be COMPLETED in squeue", async () => ((await slurm("squeue", ["-h", "-t", "all", "-j", job.id, "-o", "%T"])).stdout.trim() === "COMPLETED" ? true : undefined));
    await new Promise((r) => setTimeout(r, 5000));
    await slurm("scontrol", ["requeue", job.id]);
    await slurm("scontrol", ["update", `JobId=${job.id}`, "StartTime=now"]);
    const again = await waitFor(
      "the requeued job's new result",
      async () => {
        const r = packr.unpack(await readFile(job.paths.result)) as { endedAt: number; value: unknown };
        return r.endedAt > first.endedAt ? r : undefined;
      },
      120_000,
    );
    expect(again.value).toEqual({ version: "v1", helped: "v1:42" });
  });

  test("a task that throws has a stack that names its original TypeScript file and line", async (ctx) => {
    needCluster(ctx);
    const { dir, module } = await project("v1");
    const executor = new SlurmExecutor({ folder: join(dir, "runs"), time: 5 });
    const error = (await (await executor.submit(tasksOf(module).fail.with("thrown on line 7"))).result().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.remote.stack).toContain(`${module}:7:`);
  });

  test("the node needs plain Node: the runner and the task travel as bundles, and run where neither tsx nor slurmkit can be found", async (ctx) => {
    needCluster(ctx);
    const { module } = await project("v1");
    // Outside the repository, nothing resolves tsx, msgpackr or slurmkit.
    const folder = await mkdtemp(join(tmpdir(), "slurmkit-plain-"));
    const probe = await execa("node", ["--input-type=module", "-e", 'await import("tsx/esm/api")'], { cwd: folder, reject: false });
    expect(probe.stderr).toContain("Cannot find package 'tsx'");
    const executor = new SlurmExecutor({ folder, time: 5 });
    const job = await executor.submit(tasksOf(module).work.with({ x: 1 }));
    expect(await job.result()).toEqual({ version: "v1", helped: "v1:2" });
    const script = await readFile(join(dirname(dirname(job.paths.result)), "job.sbatch"), "utf8");
    expect(script).toMatch(new RegExp(`exec \\S+ ${join(folder, "code")}/runner-[0-9a-f]{16}\\.mjs `));
    expect((await readdir(join(folder, "code"))).filter((f) => f.endsWith(".mjs"))).toHaveLength(2);
  });

  test("a package marked external that the node cannot find is a task error naming the package", async (ctx) => {
    needCluster(ctx);
    const { dir, module } = await project("v1", 'import missing from "slurmkit-no-such-package";\nexport const uses = defineTask(import.meta.url, "uses", () => String(missing));\n');
    const executor = new SlurmExecutor({ folder: join(dir, "runs"), time: 5, external: ["slurmkit-no-such-package"] });
    const uses = defineTask(module, "uses", () => "");
    const error = (await (await executor.submit(uses.with(undefined))).result().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.remote.message).toContain("Cannot find package 'slurmkit-no-such-package'");
    expect(error.remote.message).toContain(`(the snapshot of file://${module})`);
  });

  test("from a laptop: over SSH, a module that exists only on the client runs on the cluster, with no pathMap", async (ctx) => {
    needCluster(ctx);
    const info = needSsh(ctx);
    const { dir, module } = await project("laptop");
    const remote = await mkdtemp("/tmp/slurmkit-remote-");
    const executor = new SlurmExecutor({ folder: remote, ssh: sshOptions(info), time: 5, sbatch: { hold: true } });
    ctx.onTestFinished(() => executor.close());
    executor.watcher.setIntervals({ minMs: 500, maxMs: 2000 });
    const job = await executor.submit(tasksOf(module).work.with({ x: 5 }));
    ctx.onTestFinished(async () => void (await slurm("scancel", [job.id])));
    // Gone from the client's disk before the job runs: only the uploaded snapshot is left.
    await rm(dir, { recursive: true });
    await slurm("scontrol", ["release", job.id]);
    expect(await job.result()).toEqual({ version: "laptop", helped: "laptop:10" });
  });
});
