import { execa } from "execa";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import type { ClusterInfo } from "./helpers/cluster.js";

import type { SshServerInfo } from "./helpers/ssh.js";
import type { BrowserInfo } from "./helpers/browser.js";
import type { PbsInfo } from "./helpers/pbs.js";

const script = fileURLToPath(new URL("./cluster/cluster.sh", import.meta.url));
const sshdScript = fileURLToPath(new URL("./ssh/sshd.sh", import.meta.url));
const pbsScript = fileURLToPath(new URL("./pbs/pbs.sh", import.meta.url));
const chromiumScript = fileURLToPath(new URL("./browser/chromium.sh", import.meta.url));

/** Headless Chromium for the report tests: Debian's, installed when missing. */
async function findBrowser(): Promise<BrowserInfo> {
  const found = await execa("bash", [chromiumScript, "path"], { reject: false });
  const path = found.stdout.trim();
  return found.exitCode === 0 && path ? { available: true, reason: "", path } : { available: false, reason: found.stderr.trim() || "no chromium", path: "" };
}

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

/** OpenSSH's sshd on 127.0.0.1:2222, in front of the cluster (needs the cluster's packages and root). */
async function startSshd(cluster: ClusterInfo): Promise<SshServerInfo> {
  if (!cluster.available) return { available: false, reason: `no cluster behind it: ${cluster.reason}`, dir: "" };
  const up = await execa("bash", [sshdScript, "up"], { reject: false, stdout: "pipe", stderr: ["pipe", "inherit"] });
  if (up.exitCode !== 0) return { available: false, reason: `sshd.sh up failed with exit code ${up.exitCode}`, dir: "" };
  const dir = (await execa("bash", [sshdScript, "dir"])).stdout.trim();
  return { available: true, reason: "", dir };
}

/**
 * The OpenPBS test server (test/pbs/pbs.sh): built from the vendored source
 * once, started when it is not running, and stopped at the end only if this
 * run started it.
 */
async function startPbs(): Promise<{ info: PbsInfo; stop: (() => Promise<void>) | undefined }> {
  const none = (reason: string) => ({ info: { available: false, reason, bin: "" }, stop: undefined });
  if (process.platform !== "linux") return none(`the PBS test server needs Linux, this is ${process.platform}`);
  if (process.getuid?.() !== 0) return none("the PBS test server needs root to build and start its daemons");
  const source = await execa("bash", [pbsScript, "source"], { reject: false });
  if (source.exitCode !== 0) return none(source.stderr.trim());
  const wasUp = (await execa("bash", [pbsScript, "status"], { reject: false })).exitCode === 0;
  const up = await execa("bash", [pbsScript, "up"], { reject: false, stdout: "pipe", stderr: ["pipe", "inherit"] });
  if (up.exitCode !== 0) return none(`pbs.sh up failed with exit code ${up.exitCode}`);
  const bin = (await execa("bash", [pbsScript, "env"])).stdout
    .replace(/^export PATH=/, "")
    .replace(/:\$PATH$/, "")
    .trim();
  const stop = wasUp ? undefined : async () => void (await execa("bash", [pbsScript, "down"], { reject: false }));
  return { info: { available: true, reason: "", bin }, stop };
}

/** Brings the real Slurm test cluster and the test sshd up once and hands their details to the tests. */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const info = await startCluster();
  if (!info.available && process.env.CI === "true") {
    throw new Error(`CI=true and the Slurm test cluster is not available: ${info.reason}`);
  }
  if (info.available) process.env.SLURM_CONF = info.slurmConf;
  project.provide("cluster", info);
  const ssh = await startSshd(info);
  if (!ssh.available && process.env.CI === "true") {
    throw new Error(`CI=true and the test sshd is not available: ${ssh.reason}`);
  }
  project.provide("ssh", ssh);
  const browser = await findBrowser();
  if (!browser.available && process.env.CI === "true") throw new Error(`CI=true and no headless Chromium for the report tests: ${browser.reason}`);
  project.provide("browser", browser);
  const pbs = await startPbs();
  if (!pbs.info.available && process.env.CI === "true") throw new Error(`CI=true and the OpenPBS test server is not available: ${pbs.info.reason}`);
  project.provide("pbs", pbs.info);
  return pbs.stop;
}
