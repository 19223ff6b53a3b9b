import { TransportError } from "../../src/base/errors.js";
// SshTransport against Debian's OpenSSH on 127.0.0.1:2222 (test/ssh/sshd.sh):
// host keys, user keys, errors by stage, reconnects, and no secret in any message.
import { execa } from "execa";
import { copyFile, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { afterEach, describe, expect, test, vi } from "vitest";
import { ParameterError, SshTransport } from "../../src/index.js";
import { restartSshd, needSsh, secretLines, sshOptions } from "../helpers/ssh.js";

// ssh2's SFTP client class, to watch the requests it sends to the real server.
const { SFTP } = createRequire(import.meta.url)("ssh2/lib/protocol/SFTP.js") as { SFTP: { prototype: { ext_openssh_fsync: (handle: Buffer, cb: (e?: Error) => void) => void } } };

const open: SshTransport[] = [];
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});
function transport(...args: Parameters<typeof sshOptions>): SshTransport {
  const t = new SshTransport(sshOptions(...args));
  open.push(t);
  return t;
}

/** The error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<TransportError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransportError);
  return error as TransportError;
}

async function hostFingerprint(dir: string): Promise<string> {
  return (await execa("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "hostkey.pub")])).stdout.split(" ")[1]!;
}

describe("SshTransport", () => {
  test("an unknown host key is refused, with its fingerprint and how to trust it", async (ctx) => {
    const info = needSsh(ctx);
    const tmp = await mkdtemp(join(tmpdir(), "slurmkit-ssh-"));
    const knownHosts = join(tmp, "known_hosts");
    await writeFile(knownHosts, "# nothing here yet\n");
    const e = await rejection(transport(info, [], { knownHosts }).run("true", []));
    expect(e.stage).toBe("host key");
    expect(e.unreachable).toBe(true);
    expect(e.shortMessage).toBe(`ssh root@127.0.0.1:2222 (host key): The host key of [127.0.0.1]:2222 is not in ${knownHosts}, so slurmkit refuses to connect.`);
    expect(e.message).toContain(`The server offered an ssh-ed25519 key with fingerprint ${await hostFingerprint(info.dir)}.`);
    expect(e.message).toContain(`connecting once with \`ssh -o 'UserKnownHostsFile=${knownHosts}' -p 2222 root@127.0.0.1\` and answering yes`);
    const pub = (await readFile(join(info.dir, "hostkey.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
    expect(e.message).toContain(`[127.0.0.1]:2222 ${pub}`);

    // A missing file is the same refusal, and says so.
    const missing = await rejection(transport(info, [], { knownHosts: join(tmp, "absent") }).run("true", []));
    expect(missing.stage).toBe("host key");
    expect(missing.shortMessage).toContain(`is not in ${join(tmp, "absent")} (the file does not exist)`);

    // Once the line the message gives is in the file, the same host is trusted.
    await writeFile(knownHosts, `${e.message.split("\n").at(-1)!}\n`);
    expect((await transport(info, [], { knownHosts }).run("echo", ["trusted"])).stdout).toBe("trusted");
  });

  test("a changed host key is refused, naming the old and the offered fingerprints", async (ctx) => {
    const info = needSsh(ctx);
    const tmp = await mkdtemp(join(tmpdir(), "slurmkit-ssh-"));
    const knownHosts = join(tmp, "known_hosts");
    const other = (await readFile(join(info.dir, "otherhostkey.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
    await writeFile(knownHosts, `[127.0.0.1]:2222 ${other}\n`);
    const e = await rejection(transport(info, [], { knownHosts }).run("true", []));
    expect(e.stage).toBe("host key");
    expect(e.shortMessage).toBe("ssh root@127.0.0.1:2222 (host key): WARNING: THE HOST KEY OF [127.0.0.1]:2222 HAS CHANGED, so slurmkit refuses to connect.");
    const old = (await execa("ssh-keygen", ["-l", "-E", "sha256", "-f", join(info.dir, "otherhostkey.pub")])).stdout.split(" ")[1]!;
    expect(e.message).toContain(`${knownHosts}:1 has an ssh-ed25519 key with fingerprint ${old}.`);
    expect(e.message).toContain(`The server offered an ssh-ed25519 key with fingerprint ${await hostFingerprint(info.dir)}.`);
    expect(e.message).toContain(`ssh-keygen -R '[127.0.0.1]:2222' -f ${knownHosts}`);
  });

  test("a user key the server does not know is refused at the auth stage", async (ctx) => {
    const info = needSsh(ctx);
    const e = await rejection(transport(info, [], { privateKey: join(info.dir, "wrongkey") }).run("true", []));
    expect(e.stage).toBe("auth");
    expect(e.shortMessage).toBe("ssh root@127.0.0.1:2222 (auth): root was refused: All configured authentication methods failed");
    for (const secret of await secretLines(join(info.dir, "wrongkey"))) expect(e.message).not.toContain(secret);
  });

  test("an encrypted key needs its passphrase; neither the key nor the passphrase shows up in errors or logs", async (ctx) => {
    const info = needSsh(ctx);
    const tmp = await mkdtemp(join(tmpdir(), "slurmkit-ssh-"));
    const key = join(tmp, "locked");
    await copyFile(join(info.dir, "userkey"), key);
    const passphrase = "correct horse battery staple";
    await execa("ssh-keygen", ["-q", "-p", "-P", "", "-N", passphrase, "-f", key]);
    const lines: string[] = [];
    const errors: TransportError[] = [];

    errors.push(await rejection(transport(info, lines, { privateKey: key }).run("true", [])));
    expect(errors[0]!.stage).toBe("auth");
    expect(errors[0]!.shortMessage).toMatch(/^ssh root@127\.0\.0\.1:2222 \(auth\): the private key cannot be used: .*passphrase/);

    errors.push(await rejection(transport(info, lines, { privateKey: key, passphrase: "wrong horse" }).run("true", [])));
    expect(errors[1]!.stage).toBe("auth");

    const inline = await readFile(key, "utf8");
    expect((await transport(info, lines, { privateKey: inline, passphrase }).run("echo", ["unlocked"])).stdout).toBe("unlocked");
    expect((await transport(info, lines, { privateKey: key, passphrase }).run("echo", ["unlocked"])).stdout).toBe("unlocked");

    const everything = [...lines, ...errors.flatMap((e) => [e.message, String(e.cause ?? ""), e.stack ?? ""])].join("\n");
    for (const secret of [...(await secretLines(key)), passphrase, "wrong horse"]) expect(everything).not.toContain(secret);
  });

  test("a key passed in the wrong form is never repeated in the error", async (ctx) => {
    const info = needSsh(ctx);
    const pem = await readFile(join(info.dir, "userkey"), "utf8");
    const oneLine = Buffer.from(pem).toString("base64"); // as CI secrets often are
    const e = await rejection(transport(info, [], { privateKey: oneLine }).run("true", []));
    expect(e.stage).toBe("auth");
    const everything = [e.message, e.stack ?? "", String(e.cause ?? "")].join("\n");
    expect(everything).not.toContain(oneLine.slice(0, 40));
    for (const secret of await secretLines(join(info.dir, "userkey"))) expect(everything).not.toContain(secret);
  });

  test("an ssh-agent holding the key authenticates; a dead agent socket is an auth error, not a crash", async (ctx) => {
    const info = needSsh(ctx);
    const tmp = await mkdtemp(join(tmpdir(), "slurmkit-agent-"));
    const sock = join(tmp, "agent.sock");
    const agent = execa("ssh-agent", ["-D", "-a", sock]);
    try {
      for (
        let i = 0;
        i < 50 &&
        !(await readFile(sock).then(
          () => true,
          (e: NodeJS.ErrnoException) => e.code !== "ENOENT",
        ));
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      await execa("ssh-add", ["-q", join(info.dir, "userkey")], { env: { SSH_AUTH_SOCK: sock } });
      const viaAgent = transport(info, [], { privateKey: undefined, agent: sock } as never);
      expect((await viaAgent.run("echo", ["via agent"])).stdout).toBe("via agent");

      const dead = await rejection(transport(info, [], { privateKey: undefined, agent: join(tmp, "no-agent.sock") } as never).run("true", []));
      expect(dead.stage).toBe("auth");
      expect(dead.message).toContain("The agent failed:");
      // With a key as well, a dead agent does not stand in the way.
      expect((await transport(info, [], { agent: join(tmp, "no-agent.sock") }).run("echo", ["key"])).stdout).toBe("key");
    } finally {
      agent.kill();
      await agent.catch(() => undefined);
    }
  });

  test("close() while reconnecting ends the operation at once instead of after the backoff", async (ctx) => {
    const info = needSsh(ctx);
    const lines: string[] = [];
    const t = transport(info, lines);
    await t.run("true", []);
    const restart = restartSshd(6);
    await new Promise((r) => setTimeout(r, 500)); // down by now
    const pending = t.run("echo", ["never"]).then(
      () => "resolved",
      (e: TransportError) => e.shortMessage,
    );
    await new Promise((r) => setTimeout(r, 1500));
    t.close();
    const closedAt = Date.now();
    expect(await pending).toBe("ssh root@127.0.0.1:2222 (connect): the transport was closed");
    expect(Date.now() - closedAt).toBeLessThan(1000);
    await restart;
    expect((await t.run("echo", ["reopened"])).stdout).toBe("reopened");
  });

  test("errors name their stage: connect when nothing listens, auth when the key file is missing", async (ctx) => {
    const info = needSsh(ctx);
    const refused = await rejection(transport(info, [], { port: 2 }).run("true", []));
    expect(refused.stage).toBe("connect");
    expect(refused.shortMessage).toBe("ssh root@127.0.0.1:2 (connect): cannot reach 127.0.0.1:2: ECONNREFUSED");

    const noKey = await rejection(transport(info, [], { privateKey: "/nonexistent/id_ed25519" }).run("true", []));
    expect(noKey.cause).toBeUndefined();
    expect(noKey.stage).toBe("auth");
    expect(noKey.shortMessage).toBe("ssh root@127.0.0.1:2222 (auth): cannot read the private key file /nonexistent/id_ed25519: ENOENT");

    const sftp = await rejection(transport(info).readFile("/nonexistent/file"));
    expect(sftp.stage).toBe("sftp");
    expect(sftp.code).toBe("ENOENT");
    expect(sftp.unreachable).toBe(false);
  });

  test("writeFile flushes the bytes with OpenSSH's fsync before the rename, and leaves no temporary file", async (ctx) => {
    const info = needSsh(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-ssh-write-"));
    const answers: (Error | undefined)[] = [];
    const real = SFTP.prototype.ext_openssh_fsync;
    const spy = vi.spyOn(SFTP.prototype, "ext_openssh_fsync").mockImplementation(function (this: unknown, handle: Buffer, cb: (e?: Error) => void) {
      real.call(this, handle, (e?: Error) => {
        answers.push(e ?? undefined);
        cb(e);
      });
    });
    try {
      const t = transport(info);
      const big = Buffer.alloc(300_000, 7); // larger than one SFTP write packet
      await t.writeFile(join(dir, "record.json"), '{"jobId":"1"}');
      await t.writeFile(join(dir, "big"), big);
      await t.writeFile(join(dir, "record.json"), '{"jobId":"2"}');
      expect(spy).toHaveBeenCalledTimes(3);
      expect(answers).toEqual([undefined, undefined, undefined]); // the server did each fsync
      expect(await readFile(join(dir, "record.json"), "utf8")).toBe('{"jobId":"2"}');
      expect((await readFile(join(dir, "big"))).equals(big)).toBe(true);
      expect((await readdir(dir)).sort()).toEqual(["big", "record.json"]);
    } finally {
      spy.mockRestore();
    }
  });

  test("writeFile to a server without OpenSSH's fsync extension still writes and renames", async (ctx) => {
    const info = needSsh(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-ssh-write-"));
    // What ssh2 does when the server did not offer fsync@openssh.com.
    const spy = vi.spyOn(SFTP.prototype, "ext_openssh_fsync").mockImplementation(() => {
      throw new Error("Server does not support this extended request");
    });
    try {
      await transport(info).writeFile(join(dir, "record.json"), '{"jobId":"3"}');
      expect(spy).toHaveBeenCalledTimes(1);
      expect(await readFile(join(dir, "record.json"), "utf8")).toBe('{"jobId":"3"}');
      expect(await readdir(dir)).toEqual(["record.json"]);
    } finally {
      spy.mockRestore();
    }
  });

  test("bad options are refused before connecting, each named", () => {
    expect(() => new SshTransport({ host: "", username: "u" } as never)).toThrow(ParameterError);
    try {
      new SshTransport({ host: "", port: 70000, username: "u", agnet: true } as never);
    } catch (error) {
      expect((error as ParameterError).problems).toEqual([
        "Unknown key `ssh.agnet` (did you mean `agent`?); accepted: agent, connectTimeoutMs, host, keepaliveMs, knownHosts, log, passphrase, port, privateKey, reconnectMs, username",
        "Expected `ssh.host` to be a host name or address, got ``",
        "Expected `ssh.port` to be a port number (1-65535), got `70000`",
        "Expected `ssh.privateKey` (a key file's path or the key) or `ssh.agent` (true, or an agent socket), got neither",
      ]);
    }
    expect.assertions(2);
  });

  test("after sshd restarts, the next operations reconnect with backoff and succeed", async (ctx) => {
    const info = needSsh(ctx);
    const lines: string[] = [];
    const t = transport(info, lines);
    expect((await t.run("echo", ["before"])).stdout).toBe("before");
    await restartSshd(3);
    const [after, listed] = await Promise.all([t.run("echo", ["after"]), t.list(info.dir)]);
    expect(after.stdout).toBe("after");
    expect(listed).toContain("sshd_config");
    expect(lines.some((l) => /connection lost/.test(l))).toBe(true);
    expect(lines.some((l) => /reconnected after [\d.]+ s/.test(l))).toBe(true);
  });

  test("an idle connection does not keep the process alive", async (ctx) => {
    const info = needSsh(ctx);
    const dist = fileURLToPath(new URL("../../dist/src/index.js", import.meta.url));
    const script = `
      import { SshTransport } from ${JSON.stringify(dist)};
      const t = new SshTransport(${JSON.stringify({ ...sshOptions(info), log: undefined })});
      const r = await t.run("echo", ["done"]);
      console.log(r.stdout);`;
    const started = Date.now();
    const r = await execa("node", ["--input-type=module", "-e", script], { timeout: 30_000 });
    expect(r.stdout).toBe("done");
    expect(Date.now() - started).toBeLessThan(15_000); // well under the 15 s keepalive
  });
});
