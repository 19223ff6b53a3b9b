import { execa } from "execa";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import type { ClusterInfo } from "./helpers/cluster.js";

const script = fileURLToPath(new URL("./cluster/cluster.sh", import.meta.url));

async function startCluster(): Promise<ClusterInfo> {
  if (process.platform !== "linux") {
    return { available: false, reason: `the test cluster needs Linux, this is ${process.platform}`, slurmConf: "" };
  }
  if (process.getuid?.() !== 0) {
    return { available: false, reason: "the test cluster needs root to start its daemons", slurmConf: "" };
  }
  const up = await execa("bash", [script, "up"], { reject: false, stdout: "pipe", stderr: ["pipe", "inherit"] });
  if (up.exitCode !== 0) {
    return { available: false, reason: `cluster.sh up failed with exit code ${up.exitCode}`, slurmConf: "" };
  }
  const env = await execa("bash", [script, "env"]);
  const slurmConf = env.stdout.replace(/^export SLURM_CONF=/, "").trim();
  return { available: true, reason: "", slurmConf };
}

/** Brings the real Slurm test cluster up once and hands its SLURM_CONF to the tests. */
export default async function setup(project: TestProject): Promise<void> {
  const info = await startCluster();
  if (!info.available && process.env.CI === "true") {
    throw new Error(`CI=true and the Slurm test cluster is not available: ${info.reason}`);
  }
  if (info.available) process.env.SLURM_CONF = info.slurmConf;
  project.provide("cluster", info);
}
