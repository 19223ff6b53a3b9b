// One suite, every transport: LocalTransport (execa, node:fs), SshTransport
// (ssh2 to the test sshd on 127.0.0.1:2222, which is this same machine), and
// OpenSshTransport (the system's ssh to the same sshd through an ssh_config alias).
import { existsSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test, type TestContext } from "vitest";
import { LocalTransport, SshTransport, type Transport } from "../../src/index.js";
import { OpenSshTransport } from "../../src/transport/openssh.js";
import { needSsh, sshOptions } from "../helpers/ssh.js";

const made: Transport[] = [];
afterAll(() => {
  for (const t of made) t.close?.();
});

const transports: Array<{ name: string; make: (ctx: TestContext) => Transport }> = [
  { name: "LocalTransport", make: () => new LocalTransport() },
  {
    name: "SshTransport",
    make: (ctx) => {
      const t = new SshTransport(sshOptions(needSsh(ctx)));
      made.push(t);
      return t;
    },
  },
  {
    name: "OpenSshTransport",
    make: (ctx) => {
      const { dir } = needSsh(ctx);
      // The system's ssh with an ssh_config alias for the test sshd (written once; the key and known_hosts are the test sshd's).
      // The aliases test/ssh/sshd.sh writes for its servers.
      const config = join(dir, "openssh-config");
      const t = new OpenSshTransport("slurmkit-test", { configFile: config, interactive: false, log: () => undefined });
      made.push(t);
      return t;
    },
  },
];

const ARGV = ["plain", "", "two words", "it's", '"double"', "$HOME", "`id`", "$(id)", "a\nb", "tab\there", "*", "back\\slash", "--flag=1", "ünïcödé"];

describe.each(transports)("$name", ({ make }) => {
  test("run passes every argument intact, with no shell expansion", async (ctx) => {
    const t = make(ctx);
    const r = await t.run("node", ["-e", "process.stdout.write(JSON.stringify(process.argv.slice(1)))", "--", ...ARGV]);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(ARGV);
  });

  test("run reports stdout, stderr and the exit code, and feeds input", async (ctx) => {
    const t = make(ctx);
    expect(await t.run("sh", ["-c", "echo out; echo err >&2; exit 3"])).toEqual({ stdout: "out", stderr: "err", exitCode: 3 });
    expect(await t.run("cat", [], { input: "line 1\nline 2\n" })).toEqual({ stdout: "line 1\nline 2", stderr: "", exitCode: 0 });
    expect(await t.run("sh", ["-c", "cat; exit 0"])).toEqual({ stdout: "", stderr: "", exitCode: 0 });
  });

  test("a program that does not exist gives exit code 127", async (ctx) => {
    const t = make(ctx);
    const r = await t.run("slurmkit-no-such-program", ["x"]);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/slurmkit-no-such-program: (command )?not found/);
  });

  test("run kills a command that outlives its timeout, and rejects", async (ctx) => {
    const t = make(ctx);
    const marker = join(await mkdtemp(join(tmpdir(), "slurmkit-transport-")), "still-ran");
    await expect(t.run("sh", ["-c", 'sleep 2; touch "$1"', "sh", marker], { timeoutMs: 500 })).rejects.toThrow(/timed out/i);
    await new Promise((r) => setTimeout(r, 3000));
    expect(existsSync(marker)).toBe(false);
  });

  test("many commands at once all complete", async (ctx) => {
    const t = make(ctx);
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => t.run("sh", ["-c", `sleep 0.2; echo ${i}`])));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));
  });

  test("writeFile and readFile round-trip bytes, overwrite atomically and leave no temporary file", async (ctx) => {
    const t = make(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-transport-"));
    const bytes = Buffer.from(Array.from({ length: 256 * 40 }, (_, i) => i % 256));
    await t.writeFile(join(dir, "a.bin"), bytes);
    expect(Buffer.compare(await t.readFile(join(dir, "a.bin")), bytes)).toBe(0);
    await t.writeFile(join(dir, "a.bin"), "second version\n");
    expect(String(await t.readFile(join(dir, "a.bin")))).toBe("second version\n");
    await t.writeFile(join(dir, "b.txt"), new Uint8Array([104, 105]).subarray(1));
    expect(String(await t.readFile(join(dir, "b.txt")))).toBe("i");
    expect((await t.list(dir)).sort()).toEqual(["a.bin", "b.txt"]);
  });

  test("readFrom reads a growing file from an offset: all of it from 0, the rest from the middle, nothing at or past the end", async (ctx) => {
    const t = make(ctx);
    // Each of slurmkit's transports reads from an offset itself (a custom one may fall back to readFile).
    expect(t.readFrom).toBeTypeOf("function");
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-transport-"));
    const path = join(dir, "w0.stream");
    const first = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    await writeFile(path, first);
    expect(await t.readFrom!(path, 0)).toEqual(first);
    expect(await t.readFrom!(path, 600)).toEqual(first.subarray(600));
    expect(await t.readFrom!(path, 1000)).toEqual(Buffer.alloc(0));
    expect(await t.readFrom!(path, 5000)).toEqual(Buffer.alloc(0));
    const more = Buffer.from("appended after a reader stopped\n\0 with a NUL");
    await appendFile(path, more);
    expect(await t.readFrom!(path, 1000)).toEqual(more);
    await expect(t.readFrom!(join(dir, "nope"), 0)).rejects.toMatchObject({ code: "ENOENT" });
  });

  test("createExclusive creates a file once: the first caller wins, every other gets false, the content is the winner's", async (ctx) => {
    const t = make(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-excl-"));
    const path = join(dir, "claim");
    const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => t.createExclusive(path, `caller ${i}`)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await readFile(path, "utf8")).toBe(`caller ${wins.indexOf(true)}`);
    expect(await t.createExclusive(path, "again")).toBe(false);
    await expect(t.createExclusive(join(dir, "no-such-folder", "claim"), "x")).rejects.toThrow();
  });

  test("a missing file rejects with code ENOENT; a missing folder lists as empty", async (ctx) => {
    const t = make(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-transport-"));
    await expect(t.readFile(join(dir, "nope"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await t.list(join(dir, "no-such-folder"))).toEqual([]);
    await expect(t.writeFile(join(dir, "no-such-folder", "f"), "x")).rejects.toMatchObject({ code: "ENOENT" });
  });

  test("list reads a folder through a symlink (~/runs to /scratch), with dotfiles and odd names; a program's own exit code 255 is its own", async (ctx) => {
    const t = make(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-transport-"));
    const names = ["a", ".hidden", "..two", "with space", "it's", "-dash", "*"];
    await mkdir(join(dir, "real"));
    for (const n of names) await writeFile(join(dir, "real", n), n);
    await symlink(join(dir, "real"), join(dir, "link"));
    expect((await t.list(join(dir, "link"))).sort()).toEqual([...names].sort());
    const r = await t.run("sh", ["-c", "exit 255"]);
    expect(r.exitCode).toBe(255);
    expect((await t.run("true", [])).exitCode).toBe(0);
  });

  test("mkdir makes parents, accepts an existing folder, and refuses a file in the way", async (ctx) => {
    const t = make(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-transport-"));
    await t.mkdir(join(dir, "a", "b", "c"));
    await t.mkdir(join(dir, "a", "b", "c"));
    await Promise.all([t.mkdir(join(dir, "p", "q", "1")), t.mkdir(join(dir, "p", "q", "2"))]);
    expect(await t.list(join(dir, "a", "b"))).toEqual(["c"]);
    expect((await t.list(join(dir, "p", "q"))).sort()).toEqual(["1", "2"]);
    await writeFile(join(dir, "file"), "x");
    await expect(t.mkdir(join(dir, "file"))).rejects.toMatchObject({ code: "EEXIST" });
    await expect(t.mkdir(join(dir, "file", "sub"))).rejects.toMatchObject({ code: expect.stringMatching(/^(EEXIST|ENOTDIR)$/) });
    expect(String(await readFile(join(dir, "file")))).toBe("x");
  });
});
