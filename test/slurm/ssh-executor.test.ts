import { TransportError } from "../../src/base/errors.js";
// SlurmExecutor({ ssh }) against the test sshd in front of the test cluster.
// The client's SLURM_CONF is removed while these run: only the SSH session
// (which gets it from sshd's SetEnv) can reach Slurm, so every scheduler call
// provably goes over SSH.
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { atRuntime, command, type defineTask, loadJobs, ParameterError, SlurmExecutor, SshTransport, TaskFailedError, type SlurmExecutorOptions } from "../../src/index.js";
import { explode, square, whereAmI } from "../fixtures/tasks.js";
import { needSsh, restartSshd, secretLines, sshOptions, type SshServerInfo } from "../helpers/ssh.js";
import { runsFolder } from "../helpers/runs-folder.js";

const executors: SlurmExecutor[] = [];
let savedConf: string | undefined;
beforeEach(() => {
  savedConf = process.env.SLURM_CONF;
});
afterEach(() => {
  for (const e of executors.splice(0)) e.close();
  if (savedConf !== undefined) process.env.SLURM_CONF = savedConf;
});

async function sshExecutor(info: SshServerInfo, lines: string[], options: Partial<SlurmExecutorOptions> = {}): Promise<SlurmExecutor> {
  delete process.env.SLURM_CONF;
  const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, ssh: sshOptions(info, lines), ...options });
  executor.watcher.setIntervals({ minMs: 500, maxMs: 2000 });
  executors.push(executor);
  return executor;
}

/** Every file under a folder, as text. */
async function allText(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const texts = await Promise.all(entries.filter((e) => e.isFile()).map((e) => readFile(join(e.parentPath, e.name), "utf8")));
  return texts.join("\n");
}

describe("SlurmExecutor over SSH", () => {
  test("mapArray over SSH returns results, failures, logs and late-bound values; nothing secret is written anywhere", async (ctx) => {
    const info = needSsh(ctx);
    const lines: string[] = [];
    const executor = await sshExecutor(info, lines);
    const jobs = await executor.mapArray([square.with(3), square.with(4), explode.with("remote boom"), command("sh", ["-c", 'echo "job $1 says $2"', "sh", atRuntime("$SLURM_JOB_ID"), "it's $HOME"])]);
    const outcomes = await Promise.all(
      jobs.map((j) =>
        j.result().then(
          (v) => v,
          (e: unknown) => e,
        ),
      ),
    );
    expect((outcomes[0] as { square: number }).square).toBe(9);
    expect((outcomes[1] as { square: number }).square).toBe(16);
    expect(outcomes[2]).toBeInstanceOf(TaskFailedError);
    expect((outcomes[2] as TaskFailedError).remote.message).toBe("remote boom");
    expect(outcomes[3]).toEqual({ exitCode: 0 });
    expect(await jobs[3]!.stdout()).toMatch(/^job \d+ says it's \$HOME\n$/);
    expect(await jobs[2]!.stderr()).toContain("RangeError: remote boom");
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"]);
    expect(executor.watcher.stats().calls.sbatch).toBe(1);
    expect(executor.watcher.stats().calls.squeue).toBeGreaterThan(0);

    // The futures rebuilt over SSH from the folder on the cluster say the same.
    const reloaded = await loadJobs(executor.folder, { ssh: sshOptions(info, lines) });
    expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"]);
    expect(await reloaded[1]!.result()).toEqual(outcomes[1]);

    const everything = [lines.join("\n"), await allText(executor.folder), String(outcomes[2])].join("\n");
    for (const secret of await secretLines(join(info.dir, "userkey"))) expect(everything).not.toContain(secret);
  });

  test("if sshd restarts in the middle of a wait, the wait still returns the results", async (ctx) => {
    const info = needSsh(ctx);
    const lines: string[] = [];
    const executor = await sshExecutor(info, lines);
    const jobs = await executor.mapArray([whereAmI.with(8000), whereAmI.with(8000)]);
    const results = Promise.all(jobs.map((j) => j.result()));
    await new Promise((r) => setTimeout(r, 1500));
    await restartSshd(4);
    const done = await results;
    expect(done.map((r) => typeof r.node)).toEqual(["string", "string"]);
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED"]);
    expect(lines.some((l) => /connection lost/.test(l))).toBe(true);
    expect(lines.some((l) => /reconnected after/.test(l))).toBe(true);
  });

  test("a connection that drops while results are read settles nothing wrongly; the next poll reads them", async (ctx) => {
    const info = needSsh(ctx);
    // The real SSH transport, with the connection cut under the first reads of result files.
    class CutUnderReads extends SshTransport {
      cuts = 0;
      override readFile(path: string): Promise<Buffer> {
        if (path.endsWith(".result") && this.cuts < 3) {
          this.cuts++;
          return Promise.reject(new TransportError("sftp", this.destination, `connection lost during read ${path}`, { unreachable: true }));
        }
        return super.readFile(path);
      }
    }
    delete process.env.SLURM_CONF;
    const transport = new CutUnderReads(sshOptions(info));
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, transport });
    executor.watcher.setIntervals({ minMs: 500, maxMs: 2000 });
    executors.push(executor);
    const jobs = await executor.mapArray([square.with(5), square.with(6)]);
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map((r) => r.square)).toEqual([25, 36]);
    expect(transport.cuts).toBe(3);
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED"]);
  });

  test("with bundle: false, pathMap sends function tasks to their module's path on the cluster; bundled, they run the laptop's code", async (ctx) => {
    const info = needSsh(ctx);
    // "laptop" and "cluster" copies of one module, each saying where it is.
    const root = await mkdtemp(join(tmpdir(), "slurmkit-pathmap-"));
    const dist = pathToFileURL(fileURLToPath(new URL("../../dist/src/index.js", import.meta.url))).href;
    const source = (where: string) => `import { defineTask } from ${JSON.stringify(dist)};\nexport const where = defineTask(import.meta.url, "where", () => ${JSON.stringify(where)});\n`;
    await mkdir(join(root, "laptop", "proj"), { recursive: true });
    await mkdir(join(root, "cluster", "proj"), { recursive: true });
    await writeFile(join(root, "laptop", "proj", "where.mjs"), source("laptop"));
    await writeFile(join(root, "cluster", "proj", "where.mjs"), source("cluster"));
    const { where } = (await import(pathToFileURL(join(root, "laptop", "proj", "where.mjs")).href)) as { where: ReturnType<typeof defineTask<void, string>> };

    const executor = await sshExecutor(info, [], { pathMap: { [join(root, "laptop")]: join(root, "cluster") }, bundle: false });
    const [job] = await executor.mapArray([where.with(undefined)]);
    expect(await job!.result()).toBe("cluster");
    const bundled = await sshExecutor(info, [], { pathMap: { [join(root, "laptop")]: join(root, "cluster") } });
    const [snapshot] = await bundled.mapArray([where.with(undefined)]);
    expect(await snapshot!.result()).toBe("laptop");
  });

  test("ssh options are checked up front: the folder must be absolute on the cluster, and not both ssh and transport", async (ctx) => {
    const info = needSsh(ctx);
    expect(() => new SlurmExecutor({ folder: "runs/x", ssh: sshOptions(info) })).toThrow(
      new ParameterError("executor options", ["Expected `folder` to be an absolute path on the cluster when `ssh` is given, got `runs/x`"]),
    );
    expect(() => new SlurmExecutor({ folder: "/tmp/x", ssh: sshOptions(info), pathMap: { "relative/path": "/x" } })).toThrow("Expected the `pathMap` key `relative/path` to be an absolute local path");
  });
});
