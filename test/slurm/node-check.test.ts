// Node.js on the nodes: the sbatch script checks the node's Node.js before
// the runner starts. A missing or too old one fails its task with a
// NodeUnusableError that names the node, the path and the fix, and cancels
// the submission's tasks that have not started (fail fast). A real Node 18
// (the oldest the runner supports) runs tasks, packed ones too.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { NodeUnusableError, SlurmExecutor, type SlurmExecutorOptions } from "../../src/index.js";
import { square } from "../fixtures/tasks.js";
import { needCluster } from "../helpers/cluster.js";
import { nodeRelease } from "../helpers/node-release.js";
import { runsFolder } from "../helpers/runs-folder.js";

const executors: SlurmExecutor[] = [];
afterEach(() => {
  for (const e of executors.splice(0)) e.close();
});

async function executor(options: Partial<SlurmExecutorOptions>): Promise<SlurmExecutor> {
  const e = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "100M", ...options });
  e.watcher.setIntervals({ minMs: 300, maxMs: 1000 });
  executors.push(e);
  return e;
}

const failures = (jobs: { result(): Promise<unknown> }[]) =>
  Promise.all(
    jobs.map((j) =>
      j.result().then(
        () => undefined,
        (e: unknown) => e,
      ),
    ),
  );

describe("Node.js on the nodes", { timeout: 300_000 }, () => {
  test("a missing node fails the first task with a NodeUnusableError naming node, path and fix; the tasks not started are cancelled, not run one by one", async (ctx) => {
    needCluster(ctx);
    const e = await executor({ nodeBinary: "/opt/no-such-node/bin/node", arrayParallelism: 1 });
    const jobs = await e.mapArray(Array.from({ length: 8 }, (_, i) => square.with(i)));
    const errors = await failures(jobs);
    for (const error of errors) {
      expect(error).toBeInstanceOf(NodeUnusableError);
      expect((error as NodeUnusableError).node).toMatch(/^n[12]$/);
      expect((error as NodeUnusableError).reason).toMatch(/^'\/opt\/no-such-node\/bin\/node' does not exist or does not run$/);
      expect((error as Error).message).toContain('Fix: load Node.js in the executor\'s setup (for example modules(["nodejs"])), or set nodeBinary to a Node.js 18 or newer on the nodes');
    }
    // Only the first element ran its check; the other seven never started.
    const ran = errors.filter((error) => !(error as Error).message.includes("was cancelled before it started"));
    expect(ran).toHaveLength(1);
    expect((errors[0] as Error).message).toMatch(/^Task 0 \(job \d+_0\) did not run: no usable Node\.js on node n[12]: /);
    // Each keeps Slurm's own state: the element that ran the check FAILED, the others were CANCELLED.
    expect(jobs.map((j) => j.state)).toEqual(["FAILED", ...Array(7).fill("CANCELLED")]);
    // The submission keeps the first element's line: tasks reloaded later say the same.
    expect(await readFile(join(dirname(dirname(jobs[0]!.paths.result)), "node-unusable"), "utf8")).toMatch(
      /^slurmkit: no usable Node\.js on node n[12]: '\/opt\/no-such-node\/bin\/node' does not exist or does not run/,
    );
  });

  test("packed into workers, a missing node fails every task the same way, and no more workers are sent after the first ones", async (ctx) => {
    needCluster(ctx);
    const e = await executor({ nodeBinary: "/opt/no-such-node/bin/node" });
    const jobs = await e.mapArray(
      Array.from({ length: 6 }, (_, i) => square.with(i)),
      { workers: 2 },
    );
    const errors = await failures(jobs);
    expect(errors.every((error) => error instanceof NodeUnusableError)).toBe(true);
    expect(e.watcher.stats().calls.sbatch).toBe(1);
  });

  test("a Node.js older than 18 (a real Node 16) is refused the same way, with its version", async (ctx) => {
    needCluster(ctx);
    const node16 = await nodeRelease("16.20.2");
    const e = await executor({ nodeBinary: node16, arrayParallelism: 1 });
    const errors = await failures(await e.mapArray([square.with(1), square.with(2)]));
    expect(errors.map((error) => (error as NodeUnusableError).reason)).toEqual(Array(2).fill(`'${node16}' is v16.20.2; the runner needs v18 or newer`));
  });

  test("a real Node 18, the oldest the runner supports, runs tasks: one per element, and packed into workers", async (ctx) => {
    needCluster(ctx);
    const e = await executor({ nodeBinary: await nodeRelease("18.20.4") });
    const plain = await e.mapArray([square.with(3), square.with(4)]);
    expect((await Promise.all(plain.map((j) => j.result()))).map((r) => r.square)).toEqual([9, 16]);
    const packed = await e.mapArray(
      [1, 2, 3, 4, 5].map((x) => square.with(x)),
      { workers: 2 },
    );
    expect((await Promise.all(packed.map((j) => j.result()))).map((r) => r.square)).toEqual([1, 4, 9, 16, 25]);
  });
});
