import { execa } from "execa";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { masterPort } from "../../src/index.js";
import { needCluster } from "../helpers/cluster.js";

const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const launch = fileURLToPath(new URL("../../examples/ezpz/launch.ts", import.meta.url));

describe("examples/ezpz (the README's command)", () => {
  test("a venv on each node, one rank per GPU on two nodes, and the ranks meet at MASTER_ADDR:MASTER_PORT", async (ctx) => {
    needCluster(ctx);
    const runs = await mkdtemp(join(tmpdir(), "slurmkit-ezpz-"));
    const { stdout } = await execa(tsx, [launch, runs], { env: { SLURM_CONF: process.env.SLURM_CONF } });
    const jobId = /^Launched (\d+); run folder /m.exec(stdout)?.[1];
    expect(jobId, stdout).toBeDefined();
    const lines = stdout.split("\n").filter((l) => l.startsWith("rank "));
    expect(lines, stdout).toHaveLength(4);
    const at = `127.0.0.1:${masterPort(jobId!)}`;
    for (const [r, line] of lines.entries()) {
      const node = r < 2 ? "n1" : "n2";
      // Each rank ran the Python of the venv built on its own node, in that node's scratch.
      expect(line).toMatch(new RegExp(`^rank ${r}/4 local ${r % 2} on ${node} gpus 0,1 python /\\S+/tmp/${node}/${jobId}/ezpz-venv: `));
    }
    expect(lines[0]).toContain(`met 3 ranks at ${at}: rank 1/4`);
    for (const line of lines.slice(1)) expect(line).toMatch(new RegExp(`: welcome to 4 ranks at ${at.replace(/\./g, "\\.")}$`));
  });
});
