// SlurmExecutor({ ssh: "alias" }): the system's ssh with a user's own ssh_config,
// against the test servers in front of the test cluster (test/ssh/sshd.sh).
// The client's SLURM_CONF is removed while these run: only an SSH session
// (which gets it from sshd's SetEnv) can reach Slurm.
import { execa } from "execa";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { command, loadJobs, ParameterError, SlurmExecutor, type SshTarget } from "../../src/index.js";
import { square, whereAmI } from "../fixtures/tasks.js";
import { acceptedLogins, answerPrompts, countingSsh, dropConnections, needSsh } from "../helpers/ssh.js";
import { runsFolder } from "../helpers/runs-folder.js";

const executors: SlurmExecutor[] = [];
let savedConf: string | undefined;
beforeEach(() => {
  savedConf = process.env.SLURM_CONF;
  delete process.env.SLURM_CONF;
});
afterEach(() => {
  for (const e of executors.splice(0)) e.close();
  if (savedConf !== undefined) process.env.SLURM_CONF = savedConf;
});

async function executor(ssh: SshTarget): Promise<SlurmExecutor> {
  const e = new SlurmExecutor({ folder: await runsFolder(), time: 5, mem: "100M", ssh });
  e.watcher.setIntervals({ minMs: 500, maxMs: 2000 });
  executors.push(e);
  return e;
}

describe("SlurmExecutor over the system's ssh", { timeout: 180_000 }, () => {
  test("a whole sweep over the user's own ControlMaster, opened beforehand: no new login at all", async (ctx) => {
    const info = needSsh(ctx);
    const sockets = await mkdtemp(join(tmpdir(), "slurmkit-cm-"));
    const config = join(sockets, "ssh_config");
    const shared = await readFile(join(info.dir, "openssh-config"), "utf8");
    // The Alliance's advice, in the user's own config: ControlMaster auto and ControlPersist.
    await writeFile(config, `Host slurmkit-test\n  ControlMaster auto\n  ControlPath ${sockets}/%r@%h:%p\n  ControlPersist 120\n\n${shared}`);
    await execa("ssh", ["-F", config, "-fN", "slurmkit-test"]);
    try {
      const before = await acceptedLogins(info, "sshd");
      const lines: string[] = [];
      const e = await executor({ destination: "slurmkit-test", configFile: config, log: (l) => lines.push(l) });
      const jobs = await e.mapArray([1, 2, 3, 4].map((x) => square.with(x)));
      expect((await Promise.all(jobs.map((j) => j.result()))).map((r) => r.square)).toEqual([1, 4, 9, 16]);
      expect(await jobs[0]!.stdout()).toBe("");
      const reloaded = await loadJobs(e.folder, { ssh: { destination: "slurmkit-test", configFile: config, log: (l) => lines.push(l) } });
      expect(await Promise.all(reloaded.map((j) => j.wait()))).toEqual(["COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]);
      expect(await acceptedLogins(info, "sshd")).toBe(before);
      expect(lines).toEqual([]);
    } finally {
      await execa("ssh", ["-F", config, "-O", "exit", "slurmkit-test"], { reject: false });
    }
  });

  test("a sweep behind multifactor authentication: one passcode; the connection killed mid-sweep costs exactly one more, and every result arrives", async (ctx) => {
    const info = needSsh(ctx);
    const askpass = await answerPrompts(info);
    try {
      const before = await acceptedLogins(info, "mfa");
      const lines: string[] = [];
      const e = await executor({ destination: "slurmkit-mfa", configFile: join(info.dir, "openssh-config"), log: (l) => lines.push(l) });
      const jobs = await e.mapArray([whereAmI.with(6000), whereAmI.with(6000), whereAmI.with(6000)]);
      const results = Promise.all(jobs.map((j) => j.result()));
      expect(await askpass.prompts()).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 2000));
      await dropConnections(info, "mfa");
      expect((await results).map((r) => typeof r.node)).toEqual(["string", "string", "string"]);
      expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);
      expect(await askpass.prompts()).toHaveLength(2);
      expect(await acceptedLogins(info, "mfa")).toBe(before + 2);
      expect(lines.filter((l) => /reconnecting/.test(l))).toHaveLength(1);
      expect(lines).toHaveLength(2);
    } finally {
      askpass.restore();
    }
  });

  test("through a bastion (ProxyJump), from a destination string alone once ssh knows the alias", async (ctx) => {
    const info = needSsh(ctx);
    const e = await executor({ destination: "slurmkit-via-bastion", configFile: join(info.dir, "openssh-config"), interactive: false, log: () => undefined });
    const [job] = await e.mapArray([square.with(7)]);
    expect((await job!.result()).square).toBe(49);
  });

  test("40 tasks cancelled at once settle CANCELLED in a few commands, not several reads each", async (ctx) => {
    const info = needSsh(ctx);
    const { ssh, runs } = await countingSsh();
    const e = await executor({ destination: "slurmkit-test", configFile: join(info.dir, "openssh-config"), ssh, log: () => undefined });
    const jobs = await e.mapArray(Array.from({ length: 40 }, () => command("sleep", ["120"])));
    await e.watcher.pollNow();
    const before = await runs();
    await execa("scancel", [jobs[0]!.id.split("_")[0]!], { env: { SLURM_CONF: savedConf } });
    const errors = await Promise.all(
      jobs.map((j) =>
        j.result().then(
          () => undefined,
          (error: unknown) => error as Error,
        ),
      ),
    );
    expect(jobs.map((j) => j.state)).toEqual(Array(40).fill("CANCELLED"));
    expect(errors.every((error) => error instanceof Error && /CANCELLED/.test(error.message))).toBe(true);
    // Each ended job reads its result, state and log files on two polls: one command per job and read would be 160 or more.
    expect((await runs()) - before).toBeLessThan(40);
  });

  test("a bad destination is a ParameterError before anything runs", async () => {
    const folder = await runsFolder();
    for (const ssh of ["-oProxyCommand=touch /tmp/pwned", "a b", "", "user@host:99999"]) {
      expect(() => new SlurmExecutor({ folder: "/tmp/x", ssh })).toThrow(ParameterError);
    }
    expect(() => new SlurmExecutor({ folder, ssh: 42 as unknown as string })).toThrow(/Expected a destination for the system's ssh/);
  });
});
