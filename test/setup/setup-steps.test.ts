import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { atRuntime, command, JobEndedWithoutResultError, lines, LocalTransport, modules, SlurmExecutor, stageIn, stageOut, venvPerNode, type SetupStep } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { needCluster, slurm, waitFor } from "../helpers/cluster.js";
import { makeSetupFixtures, REPORT_PY, type SetupFixtures } from "../helpers/fixtures.js";
import { runsFolder } from "../helpers/runs-folder.js";

interface Report {
  node: string;
  rank: number;
  tmpdir: string;
  module: string | null;
  tinypkg: string;
  python: string;
  data: string;
}

const count = (text: string, what: RegExp) => text.split("\n").filter((l) => what.test(l)).length;
const reports = (stdout: string): Report[] =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as Report;
      } catch {
        throw new Error(`a report line is not JSON: ${JSON.stringify(l)}; whole stdout:\n${stdout}`);
      }
    });

let fx: SetupFixtures;
let out: string;

function steps(venv: SetupStep = venvPerNode({ path: atRuntime("$SLURM_TMPDIR/venv"), wheelhouse: fx.wheelhouse, packages: ["tinypkg==0.1.0"] })): SetupStep[] {
  return [
    modules(["testpython/1.0"], { use: [fx.modules] }),
    venv,
    stageIn({ from: fx.dataset, to: atRuntime("$SLURM_TMPDIR/data"), unzip: true }),
    stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: out }),
  ];
}

/** What every task must show: module loaded, package from its node's venv, data from its node's scratch. */
function expectNodeLocal(r: Report): void {
  expect(r.node).toMatch(/^n[12]$/);
  expect(r.tmpdir).toMatch(new RegExp(`/tmp/${r.node}/\\d+$`));
  expect(r.module).toBe("1");
  expect(r.python.startsWith(`${r.tmpdir}/venv`)).toBe(true);
  expect(r.tinypkg.startsWith(`${r.tmpdir}/venv/`)).toBe(true);
  expect(r.data).toBe("dataset v1");
}

beforeAll(async () => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
  if (process.getuid?.() === 0) {
    fx = await makeSetupFixtures();
    out = await mkdtemp(join(tmpdir(), "slurmkit-out-"));
  }
});

describe("setup steps on the real two-node cluster", () => {
  test("an array over both nodes: module, per-node venv, unzipped data, outputs staged back; built once per allocation", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, cpusPerTask: 2, setup: steps() });
    const jobs = await executor.mapArray([0, 1, 2, 3].map(() => command("python3", ["-c", REPORT_PY])));
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual(jobs.map(() => ({ exitCode: 0 })));
    const seen = await Promise.all(jobs.map(async (j) => reports(await j.stdout())));
    for (const r of seen.flat()) expectNodeLocal(r);
    expect(new Set(seen.flat().map((r) => r.node))).toEqual(new Set(["n1", "n2"]));
    for (const [i, job] of jobs.entries()) {
      const stderr = await job.stderr();
      // Each array element is its own allocation on one node: one build, one unzip.
      expect(count(stderr, /^slurmkit: building venv /), stderr).toBe(1);
      expect(count(stderr, /^slurmkit: staging in /), stderr).toBe(1);
      expect(await readFile(join(out, job.id, "out", "rank0.txt"), "utf8")).toBe(`output of rank 0 on ${seen[i]![0]!.node}\n`);
    }
  });

  test("one job with nodes: 2 and 2 ranks per node: built and unzipped once per node, never per task", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, nodes: 2, ntasksPerNode: 2, setup: steps() });
    const job = await executor.submit(command("python3", ["-c", REPORT_PY]));
    expect(await job.result()).toEqual({ exitCode: 0 });
    const seen = reports(await job.stdout());
    expect(seen.map((r) => r.rank).sort()).toEqual([0, 1, 2, 3]);
    for (const r of seen) expectNodeLocal(r);
    expect(seen.filter((r) => r.node === "n1")).toHaveLength(2);
    expect(seen.filter((r) => r.node === "n2")).toHaveLength(2);
    const stderr = await job.stderr();
    expect(count(stderr, /^slurmkit: building venv /)).toBe(2);
    expect(count(stderr, /^slurmkit: staging in /)).toBe(2);
    for (const node of ["n1", "n2"]) {
      const files = (await readdir(join(out, job.id, node, "out"))).sort();
      expect(files).toEqual(
        seen
          .filter((r) => r.node === node)
          .map((r) => `rank${r.rank}.txt`)
          .sort(),
      );
    }
  });

  test("venvPerNode with reuse: array elements on the same node build it once, under a lock", async (ctx) => {
    needCluster(ctx);
    const cache = await mkdtemp(join(tmpdir(), "slurmkit-venv-cache-"));
    const venv = venvPerNode({ path: atRuntime(`${cache}/$SLURMD_NODENAME`), wheelhouse: fx.wheelhouse, packages: ["tinypkg==0.1.0"], reuse: true });
    // All on n1, two at a time: without the lock, concurrent elements would both build.
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, nodelist: "n1", setup: [venv] });
    const script = "import tinypkg, os; print(tinypkg.WHERE); print(os.environ['SLURMD_NODENAME'])";
    const jobs = await executor.mapArray([0, 1, 2, 3, 4, 5].map(() => command("python3", ["-c", script])));
    await Promise.all(jobs.map((j) => j.result()));
    const nodes = new Set<string>();
    let builds = 0;
    let reuses = 0;
    for (const job of jobs) {
      const [where, node] = (await job.stdout()).trim().split("\n");
      expect(where!.startsWith(`${cache}/${node}/`)).toBe(true);
      nodes.add(node!);
      const stderr = await job.stderr();
      builds += count(stderr, /^slurmkit: building venv /);
      reuses += count(stderr, /^slurmkit: reusing venv /);
    }
    expect(nodes).toEqual(new Set(["n1"]));
    expect(builds).toBe(1);
    expect(reuses).toBe(jobs.length - 1);
  });

  test("on cancel, stage-out waits for the task to stop, so what it writes on SIGTERM is staged too", async (ctx) => {
    needCluster(ctx);
    const task = ['mkdir -p "$SLURM_TMPDIR/out"', "trap 'sleep 1; echo checkpoint > \"$SLURM_TMPDIR/out/checkpoint.txt\"; exit 0' TERM", "echo started", "sleep 60 & wait $!"].join("\n");
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, setup: [stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: out })] });
    const job = await executor.submit(command("bash", ["-c", task]));
    ctx.onTestFinished(async () => void (await slurm("scancel", [job.id])));
    await waitFor("the task to start", async () => ((await job.stdout()).includes("started") ? true : undefined));
    await job.cancel();
    expect(await job.wait()).toBe("CANCELLED");
    const file = join(out, job.id, "out", "checkpoint.txt");
    expect(await waitFor(file, async () => (await readFile(file, "utf8").catch(() => undefined)) ?? undefined, 30_000)).toBe("checkpoint\n");
  });

  test("a future settles only after stage-out has copied everything back", async (ctx) => {
    needCluster(ctx);
    const w = slurmWatcher(new LocalTransport());
    const saved = w.intervals;
    ctx.onTestFinished(() => w.setIntervals(saved));
    // Poll every 200 ms: copying 3000 files takes longer than that, so a future
    // that settled on the result file alone would see a partial copy.
    w.setIntervals({ minMs: 200, maxMs: 200 });
    const write = "import os\nd = os.path.join(os.environ['SLURM_TMPDIR'], 'out')\nos.makedirs(d)\nfor i in range(3000):\n    open(os.path.join(d, 'f%d' % i), 'wb').write(os.urandom(65536))";
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, setup: [stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: out })] });
    const [job] = await executor.mapArray([command("python3", ["-c", write])]);
    expect(await job!.result()).toEqual({ exitCode: 0 });
    expect(await readdir(join(out, job!.id, "out"))).toHaveLength(3000);
    expect(await readdir(dirname(job!.paths.result))).toContain("0.exited");
  });

  test("USR1 sent to the batch shell (as --signal=B:USR1 does) reaches the task; the job goes on and completes", async (ctx) => {
    needCluster(ctx);
    const task = [
      'mkdir -p "$SLURM_TMPDIR/out"',
      "got=0",
      "trap 'got=1; echo usr1 > \"$SLURM_TMPDIR/out/usr1.txt\"' USR1",
      "echo started",
      'for _ in $(seq 100); do [ "$got" = 1 ] && exit 0; sleep 0.2 & wait $!; done',
      "exit 9",
    ].join("\n");
    // A setup file's `set -euo pipefail` (common in real ones) must not stop the forwarding.
    const setup = [lines("set -euo pipefail"), stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: out })];
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, setup });
    const job = await executor.submit(command("bash", ["-c", task]));
    ctx.onTestFinished(async () => void (await slurm("scancel", [job.id])));
    await waitFor("the task to start", async () => ((await job.stdout()).includes("started") ? true : undefined));
    await slurm("scancel", ["--batch", "--signal=USR1", job.id]);
    expect(await job.result()).toEqual({ exitCode: 0 });
    expect(await readFile(join(out, job.id, "out", "usr1.txt"), "utf8")).toBe("usr1\n");
  });

  test("stage-out runs when the task fails and when the job is cancelled, into each job's own folder", async (ctx) => {
    needCluster(ctx);
    const write = 'mkdir -p "$SLURM_TMPDIR/out" && echo "$1" > "$SLURM_TMPDIR/out/partial.txt" && echo written';
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 10, setup: [stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: out })] });
    const [failing, cancelled] = await executor.mapArray([command("sh", ["-c", `${write}; exit 4`, "sh", "failed"]), command("sh", ["-c", `${write}; sleep 60`, "sh", "cancelled"])]);
    ctx.onTestFinished(async () => void (await slurm("scancel", [failing!.id.split("_")[0]!])));
    expect(((await failing!.result().catch((e: unknown) => e)) as { exitCode?: number }).exitCode).toBe(4);
    await waitFor("the second task to write its output", async () => ((await cancelled!.stdout()).includes("written") ? true : undefined));
    await cancelled!.cancel();
    expect(await cancelled!.wait()).toBe("CANCELLED");
    for (const [job, text] of [
      [failing!, "failed"],
      [cancelled!, "cancelled"],
    ] as const) {
      const file = join(out, job.id, "out", "partial.txt");
      const content = await waitFor(`${file}`, async () => (await readFile(file, "utf8").catch(() => undefined)) ?? undefined, 30_000);
      expect(content).toBe(`${text}\n`);
    }
  });

  test("a module that does not exist fails the job with a clear message in its log", async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 5, setup: [modules(["nosuchmodule/9"], { use: [fx.modules] })] });
    const job = await executor.submit(command("true"));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("FAILED");
    expect(error.logTail).toMatch(/slurmkit: module load nosuchmodule\/9 failed on n[12]/);
  });
});
