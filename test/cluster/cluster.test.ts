import { mkdtemp, readFile, readdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";

/** Waits until the job has left squeue's list of pending and running jobs. */
async function waitForJobToLeaveQueue(jobId: string): Promise<void> {
  await waitFor(
    `job ${jobId} to finish`,
    async () => {
      const { stdout } = await slurm("squeue", ["-h", "-j", jobId, "-t", "PD,R,CG", "-o", "%i"], { reject: false });
      return stdout.trim() === "" ? true : undefined;
    },
    90_000,
  );
}

describe("the test cluster is a real two-node Slurm", () => {
  test("an array job lands on n1 and n2, each task with its own node's $SLURM_TMPDIR, and sacct says COMPLETED", async (ctx) => {
    needCluster(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-cluster-"));
    // Each task takes a whole node (2 CPUs), so six of them must use both nodes.
    const script = ["#!/bin/bash", 'test -d "$SLURM_TMPDIR" || exit 7', 'echo "$SLURMD_NODENAME $SLURM_TMPDIR" > "$OUT/task-$SLURM_ARRAY_TASK_ID"', "sleep 2"].join("\n");
    const submitted = await slurm("sbatch", ["--parsable", "--array=0-5", "--cpus-per-task=2", "-o", "/dev/null", "--export", `ALL,OUT=${dir}`], {
      input: script,
    });
    const jobId = submitted.stdout.trim().split(";")[0] ?? "";
    expect(jobId).toMatch(/^\d+$/);
    await waitForJobToLeaveQueue(jobId);

    const files = (await readdir(dir)).sort();
    expect(files).toEqual(["task-0", "task-1", "task-2", "task-3", "task-4", "task-5"]);
    const lines = await Promise.all(files.map(async (f) => (await readFile(join(dir, f), "utf8")).trim()));
    const scratchByNode = new Map<string, Set<string>>();
    for (const line of lines) {
      const [node, scratch] = line.split(" ");
      expect(node).toMatch(/^n[12]$/);
      // Each element is its own job: scratch is .cluster/tmp/<node>/<that element's job id>.
      expect(scratch).toMatch(new RegExp(`/tmp/${node}/\\d+$`));
      expect(Number(scratch!.split("/").pop())).toBeGreaterThanOrEqual(Number(jobId));
      const set = scratchByNode.get(node!) ?? new Set<string>();
      set.add(scratch!);
      scratchByNode.set(node!, set);
    }
    expect([...scratchByNode.keys()].sort()).toEqual(["n1", "n2"]);
    const [n1Dirs, n2Dirs] = [scratchByNode.get("n1")!, scratchByNode.get("n2")!];
    for (const d of n1Dirs) expect(n2Dirs.has(d)).toBe(false);
    for (const d of [...n1Dirs, ...n2Dirs]) expect((await stat(d)).isDirectory()).toBe(true);

    const states = await waitFor(
      "sacct to record the array",
      async () => {
        const { stdout } = await slurm("sacct", ["-j", jobId, "-X", "-n", "-P", "-o", "JobID,State,ExitCode"]);
        const rows = stdout.trim().split("\n").filter(Boolean);
        return rows.length === 6 && rows.every((r) => r.includes("|COMPLETED|")) ? rows : undefined;
      },
      60_000,
    );
    expect(states.map((r) => r.split("|")[0]).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${jobId}_${i}`));
    expect(states.every((r) => r.endsWith("|0:0"))).toBe(true);
  });

  test("srun reaches both nodes", async (ctx) => {
    needCluster(ctx);
    const { stdout } = await slurm("srun", ["-N2", "--ntasks-per-node=1", "printenv", "SLURMD_NODENAME"]);
    expect(stdout.trim().split("\n").sort()).toEqual(["n1", "n2"]);
  });
});
