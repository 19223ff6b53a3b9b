import { execa } from "execa";
import { afterAll, describe, expect, test } from "vitest";
import { clusterScript, needCluster, slurm, waitFor } from "../helpers/cluster.js";

describe("a cluster with accounting switched off", () => {
  afterAll(async () => {
    if (process.getuid?.() === 0) await execa("bash", [clusterScript, "accounting", "on"], { reject: false });
  });

  test("sacct fails, squeue still answers, and jobs still run", async (ctx) => {
    needCluster(ctx);
    await execa("bash", [clusterScript, "accounting", "off"]);

    const sacct = await slurm("sacct", ["-n", "-X"], { reject: false });
    expect(sacct.exitCode).not.toBe(0);
    expect(sacct.stdout + sacct.stderr).toContain("Slurm accounting storage is disabled");

    const submitted = await slurm("sbatch", ["--parsable", "-o", "/dev/null", "--wrap", "sleep 3"]);
    const jobId = submitted.stdout.trim();
    const seen = await slurm("squeue", ["-h", "-j", jobId, "-o", "%i %T"]);
    expect(seen.stdout.trim()).toMatch(new RegExp(`^${jobId} (PENDING|RUNNING|CONFIGURING)$`));
    await waitFor(
      `job ${jobId} to complete without accounting`,
      async () => {
        const { stdout } = await slurm("squeue", ["-h", "-j", jobId, "-t", "all", "-o", "%T"], { reject: false });
        return stdout.trim() === "COMPLETED" ? true : undefined;
      },
      60_000,
    );

    await execa("bash", [clusterScript, "accounting", "on"]);
    const back = await slurm("sacct", ["-n", "-X", "-S", "now-1minute"]);
    expect(back.exitCode).toBe(0);
  });
});
