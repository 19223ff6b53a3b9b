// executor.check() and `slurmkit doctor`: the parsers (pure), then the real
// checks against the test cluster, locally and over the system's ssh.
import { execa } from "execa";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "vitest";
import { SlurmExecutor, type CheckLine, type CheckReport } from "../../src/index.js";
import { formatReport, parseConfig, parsePartitions, parseProbe } from "../../src/slurm/doctor.js";
import { needCluster } from "../helpers/cluster.js";
import { nodeRelease } from "../helpers/node-release.js";
import { needSsh } from "../helpers/ssh.js";
import { runsFolder } from "../helpers/runs-folder.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));
const executors: SlurmExecutor[] = [];
afterEach(() => {
  for (const e of executors.splice(0)) e.close();
});

const byName = (report: CheckReport) => new Map(report.lines.map((l) => [l.name, l] as [string, CheckLine]));

describe("the doctor's parsers", () => {
  test("scontrol show config, sinfo's partitions (lines of one partition added up) and the probe's report", () => {
    const config = parseConfig(
      "Configuration data as of 2026-12-03T10:00:00\nAccountingStorageType   = accounting_storage/slurmdbd\nMinJobAge               = 300 sec\nPreemptParameters       = send_user_signal\n",
    );
    expect(config.get("AccountingStorageType")).toBe("accounting_storage/slurmdbd");
    expect(config.get("MinJobAge")).toBe("300 sec");
    expect(parsePartitions("debug*|infinite|1|2|4000|gpu:2\ndebug*|infinite|1|2|4000|gpu:2\nshort|2:00|2|64|256000|(null)\n")).toEqual([
      { name: "debug", isDefault: true, maxTime: "infinite", nodes: 2, cpusPerNode: "2", memoryMb: "4000", gres: "gpu:2" },
      { name: "short", isDefault: false, maxTime: "2:00", nodes: 2, cpusPerNode: "64", memoryMb: "256000", gres: "(null)" },
    ]);
    const probe = parseProbe("node=n1\npython3=Python 3.11.7\npath=/a=b:/c\nnoise line\ndone=yes\n");
    expect(Object.fromEntries(probe)).toEqual({ node: "n1", python3: "Python 3.11.7", path: "/a=b:/c", done: "yes" });
  });

  test("a report as text: the status, the name, the detail, and the fix under what is not ok", () => {
    const text = formatReport({
      ok: false,
      lines: [
        { name: "accounting", status: "ok", detail: "on" },
        { name: "Node.js on the nodes", status: "fail", detail: "'node' not found on n1", fix: 'modules(["nodejs"])' },
      ],
    });
    expect(text).toBe(
      "OK    accounting            on\nFAIL  Node.js on the nodes  'node' not found on n1\n                            fix: modules([\"nodejs\"])\n\n1 failed, 0 warnings: fix the failures before the first sweep.\n",
    );
  });
});

describe("executor.check() on the test cluster", { timeout: 180_000 }, () => {
  test("what the cluster allows, then a probe job with the executor's setup that reports from a node", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    // The setup puts a Node 18 first on PATH, as `module load nodejs/18` would: the probe sees that one.
    const node18 = await nodeRelease("18.20.4");
    const e = new SlurmExecutor({ folder, time: 2, mem: "100M", nodeBinary: "node", setup: [`export PATH=${dirname(node18)}:$PATH`] });
    executors.push(e);
    const report = await e.check();
    const lines = byName(report);
    expect(report.ok).toBe(true);
    expect(lines.get("Slurm commands")!.detail).toMatch(/^sbatch, squeue, sacct, scontrol, sinfo; slurm(-wlm)? 22\.05/);
    expect(lines.get("accounting")).toMatchObject({ status: "ok", detail: "on (accounting_storage/slurmdbd)" });
    expect(lines.get("MaxArraySize")!.detail).toMatch(/^1001:/);
    expect(lines.get("preemption")).toMatchObject({ status: "ok" });
    expect(lines.get("preemption")!.detail).toContain("preempted jobs get the warning signal");
    expect(lines.get("partition debug*")!.detail).toMatch(/^MaxTime infinite, 2 nodes, 2 CPUs and \d+ MB each, GRES gpu:2 \(used\)$/);
    expect(lines.get("partition short")!.detail).toMatch(/^MaxTime 2:00,/);
    expect(lines.get("sbatch --test-only")!.detail).toMatch(/^Job \d+ to start at .* in partition debug$/);
    expect(lines.get("probe job")!.detail).toMatch(/^job \d+ ran on n[12] after \d+ s, with the executor's setup$/);
    expect(lines.get("run folder on the nodes")).toMatchObject({ status: "ok", detail: expect.stringContaining(`${folder} is there and writable`) });
    expect(lines.get("Node.js on the nodes")).toMatchObject({ status: "ok", detail: expect.stringMatching(new RegExp(`^v18\\.20\\.4 at ${node18} on n[12] `)) });
    expect(lines.get("node-local scratch")!.detail).toMatch(/^\$SLURM_TMPDIR=\/.*\/tmp\/n[12]\/\d+$/);
    expect(lines.get("module command")).toMatchObject({ status: "warn" });
  });

  test("a GPU asked for is a GPU the probe job sees (the test cluster's stand-in devices)", async (ctx) => {
    needCluster(ctx);
    const e = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "100M", gres: "gpu:1" });
    executors.push(e);
    const report = await e.check();
    expect(byName(report).get("GPUs")).toMatchObject({ status: "ok", detail: expect.stringMatching(/^the job sees \d$/) });
  });

  test("Node.js missing on the nodes is a failed line with its fix; a partition that does not exist fails before any job is sent", async (ctx) => {
    needCluster(ctx);
    const e = new SlurmExecutor({ folder: await runsFolder(), time: 2, nodeBinary: "/opt/no-such-node/bin/node" });
    executors.push(e);
    const report = await e.check();
    expect(report.ok).toBe(false);
    expect(byName(report).get("Node.js on the nodes")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/^'\/opt\/no-such-node\/bin\/node' does not exist or does not run on n[12]$/),
      fix: expect.stringContaining('modules(["nodejs"])'),
    });
    const nowhere = await e.check({ partition: "nope" });
    const lines = byName(nowhere);
    expect(lines.get("partition nope")).toMatchObject({ status: "fail", fix: expect.stringContaining("debug") });
    expect(lines.get("sbatch --test-only")).toMatchObject({ status: "fail", detail: expect.stringMatching(/invalid partition/i) });
    expect(lines.has("probe job")).toBe(false);
  });

  test("over the system's ssh, and the bin: slurmkit doctor exits 0 when nothing failed and 1 with the failing line and its fix", async (ctx) => {
    const info = needSsh(ctx);
    const folder = await runsFolder();
    const ssh = ["--ssh", "slurmkit-test", "--ssh-config", join(info.dir, "openssh-config")];
    const env = { CI: "", SLURM_CONF: "" };
    const ok = await execa("node", [bin, "doctor", "--folder", folder, "--json", ...ssh], { reject: false, env });
    expect(ok.exitCode).toBe(0);
    const report = JSON.parse(ok.stdout) as CheckReport;
    expect(byName(report).get("transport")!.detail).toBe("slurmkit-test, through the system's ssh");
    expect(byName(report).get("Node.js on the nodes")!.status).toBe("ok");
    const failing = await execa("node", [bin, "doctor", "--folder", folder, "--node-binary", "/opt/no-such-node/bin/node", ...ssh], { reject: false, env });
    expect(failing.exitCode).toBe(1);
    expect(failing.stdout).toMatch(/^FAIL {2}Node\.js on the nodes {5}'\/opt\/no-such-node\/bin\/node' does not exist or does not run on n[12]$/m);
    expect(failing.stdout).toMatch(/^ +fix: load it in the executor's setup \(modules\(\["nodejs"\]\)\), or set nodeBinary/m);
    expect(failing.stdout).toMatch(/1 failed, \d+ warnings?: fix the failures before the first sweep\.\n?$/);
    const bad = await execa("node", [bin, "doctor", "--folder", "relative", ...ssh], { reject: false, env });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("must be absolute");
  });
});
