import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  checkHostKey,
  describeHostKeyProblem,
  fingerprint,
  hostKeyAlgorithms,
  hostMatches,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  parseKnownHosts,
  type KnownHostEntry,
} from "../../src/transport/known-hosts.js";

interface PublicKey {
  readonly type: string;
  readonly base64: string;
  readonly blob: Buffer;
  readonly pubFile: string;
}

let dir: string;
const keys: Record<"ed" | "ed2" | "rsa" | "ecdsa", PublicKey> = {} as never;

function sshKeygen(args: readonly string[]): string {
  return execFileSync("ssh-keygen", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function generate(name: string, args: readonly string[]): PublicKey {
  const file = join(dir, name);
  sshKeygen(["-q", ...args, "-N", "", "-C", `${name}@test`, "-f", file]);
  const [type, base64] = readFileSync(`${file}.pub`, "utf8").trim().split(" ") as [string, string];
  return { type, base64, blob: Buffer.from(base64, "base64"), pubFile: `${file}.pub` };
}

/** A known_hosts line for `hosts` with `key`, as ssh writes it. */
const line = (hosts: string, key: PublicKey, marker = "") => `${marker ? `${marker} ` : ""}${hosts} ${key.type} ${key.base64}`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slurmkit-known-hosts-"));
  keys.ed = generate("ed", ["-t", "ed25519"]);
  keys.ed2 = generate("ed2", ["-t", "ed25519"]);
  keys.rsa = generate("rsa", ["-t", "rsa", "-b", "2048"]);
  keys.ecdsa = generate("ecdsa", ["-t", "ecdsa", "-b", "256"]);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("parsing known_hosts", () => {
  test("skips comments, blank and malformed lines, keeps line numbers, markers and CRLF lines", () => {
    const { ed, rsa, ecdsa } = keys;
    const text = [
      "# a comment", // 1
      "", // 2
      `${line("cluster,10.0.0.1", ed)} a trailing comment`, // 3
      "   \t ", // 4
      "cluster ssh-ed25519", // 5: no key
      "cluster ssh-ed25519 not*base64!", // 6: bad base64
      `cluster ssh-ed25519 ${ed.base64.slice(0, -1)}`, // 7: base64 without its padding
      `cluster ssh-rsa ${ed.base64}`, // 8: the blob is an ed25519 key
      "cluster ssh-ed25519 AAAAC3Nz", // 9: a truncated blob
      line("cluster", ed, "@bogus"), // 10: unknown marker
      `  ${line("*", rsa, "@revoked")}`, // 11
      line("*.example.org", ed, "@cert-authority"), // 12
      `${line("[login]:2222", ecdsa)} comment\r`, // 13
      `\t# an indented comment\r`, // 14
      "cluster", // 15
    ].join("\n");
    const entries = parseKnownHosts(text, "/home/u/.ssh/known_hosts");
    expect(entries.map((e) => ({ ...e, key: e.key.toString("base64") }))).toEqual([
      { file: "/home/u/.ssh/known_hosts", line: 3, marker: undefined, hosts: "cluster,10.0.0.1", keyType: "ssh-ed25519", key: ed.base64 },
      { file: "/home/u/.ssh/known_hosts", line: 11, marker: "revoked", hosts: "*", keyType: "ssh-rsa", key: rsa.base64 },
      { file: "/home/u/.ssh/known_hosts", line: 12, marker: "cert-authority", hosts: "*.example.org", keyType: "ssh-ed25519", key: ed.base64 },
      { file: "/home/u/.ssh/known_hosts", line: 13, marker: undefined, hosts: "[login]:2222", keyType: "ecdsa-sha2-nistp256", key: ecdsa.base64 },
    ]);
    expect(entries[0]!.key.equals(ed.blob)).toBe(true);
  });

  test("a file with CRLF line ends throughout", () => {
    const text = ["# hosts", line("a", keys.ed), "", line("b", keys.rsa), ""].join("\r\n");
    const entries = parseKnownHosts(text, "f");
    expect(entries.map((e) => [e.line, e.hosts, e.keyType])).toEqual([
      [2, "a", "ssh-ed25519"],
      [4, "b", "ssh-rsa"],
    ]);
    expect(entries[1]!.key.equals(keys.rsa.blob)).toBe(true);
  });

  test("empty text has no entries", () => {
    expect(parseKnownHosts("", "f")).toEqual([]);
    expect(parseKnownHosts("\n\n# only comments\n", "f")).toEqual([]);
  });
});

describe("matching hosts", () => {
  test("the name OpenSSH looks up", () => {
    expect(knownHostName("login.example.org", 22)).toBe("login.example.org");
    expect(knownHostName("Login.Example.ORG", 22)).toBe("login.example.org");
    expect(knownHostName("127.0.0.1", 2222)).toBe("[127.0.0.1]:2222");
    expect(knownHostName("::1", 2222)).toBe("[::1]:2222");
  });

  test("plain names, case-insensitive, and ports", () => {
    expect(hostMatches("login.example.org,10.0.0.1", "login.example.org", 22)).toBe(true);
    expect(hostMatches("login.example.org,10.0.0.1", "10.0.0.1", 22)).toBe(true);
    expect(hostMatches("Login.Example.org", "LOGIN.example.ORG", 22)).toBe(true);
    expect(hostMatches("login.example.org", "login", 22)).toBe(false);
    expect(hostMatches("login.example.org", "login.example.org", 2222)).toBe(false);
    expect(hostMatches("[127.0.0.1]:2222", "127.0.0.1", 2222)).toBe(true);
    expect(hostMatches("[127.0.0.1]:2222", "127.0.0.1", 22)).toBe(false);
    expect(hostMatches("[127.0.0.1]:2222", "127.0.0.1", 2223)).toBe(false);
    expect(hostMatches("", "login", 22)).toBe(false);
  });

  test("wildcards, also inside [host]:port", () => {
    expect(hostMatches("*.example.org", "n1.example.org", 22)).toBe(true);
    expect(hostMatches("*.example.org", "example.org", 22)).toBe(false);
    expect(hostMatches("*.example.org", "n1.example.org", 2222)).toBe(false);
    expect(hostMatches("node?", "node7", 22)).toBe(true);
    expect(hostMatches("node?", "node17", 22)).toBe(false);
    expect(hostMatches("10.0.*.1", "10.0.33.1", 22)).toBe(true);
    expect(hostMatches("[*.example.org]:2222", "N1.Example.org", 2222)).toBe(true);
    expect(hostMatches("[*.example.org]:2222", "n1.example.org", 22)).toBe(false);
    expect(hostMatches("[n?.example.org]:22??", "n1.example.org", 2201)).toBe(true);
    expect(hostMatches("*", "anything", 22)).toBe(true);
    expect(hostMatches("*", "anything", 2222)).toBe(true);
    expect(hostMatches("a*b*c", "axxbyyc", 22)).toBe(true);
    expect(hostMatches("a*b*c", "axxbyy", 22)).toBe(false);
  });

  test("a matching negated pattern makes the field not match", () => {
    const field = "*.example.org,!bad.example.org";
    expect(hostMatches(field, "good.example.org", 22)).toBe(true);
    expect(hostMatches(field, "bad.example.org", 22)).toBe(false);
    expect(hostMatches(field, "BAD.example.org", 22)).toBe(false);
    expect(hostMatches("!bad.example.org,*", "bad.example.org", 22)).toBe(false);
    // Negation alone matches nothing.
    expect(hostMatches("!bad.example.org", "good.example.org", 22)).toBe(false);
  });

  test("a hashed name written by ssh-keygen -H", () => {
    // Made with: echo '[127.0.0.1]:2222 ssh-ed25519 ...' > kh; ssh-keygen -H -f kh
    const hashed = "|1|ZcgmL6rBZqF9nnzBVBmWpVMK2hk=|X791/617gSa8TApIR3SBAlmG0XA=";
    expect(hostMatches(hashed, "127.0.0.1", 2222)).toBe(true);
    expect(hostMatches(hashed, "127.0.0.1", 22)).toBe(false);
    expect(hostMatches(hashed, "127.0.0.2", 2222)).toBe(false);
    expect(hostMatches(`!${hashed},*`, "127.0.0.1", 2222)).toBe(false);
    expect(hostMatches("|1|not base64|X791/617gSa8TApIR3SBAlmG0XA=", "127.0.0.1", 2222)).toBe(false);
    expect(hostMatches("|2|ZcgmL6rBZqF9nnzBVBmWpVMK2hk=|X791/617gSa8TApIR3SBAlmG0XA=", "127.0.0.1", 2222)).toBe(false);
  });

  test("entries hashed with ssh-keygen -H are found for their host and port only", () => {
    const file = join(dir, "hashed_known_hosts");
    writeFileSync(file, `${[line("login.example.org", keys.ed), line("[127.0.0.1]:2222", keys.rsa), line("other", keys.ecdsa)].join("\n")}\n`);
    sshKeygen(["-H", "-f", file]);
    const entries = parseKnownHosts(readFileSync(file, "utf8"), file);
    expect(entries).toHaveLength(3);
    for (const e of entries) expect(e.hosts).toMatch(/^\|1\|[A-Za-z0-9+/]+=*\|[A-Za-z0-9+/]+=*$/);
    expect(checkHostKey(entries, "login.example.org", 22, keys.ed.blob)).toEqual({ status: "trusted", entry: entries[0] });
    expect(checkHostKey(entries, "LOGIN.example.org", 22, keys.ed.blob)).toEqual({ status: "trusted", entry: entries[0] });
    expect(checkHostKey(entries, "127.0.0.1", 2222, keys.rsa.blob)).toEqual({ status: "trusted", entry: entries[1] });
    expect(checkHostKey(entries, "127.0.0.1", 22, keys.rsa.blob)).toEqual({ status: "unknown", knownTypes: [] });
    expect(checkHostKey(entries, "login.example.org", 2222, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
    expect(checkHostKey(entries, "127.0.0.1", 2222, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: ["ssh-rsa"] });
  });
});

describe("checking a host key", () => {
  const parse = (...lines: string[]) => parseKnownHosts(lines.join("\n"), "/kh");

  test("trusted when a plain entry for the host has exactly this key", () => {
    const entries = parse(line("other", keys.ed2), line("cluster,10.0.0.1", keys.ed));
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "trusted", entry: entries[1] });
    expect(checkHostKey(entries, "10.0.0.1", 22, keys.ed.blob)).toEqual({ status: "trusted", entry: entries[1] });
  });

  test("trusted when one of several keys of the type is this key", () => {
    const entries = parse(line("cluster", keys.ed2), line("cluster", keys.ed));
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "trusted", entry: entries[1] });
  });

  test("[host]:port entries apply to that port only", () => {
    const entries = parse(line("[cluster]:2222", keys.ed));
    expect(checkHostKey(entries, "cluster", 2222, keys.ed.blob).status).toBe("trusted");
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
  });

  test("wildcard and negated entries", () => {
    const entries = parse(line("*.example.org,!evil.example.org", keys.ed));
    expect(checkHostKey(entries, "n1.example.org", 22, keys.ed.blob).status).toBe("trusted");
    expect(checkHostKey(entries, "evil.example.org", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
  });

  test("changed when entries for the host have a key of this type but not this key", () => {
    const entries = parse(line("cluster", keys.rsa), line("cluster", keys.ed), line("other", keys.ed2), line("*", keys.ecdsa));
    expect(checkHostKey(entries, "cluster", 22, keys.ed2.blob)).toEqual({ status: "changed", entries: [entries[1]] });
  });

  test("unknown for a host with no entries", () => {
    const entries = parse(line("cluster", keys.ed));
    expect(checkHostKey(entries, "elsewhere", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
    expect(checkHostKey([], "cluster", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
  });

  test("unknown, with the types it does know, for a host with keys of other types only", () => {
    const entries = parse(line("cluster", keys.rsa), line("cluster", keys.ecdsa), line("cluster", keys.rsa));
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: ["ssh-rsa", "ecdsa-sha2-nistp256"] });
  });

  test("revoked wins over a plain entry with the same key", () => {
    const entries = parse(line("cluster", keys.ed), line("*", keys.ed, "@revoked"));
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "revoked", entry: entries[1] });
    const forHost = parse(line("cluster", keys.ed), line("[cluster]:2222", keys.ed, "@revoked"));
    expect(checkHostKey(forHost, "cluster", 2222, keys.ed.blob)).toEqual({ status: "revoked", entry: forHost[1] });
  });

  test("a revocation for another host or of another key does not apply", () => {
    const entries = parse(line("cluster", keys.ed), line("other", keys.ed, "@revoked"), line("*", keys.ed2, "@revoked"));
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "trusted", entry: entries[0] });
    // Nor does a revoked key count as a known one.
    expect(checkHostKey(parse(line("*", keys.ed2, "@revoked")), "cluster", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
  });

  test("@cert-authority entries are ignored", () => {
    const entries = parse(line("cluster", keys.ed, "@cert-authority"), line("*", keys.rsa, "@cert-authority"));
    expect(checkHostKey(entries, "cluster", 22, keys.ed.blob)).toEqual({ status: "unknown", knownTypes: [] });
    expect(checkHostKey(entries, "cluster", 22, keys.ed2.blob)).toEqual({ status: "unknown", knownTypes: [] });
    expect(knownKeyTypes(entries, "cluster", 22)).toEqual([]);
  });

  test("a malformed offered key is an error", () => {
    expect(() => checkHostKey([], "cluster", 22, Buffer.from([0, 0, 0]))).toThrow(/Malformed SSH host key/);
  });

  test("known key types: distinct, in file order, plain entries for the host only", () => {
    const entries = parse(line("cluster", keys.ecdsa), line("other", keys.ed), line("*", keys.rsa, "@revoked"), line("clus*", keys.rsa), line("cluster", keys.ecdsa), line("cluster", keys.ed2));
    expect(knownKeyTypes(entries, "cluster", 22)).toEqual(["ecdsa-sha2-nistp256", "ssh-rsa", "ssh-ed25519"]);
    expect(knownKeyTypes(entries, "other", 22)).toEqual(["ssh-ed25519"]);
    expect(knownKeyTypes(entries, "cluster", 2222)).toEqual([]);
  });
});

describe("keys", () => {
  test("fingerprints are what ssh-keygen -l prints", () => {
    for (const key of Object.values(keys)) {
      const printed = sshKeygen(["-l", "-E", "sha256", "-f", key.pubFile]).split(" ")[1];
      expect(printed).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      expect(fingerprint(key.blob)).toBe(printed);
    }
  });

  test("the key type of a blob", () => {
    expect(keyTypeOf(keys.ed.blob)).toBe("ssh-ed25519");
    expect(keyTypeOf(keys.rsa.blob)).toBe("ssh-rsa");
    expect(keyTypeOf(keys.ecdsa.blob)).toBe("ecdsa-sha2-nistp256");
    expect(() => keyTypeOf(Buffer.alloc(0))).toThrow(/Malformed SSH host key: 0 bytes/);
    expect(() => keyTypeOf(Buffer.from([0, 0, 0, 11, 0x73, 0x73, 0x68]))).toThrow(/Malformed SSH host key: 7 bytes/);
    expect(() => keyTypeOf(Buffer.from([0, 0, 0, 0]))).toThrow(/Malformed SSH host key/);
  });

  test("host key algorithms to ask the server for", () => {
    expect(hostKeyAlgorithms(["ssh-ed25519"])).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms(["ssh-rsa"])).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    expect(hostKeyAlgorithms(["ecdsa-sha2-nistp521", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa", "ssh-ed25519"])).toEqual([
      "ecdsa-sha2-nistp521",
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
      "ecdsa-sha2-nistp256",
      "ecdsa-sha2-nistp384",
      "ssh-ed25519",
    ]);
    expect(hostKeyAlgorithms(["ssh-dss", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-ed25519-cert-v01@openssh.com", "toString", "ssh-ed25519"])).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms([])).toEqual([]);
  });
});

describe("messages", () => {
  // Fixed keys, so that the messages are pinned.
  const keyA = "AAAAC3NzaC1lZDI1NTE5AAAAIAur3h8a8hTqNWpShRw4xARfhoxut/o/wzU6qXI3oo66";
  const fpA = "SHA256:Kmh40tSv0lZIq6SWiKor0raf7DhDuvDUvYqvv09oSKY";
  const keyB = "AAAAC3NzaC1lZDI1NTE5AAAAIODvZPzZJODzlCL8FxWxKaQl4A4bcgPLXMaUr6/eGJRZ";
  const fpB = "SHA256:mDrUPPQGARvj6afjtHV1BzjhEV8Rgh1Fxtjq4KmVwtM";
  const blobA = Buffer.from(keyA, "base64");
  const where = { host: "127.0.0.1", port: 2222, username: "root", knownHostsFile: "/root/.ssh/known_hosts", fileExists: true, blob: blobA };

  test("the fixed keys have the fingerprints ssh-keygen printed", () => {
    expect(fingerprint(blobA)).toBe(fpA);
    expect(fingerprint(Buffer.from(keyB, "base64"))).toBe(fpB);
  });

  test("an unknown host", () => {
    expect(describeHostKeyProblem({ status: "unknown", knownTypes: [] }, where)).toBe(
      "The host key of [127.0.0.1]:2222 is not in /root/.ssh/known_hosts, so slurmkit refuses to connect.\n" +
        `The server offered an ssh-ed25519 key with fingerprint ${fpA}.\n` +
        "If that is the cluster's key (compare it with the fingerprint your admins publish), trust it by connecting once with " +
        "`ssh -p 2222 root@127.0.0.1` and answering yes, or by adding this line to /root/.ssh/known_hosts:\n" +
        `[127.0.0.1]:2222 ssh-ed25519 ${keyA}`,
    );
  });

  test("an unknown key on port 22, without a known_hosts file, and with keys of other types", () => {
    const at22 = { ...where, host: "Login.example.org", port: 22, username: "alice", knownHostsFile: "/home/alice/.ssh/known_hosts", fileExists: false };
    expect(describeHostKeyProblem({ status: "unknown", knownTypes: [] }, at22)).toBe(
      "The host key of login.example.org is not in /home/alice/.ssh/known_hosts (the file does not exist), so slurmkit refuses to connect.\n" +
        `The server offered an ssh-ed25519 key with fingerprint ${fpA}.\n` +
        "If that is the cluster's key (compare it with the fingerprint your admins publish), trust it by connecting once with " +
        "`ssh alice@Login.example.org` and answering yes, or by adding this line to /home/alice/.ssh/known_hosts:\n" +
        `login.example.org ssh-ed25519 ${keyA}`,
    );
    expect(describeHostKeyProblem({ status: "unknown", knownTypes: ["ssh-rsa", "ecdsa-sha2-nistp256"] }, { ...at22, fileExists: true })).toBe(
      "The host key of login.example.org is not in /home/alice/.ssh/known_hosts, so slurmkit refuses to connect.\n" +
        `The server offered an ssh-ed25519 key with fingerprint ${fpA}; the file only has keys of type ssh-rsa, ecdsa-sha2-nistp256 for this host.\n` +
        "If that is the cluster's key (compare it with the fingerprint your admins publish), trust it by connecting once with " +
        "`ssh alice@Login.example.org` and answering yes, or by adding this line to /home/alice/.ssh/known_hosts:\n" +
        `login.example.org ssh-ed25519 ${keyA}`,
    );
  });

  test("a changed key", () => {
    const entries = parseKnownHosts(`# cluster\n[127.0.0.1]:2222 ssh-ed25519 ${keyB}\n`, "/root/.ssh/known_hosts");
    const check = checkHostKey(entries, "127.0.0.1", 2222, blobA);
    expect(check.status).toBe("changed");
    if (check.status !== "changed") return;
    expect(describeHostKeyProblem(check, where)).toBe(
      "WARNING: THE HOST KEY OF [127.0.0.1]:2222 HAS CHANGED, so slurmkit refuses to connect.\n" +
        `/root/.ssh/known_hosts:2 has an ssh-ed25519 key with fingerprint ${fpB}.\n` +
        `The server offered an ssh-ed25519 key with fingerprint ${fpA}.\n` +
        "Someone may be intercepting the connection (a man-in-the-middle attack), or the server was reinstalled and has a new key.\n" +
        "Ask the cluster's admins whether its key changed. Once they confirm the new fingerprint, remove the old key with " +
        "`ssh-keygen -R '[127.0.0.1]:2222' -f /root/.ssh/known_hosts`, then trust it by connecting once with " +
        "`ssh -p 2222 root@127.0.0.1` and answering yes, or by adding this line to /root/.ssh/known_hosts:\n" +
        `[127.0.0.1]:2222 ssh-ed25519 ${keyA}`,
    );
  });

  test("a changed key listed in two files, on port 22", () => {
    const user = parseKnownHosts(`login ssh-ed25519 ${keyB}\n`, "/home/alice/.ssh/known_hosts");
    const global = parseKnownHosts(`\n\nlogin ssh-ed25519 ${keyB}\n`, "/etc/ssh/ssh_known_hosts");
    const check = checkHostKey([...user, ...global], "login", 22, blobA);
    if (check.status !== "changed") throw new Error(`expected changed, got ${check.status}`);
    const message = describeHostKeyProblem(check, { ...where, host: "login", port: 22, username: "alice", knownHostsFile: "/home/alice/.ssh/known_hosts" });
    expect(message.split("\n").slice(0, 4)).toEqual([
      "WARNING: THE HOST KEY OF login HAS CHANGED, so slurmkit refuses to connect.",
      `/home/alice/.ssh/known_hosts:1 has an ssh-ed25519 key with fingerprint ${fpB}.`,
      `/etc/ssh/ssh_known_hosts:3 has an ssh-ed25519 key with fingerprint ${fpB}.`,
      `The server offered an ssh-ed25519 key with fingerprint ${fpA}.`,
    ]);
    expect(message).toContain(
      "remove the old key with `ssh-keygen -R login -f /home/alice/.ssh/known_hosts` and `ssh-keygen -R login -f /etc/ssh/ssh_known_hosts`, then trust it by connecting once with `ssh alice@login`",
    );
  });

  test("a revoked key", () => {
    const entries: KnownHostEntry[] = parseKnownHosts(`[127.0.0.1]:2222 ssh-ed25519 ${keyA}\n@revoked * ssh-ed25519 ${keyA}\n`, "/root/.ssh/known_hosts");
    const check = checkHostKey(entries, "127.0.0.1", 2222, blobA);
    if (check.status !== "revoked") throw new Error(`expected revoked, got ${check.status}`);
    expect(describeHostKeyProblem(check, where)).toBe(
      "The host key of [127.0.0.1]:2222 is revoked by /root/.ssh/known_hosts:2, so slurmkit refuses to connect.\n" +
        `The server offered an ssh-ed25519 key with fingerprint ${fpA}.\n` +
        "A revoked key is never trusted: ask the cluster's admins for the server's current key.",
    );
  });

  test("host names and users that need quoting in the commands", () => {
    const odd = { ...where, host: "fe80::1%eth0", port: 22, username: "o'brien", knownHostsFile: "/home/my files/known_hosts" };
    const message = describeHostKeyProblem({ status: "changed", entries: parseKnownHosts(`fe80::1%eth0 ssh-ed25519 ${keyB}`, odd.knownHostsFile) }, odd);
    expect(message).toContain("`ssh-keygen -R fe80::1%eth0 -f '/home/my files/known_hosts'`");
    expect(message).toContain("`ssh 'o'\\''brien@fe80::1%eth0'`");
  });
});
