import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { inject, type TestContext } from "vitest";

/** What the global setup found out about the test cluster. */
export interface ClusterInfo {
  available: boolean;
  reason: string;
  slurmConf: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

export const clusterScript = fileURLToPath(new URL("../cluster/cluster.sh", import.meta.url));

/** The cluster, or a skip (a failure with CI=true) that says why there is none. */
export function needCluster(ctx: TestContext): ClusterInfo {
  const info = inject("cluster");
  if (!info.available) {
    if (process.env.CI === "true") throw new Error(`Slurm test cluster unavailable: ${info.reason}`);
    ctx.skip(`no Slurm test cluster: ${info.reason}`);
  }
  process.env.SLURM_CONF = info.slurmConf;
  return info;
}

/** What a finished Slurm client command printed. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs a Slurm client command against the test cluster; rejects on failure unless `reject: false`. */
export async function slurm(file: string, args: readonly string[], options: { input?: string; reject?: boolean } = {}): Promise<CommandOutput> {
  const info = inject("cluster");
  const result = await execa(file, args, {
    reject: options.reject ?? true,
    env: { SLURM_CONF: info.slurmConf },
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
