import { execa } from "execa";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inject, type TestContext } from "vitest";
import type { SshOptions } from "../../src/index.js";
import { needCluster } from "./cluster.js";

/** What the global setup found out about the test sshd. */
export interface SshServerInfo {
  available: boolean;
  reason: string;
  /** Keys, known_hosts, config and log (see test/ssh/sshd.sh). */
  dir: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    ssh: SshServerInfo;
  }
}

export const sshdScript = fileURLToPath(new URL("../ssh/sshd.sh", import.meta.url));

/** The test sshd (and the cluster behind it), or a skip (a failure with CI=true) that says why there is none. */
export function needSsh(ctx: TestContext): SshServerInfo {
  needCluster(ctx);
  const info = inject("ssh");
  if (!info.available) {
    if (process.env.CI === "true") throw new Error(`test sshd unavailable: ${info.reason}`);
    ctx.skip(`no test sshd: ${info.reason}`);
  }
  return info;
}

/** Options that reach the test sshd as root with the authorized key; `lines` collects the transport's log. */
export function sshOptions(info: SshServerInfo, lines: string[] = [], extra: Partial<SshOptions> = {}): SshOptions {
  return {
    host: "127.0.0.1",
    port: 2222,
    username: "root",
    privateKey: join(info.dir, "userkey"),
    knownHosts: join(info.dir, "known_hosts"),
    log: (line) => lines.push(line),
    ...extra,
  };
}

/** Drops every connection to the test sshd, keeps it down `seconds`, and starts it again. */
export async function restartSshd(seconds: number): Promise<void> {
  await execa("bash", [sshdScript, "restart", String(seconds)]);
}

/** The private key's base64 body lines: none may show up in a log or an error. */
export async function secretLines(path: string): Promise<string[]> {
  return (await readFile(path, "utf8")).split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
}
