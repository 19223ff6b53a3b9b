import { execa } from "execa";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { needSsh } from "../helpers/ssh.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

describe("examples/from-laptop.ts", () => {
  test("submits through the system's ssh to an alias (the test sshd) and prints the results; without settings it says what to set", async (ctx) => {
    const info = needSsh(ctx);
    const folder = join(await mkdtemp(join(tmpdir(), "slurmkit-laptop-")), "runs");
    const env = {
      SLURMKIT_SSH: "slurmkit-test",
      SLURMKIT_SSH_CONFIG: join(info.dir, "openssh-config"),
      SLURMKIT_FOLDER: folder,
      SLURM_CONF: "", // only the SSH session may reach Slurm
    };
    const { stdout } = await execa("npx", ["tsx", "examples/from-laptop.ts"], { cwd: root, env });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toBe(`Submitting over SSH to slurmkit-test; run folder ${folder} on the cluster`);
    expect(lines.slice(1, 4).map((l) => l.replace(/^\d+_\d: /, "").replace(/ \(on n[12]\)$/, ""))).toEqual(["1² = 1", "2² = 4", "3² = 9"]);
    expect(lines[4]).toMatch(/^\d+: hostname printed \S+$/);

    const bare = await execa("npx", ["tsx", "examples/from-laptop.ts"], { cwd: root, reject: false, env: { SLURMKIT_SSH: "" } });
    expect(bare.exitCode).toBe(2);
    expect(bare.stderr).toContain("Set SLURMKIT_SSH to a Host alias from ~/.ssh/config or user@host[:port]");
  });
});
