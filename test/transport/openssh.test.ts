import { execa } from "execa";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { TransportError } from "../../src/index.js";
import { OpenSshTransport } from "../../src/transport/openssh.js";
import { acceptedLogins, answerPrompts, countingSsh, dropConnections, needSsh } from "../helpers/ssh.js";

/** An ssh_config with the alias `testcluster` for the test sshd; `extra` lines go into its Host block. */
async function sshConfig(dir: string, extra: string[] = [], knownHosts = join(dir, "known_hosts")): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "slurmkit-openssh-"));
  const path = join(folder, "config");
  const lines = [
    "Host testcluster",
    "  HostName 127.0.0.1",
    "  Port 2222",
    "  User root",
    `  IdentityFile ${join(dir, "userkey")}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${knownHosts}`,
    "  StrictHostKeyChecking yes",
    ...extra.map((l) => `  ${l}`),
  ];
  await writeFile(path, `${lines.join("\n")}\n`);
  return path;
}

/** Authentications sshd has accepted so far (its log). */
async function accepted(dir: string): Promise<number> {
  return ((await readFile(join(dir, "sshd.log"), "utf8")).match(/Accepted publickey/g) ?? []).length;
}

const opened: OpenSshTransport[] = [];
afterEach(() => {
  for (const t of opened.splice(0)) t.close();
});

describe("the system's ssh, with the user's own configuration (test sshd on loopback)", () => {
  test("an alias: commands ride one connection that authenticates once, and every argument arrives intact", async (ctx) => {
    const { dir } = needSsh(ctx);
    const lines: string[] = [];
    const t = new OpenSshTransport("testcluster", { configFile: await sshConfig(dir), interactive: false, log: (l) => lines.push(l) });
    opened.push(t);
    const before = await accepted(dir);
    const odd = ["a b", "it's", "$(id)", "`id`", "*", "\\n", ""];
    const r = await t.run("printf", ["%s|", ...odd]);
    expect(r).toEqual({ stdout: `${odd.join("|")}|`, stderr: "", exitCode: 0 });
    for (let i = 0; i < 10; i++) expect((await t.run("squeue", ["-h", "-o", "%i"])).exitCode).toBe(0);
    expect((await t.run("sh", ["-c", "exit 3"])).exitCode).toBe(3);
    expect((await t.run("cat", [], { input: "from stdin" })).stdout).toBe("from stdin");
    expect(await accepted(dir)).toBe(before + 1);
    expect(lines).toEqual(["slurmkit: connecting to testcluster (root@127.0.0.1:2222)"]);
  });

  test("the user's own ControlMaster, opened beforehand (ssh -fNM): no new authentication at all", async (ctx) => {
    const { dir } = needSsh(ctx);
    const socketDir = await mkdtemp(join(tmpdir(), "slurmkit-cm-"));
    const config = await sshConfig(dir, ["ControlMaster auto", `ControlPath ${socketDir}/%r@%h:%p`, "ControlPersist 60"]);
    await execa("ssh", ["-F", config, "-fNM", "testcluster"]);
    try {
      const before = await accepted(dir);
      const t = new OpenSshTransport("testcluster", { configFile: config, interactive: false, log: () => undefined });
      opened.push(t);
      for (let i = 0; i < 5; i++) expect((await t.run("hostname", [])).exitCode).toBe(0);
      expect(await accepted(dir)).toBe(before);
    } finally {
      await execa("ssh", ["-F", config, "-O", "exit", "testcluster"], { reject: false });
    }
  });

  test("an unknown host key is refused by OpenSSH, as a connect error", async (ctx) => {
    const { dir } = needSsh(ctx);
    const empty = join(await mkdtemp(join(tmpdir(), "slurmkit-kh-")), "known_hosts");
    await writeFile(empty, "");
    const t = new OpenSshTransport("testcluster", { configFile: await sshConfig(dir, [], empty), interactive: false, log: () => undefined });
    opened.push(t);
    const error = await t.run("true", []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ stage: "connect", unreachable: true });
    expect((error as Error).message).toContain("Host key verification failed");
    expect((error as Error).message).toContain("Run `ssh testcluster` once in a terminal, compare the fingerprint");
  });

  test("with no terminal to answer a prompt, a login that needs one fails at once with a typed error that says what to do", async (ctx) => {
    const { dir } = needSsh(ctx);
    // The authorized key is not offered: ssh would have to ask for a password, and BatchMode says it may not.
    const config = await sshConfig(dir, [`IdentityFile ${join(dir, "wrongkey")}`]);
    await writeFile(config, (await readFile(config, "utf8")).replace(`IdentityFile ${join(dir, "userkey")}\n`, ""));
    const t = new OpenSshTransport("testcluster", { configFile: config, interactive: false, log: () => undefined });
    opened.push(t);
    const error = await t.run("true", []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as Error).message).toContain("open the connection first");
  });

  test("ProxyJump through a bastion: every command rides one connection, with one login on each server", async (ctx) => {
    const info = needSsh(ctx);
    const lines: string[] = [];
    const t = new OpenSshTransport("slurmkit-via-bastion", { configFile: join(info.dir, "openssh-config"), interactive: false, log: (l) => lines.push(l) });
    opened.push(t);
    const before = { bastion: await acceptedLogins(info, "bastion"), login: await acceptedLogins(info, "sshd") };
    const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => t.run("sh", ["-c", 'echo "$1 $SLURM_CONF"', "sh", String(i)])));
    expect(runs.map((r) => r.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `${i} ${process.env.SLURM_CONF}`));
    await t.writeFile("/tmp/slurmkit-openssh-jump", "through the bastion");
    expect(String(await t.readFile("/tmp/slurmkit-openssh-jump"))).toBe("through the bastion");
    expect(await acceptedLogins(info, "bastion")).toBe(before.bastion + 1);
    expect(await acceptedLogins(info, "sshd")).toBe(before.login + 1);
    expect(lines).toEqual(["slurmkit: connecting to slurmkit-via-bastion (root@127.0.0.1:2222)"]);
  });

  test("multifactor authentication: the passcode is asked once for many commands, and once more after the connection drops", async (ctx) => {
    const info = needSsh(ctx);
    const askpass = await answerPrompts(info);
    try {
      const lines: string[] = [];
      const t = new OpenSshTransport("slurmkit-mfa", { configFile: join(info.dir, "openssh-config"), log: (l) => lines.push(l) });
      opened.push(t);
      const before = await acceptedLogins(info, "mfa");
      for (let i = 0; i < 10; i++) expect((await t.run("squeue", ["-h"])).exitCode).toBe(0);
      expect(await askpass.prompts()).toEqual(["(root@127.0.0.1) Password: "]);
      expect(await acceptedLogins(info, "mfa")).toBe(before + 1);
      // Cut: the calls in flight fail as unreachable; the next ones share one new login.
      await dropConnections(info, "mfa");
      const cut = await t.run("true", []).catch((e: unknown) => e);
      expect(cut).toMatchObject({ unreachable: true });
      const after = await Promise.all(Array.from({ length: 6 }, () => t.run("hostname", [])));
      expect(after.every((r) => r.exitCode === 0)).toBe(true);
      expect(await askpass.prompts()).toHaveLength(2);
      expect(await acceptedLogins(info, "mfa")).toBe(before + 2);
      expect(lines).toEqual([
        "slurmkit: connecting to slurmkit-mfa (root@127.0.0.1:2224); answer any prompt on this terminal",
        "slurmkit: the connection dropped; reconnecting to slurmkit-mfa (root@127.0.0.1:2224); answer any prompt on this terminal",
      ]);
    } finally {
      askpass.restore();
    }
  });

  test("more commands at once than sshd allows sessions on one connection: they wait for a session, none logs in anew", async (ctx) => {
    const info = needSsh(ctx);
    const t = new OpenSshTransport("slurmkit-test", { configFile: join(info.dir, "openssh-config"), interactive: false, log: () => undefined });
    opened.push(t);
    const before = await acceptedLogins(info, "sshd");
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => t.run("sh", ["-c", "sleep 0.2; echo $1", "sh", String(i)])));
    expect(runs.map((r) => Number(r.stdout))).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(await acceptedLogins(info, "sshd")).toBe(before + 1);
  });
});

describe("reads asked for at once", () => {
  test("go out as one command: every file's bytes intact, a missing one ENOENT, a folder an error, a path with a newline read alone", async (ctx) => {
    const info = needSsh(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-batch-read-"));
    const { ssh, runs } = await countingSsh();
    const t = new OpenSshTransport("slurmkit-test", { configFile: join(info.dir, "openssh-config"), interactive: false, log: () => undefined, ssh });
    opened.push(t);
    const files: Record<string, Buffer> = {
      plain: Buffer.from("a result\n"),
      binary: Buffer.from([0, 10, 10, 0xff, 0x46, 0x20, 0x31, 10, 0]),
      empty: Buffer.alloc(0),
      "it's $(id) `x`.txt": Buffer.from("odd name"),
      big: Buffer.alloc(300_000, 7),
      "line\nbreak": Buffer.from("read alone"),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
    await t.run("true", []);
    const runsBefore = await runs();
    const paths = [...Object.keys(files).map((n) => join(dir, n)), join(dir, "missing"), dir];
    const reads = await Promise.all(paths.map((p) => t.readFile(p).catch((e: unknown) => e)));
    expect(reads.slice(0, -2)).toEqual(Object.values(files));
    const missing = reads.at(-2) as TransportError;
    const folder = reads.at(-1) as TransportError;
    expect(missing).toBeInstanceOf(TransportError);
    expect(missing.code).toBe("ENOENT");
    expect(missing.message).toContain(`${dir}/missing`);
    expect(folder).toBeInstanceOf(TransportError);
    expect(folder.code).toBeUndefined();
    expect(folder.message).toMatch(/Is a directory/);
    // One command for the batch, one for the path that cannot go on a line.
    expect((await runs()) - runsBefore).toBe(2);
  });
});
