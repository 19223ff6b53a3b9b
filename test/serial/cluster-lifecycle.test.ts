import { execa } from "execa";
import { readFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, test } from "vitest";
import { clusterScript, needCluster } from "../helpers/cluster.js";
import { alive } from "../helpers/controller.js";

async function daemonPids(runDir: string): Promise<Map<string, number>> {
  const pids = new Map<string, number>();
  for (const name of await readdir(runDir)) {
    if (!name.endsWith(".pid")) continue;
    const text = await readFile(join(runDir, name), "utf8").catch(() => "");
    if (text.trim()) pids.set(name, Number(text.trim()));
  }
  return pids;
}

describe("cluster.sh lifecycle", () => {
  test("down stops every daemon it started; up brings the cluster back; a second up finds it up", async (ctx) => {
    const info = needCluster(ctx);
    const runDir = join(dirname(dirname(info.slurmConf)), "run");
    const before = await daemonPids(runDir);
    for (const name of ["mysqld.pid", "slurmdbd.pid", "slurmctld.pid", "slurmd-n1.pid", "slurmd-n2.pid"]) {
      expect(before.has(name), name).toBe(true);
    }
    for (const pid of before.values()) expect(alive(pid)).toBe(true);

    const down = await execa("bash", [clusterScript, "down"]);
    expect(down.stderr).toMatch(/down \(\d+ daemons stopped\)/);
    for (const [name, pid] of before) expect(alive(pid), `${name} (pid ${pid}) still running`).toBe(false);
    const status = await execa("bash", [clusterScript, "status"], { reject: false });
    expect(status.exitCode).not.toBe(0);

    await execa("bash", [clusterScript, "up"]);
    const again = await execa("bash", [clusterScript, "up"]);
    expect(again.stderr).toContain("already up");
    expect((await execa("bash", [clusterScript, "status"])).exitCode).toBe(0);
  });
});
