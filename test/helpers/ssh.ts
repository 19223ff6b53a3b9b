import { execa } from "execa";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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

/** The test servers of test/ssh/sshd.sh, by the name of their log and pid files. */
export type TestSshServer = "sshd" | "bastion" | "mfa";

/** Logins a test server has accepted so far, by its log: public key, or (MFA) the second factor. */
export async function acceptedLogins(info: SshServerInfo, server: TestSshServer): Promise<number> {
  const log = await readFile(join(info.dir, `${server}.log`), "utf8");
  return (log.match(server === "mfa" ? /Accepted keyboard-interactive/g : /Accepted publickey/g) ?? []).length;
}

/** Drops every connection a test server holds (kills its sessions' processes); the server stays up. */
export async function dropConnections(info: SshServerInfo, server: TestSshServer): Promise<void> {
  const pid = (await readFile(join(info.dir, `${server}.pid`), "utf8")).trim();
  await execa("pkill", ["-TERM", "-P", pid], { reject: false });
}

/**
 * Answers ssh's prompts with the MFA server's passcode through SSH_ASKPASS
 * (forced, so no terminal is needed), as a user at a terminal would, until
 * the returned function restores the environment. `prompts()` reads the
 * prompts answered so far.
 */
export async function answerPrompts(info: SshServerInfo): Promise<{ prompts: () => Promise<string[]>; restore: () => void }> {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-askpass-"));
  const script = join(dir, "askpass");
  const asked = join(dir, "asked");
  await writeFile(asked, "");
  await writeFile(script, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${asked}'\ncat '${join(info.dir, "mfa-passcode")}'\n`, { mode: 0o755 });
  const saved = { SSH_ASKPASS: process.env.SSH_ASKPASS, SSH_ASKPASS_REQUIRE: process.env.SSH_ASKPASS_REQUIRE };
  process.env.SSH_ASKPASS = script;
  process.env.SSH_ASKPASS_REQUIRE = "force";
  return {
    prompts: async () => (await readFile(asked, "utf8")).split("\n").filter((l) => l !== ""),
    restore: () => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
}

/** An `ssh` program that runs the system's ssh and counts its runs: each Transport call over the system's ssh is one. */
export async function countingSsh(): Promise<{ ssh: string; runs: () => Promise<number> }> {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-ssh-count-"));
  const counter = join(dir, "runs");
  const ssh = join(dir, "ssh");
  await writeFile(counter, "");
  await writeFile(ssh, `#!/bin/sh\necho run >> '${counter}'\nexec ssh "$@"\n`, { mode: 0o755 });
  return { ssh, runs: async () => (await readFile(counter, "utf8")).split("\n").length - 1 };
}
