// npm run bench: raw Slurm vs slurmkit (one task per element) vs slurmkit packed,
// on the test cluster, in one run. Prints seconds, ratios, client time and
// memory, and scheduler calls. The default run takes about 6 minutes.
// BENCH_FULL=1 adds the 2,000-task rows (a raw 2,000-element array takes 4.5
// to 8 minutes alone, see the README on the controller's slow state; and one
// task per element at 2,000) and bash's raw floor at 200, 100,000 packed
// tasks (20,000 without it), the command-task rows and the tail one per
// element (about 45 minutes). BENCH_SIZES sets the function-task sizes,
// BENCH_PACKED the packed run's, BENCH_TAIL the tail's (200), BENCH_MILLION
// the futures'; BENCH_CONTAINERS the container-start run's (40, 0 skips it); BENCH_NODE names a Node 22.1 or newer for the compile cache
// figure.
// Every task asks for a small, realistic mem of 100 MiB, so that slurmkit's own
// processes cannot hide behind a generous request.
import { execa } from "execa";
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { command, LocalTransport, OpenSshTransport, SlurmExecutor, type SchedulerCallCounts, type Transport } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { parseRecords, StreamWriter } from "../../src/protocol/record-stream.js";
import { decodeTaskRecord, encodeTaskRecord, withUsage } from "../../src/protocol/task-stream.js";
import { OwnCpu } from "../../runner/usage.js";
import { Claims } from "../../runner/claims.js";
import { ownCgroupDir, sampleTrees } from "../../runner/memory.js";
import { square } from "../fixtures/tasks.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
await execa("bash", [join(root, "test/cluster/cluster.sh"), "up"], { stdio: "inherit" });
// From the script, as SLURMKIT_CLUSTER_DIR may put the cluster elsewhere.
process.env.SLURM_CONF = (await execa("bash", [join(root, "test/cluster/cluster.sh"), "env"])).stdout.replace(/^export SLURM_CONF=/, "").trim();
slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });

const full = process.env.BENCH_FULL === "1";
const sizes = (process.env.BENCH_SIZES ?? (full ? "200,2000" : "200")).split(",").map(Number);
const began = performance.now();
const log = (line: string) => process.stderr.write(`bench: [${((performance.now() - began) / 1000).toFixed(0)} s] ${line}\n`);
/** One task's memory in every run: small and realistic. */
const MEM = "100M";

interface Row {
  workload: string;
  how: string;
  seconds: number;
  sbatch: number;
  squeue: number;
  sacct: number;
}
const rows: Row[] = [];

/**
 * Raw Slurm: arrays whose elements each write one file; done when all files
 * exist. "shell": bash writes it (the least an element can do); "node": `node
 * -e` writes it (the floor for any runner in Node).
 */
async function raw(n: number, kind: "shell" | "node" = "shell"): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-bench-raw-"));
  const out = join(dir, "out");
  await mkdir(out);
  const limit = 1001;
  const t0 = performance.now();
  let sbatch = 0;
  const ids: string[] = [];
  for (let first = 0; first < n; first += limit) {
    const count = Math.min(limit, n - first);
    const script = join(dir, `raw-${first}.sbatch`);
    await writeFile(
      script,
      `#!/bin/bash\n#SBATCH --array=0-${count - 1}\n#SBATCH --time=5\n#SBATCH --mem=${MEM}\n#SBATCH --output=/dev/null\n${
        kind === "node" ? `${process.execPath} -e 'require("fs").writeFileSync(process.argv[1], "done")'` : "echo done >"
      } ${out}/$(( SLURM_ARRAY_TASK_ID + ${first} ))\n`,
    );
    ids.push((await execa("sbatch", ["--parsable", script])).stdout.trim());
    sbatch++;
  }
  // Until every file exists, or the arrays have left the queue (an element that failed on the node never writes its file).
  for (let polls = 0; (await readdir(out)).length < n; polls++) {
    if (polls % 10 === 9 && (await execa("squeue", ["-h", "-j", ids.join(",")])).stdout.trim() === "") break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const missing = n - (await readdir(out)).length;
  if (missing > 0) log(`raw: ${missing} of ${n} elements wrote no file (they failed on the node; see sacct)`);
  const how = kind === "node" ? "raw sbatch array, node -e" : "raw sbatch array";
  return { workload: "", how: missing > 0 ? `${how} (${missing} elements failed)` : how, seconds: (performance.now() - t0) / 1000, sbatch, squeue: 0, sacct: 0 };
}

async function viaSlurmkit(
  how: string,
  tasks: Parameters<SlurmExecutor["mapArray"]>[0],
  options: Parameters<SlurmExecutor["mapArray"]>[1],
  bundle = true,
  mem?: string,
): Promise<Row & { folder: string }> {
  // Importing TypeScript on the node (bundle: false) loads tsx and esbuild: about 100 MiB before the task, so that row asks for 200.
  const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-")), time: 5, mem: mem ?? (bundle ? MEM : "200M"), bundle });
  await executor.limits();
  const before: SchedulerCallCounts = { ...executor.watcher.stats().calls };
  const t0 = performance.now();
  const jobs = await executor.mapArray(tasks, options);
  await Promise.all(jobs.map((j) => j.result()));
  const seconds = (performance.now() - t0) / 1000;
  const c = executor.watcher.stats().calls;
  return { workload: "", how, seconds, sbatch: c.sbatch - before.sbatch, squeue: c.squeue - before.squeue, sacct: c.sacct - before.sacct, folder: executor.folder };
}

/**
 * Mean runner time per packed task, module import left out: per worker, the
 * time from its first task's end to its last task's end, over the tasks after
 * the first (each of those spans reading its spec, running, and its records).
 * Results come from the workers' record streams.
 */
async function perTaskMs(folder: string): Promise<number> {
  const [submission] = await readdir(folder);
  const dir = join(folder, submission!, "streams");
  const ends = new Map<string, number[]>();
  for (const f of (await readdir(dir)).filter((f) => f.endsWith(".rec"))) {
    for (const payload of parseRecords(await readFile(join(dir, f))).records) {
      const r = decodeTaskRecord(payload, f);
      if ("result" in r) ends.set(r.result.jobId, [...(ends.get(r.result.jobId) ?? []), r.result.endedAt]);
    }
  }
  let busy = 0;
  let tasks = 0;
  for (const e of ends.values()) {
    if (e.length < 2) continue;
    busy += Math.max(...e) - Math.min(...e);
    tasks += e.length - 1;
  }
  return tasks === 0 ? NaN : busy / tasks;
}

/** Every file under a submission folder (the run folder's file count, as a quota counts it). */
async function filesIn(folder: string): Promise<number> {
  const [submission] = await readdir(folder);
  const entries = await readdir(join(folder, submission!), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).length;
}

/**
 * What the packed run's worker elements asked Slurm for, and the most one of
 * them held (sacct's MaxRSS of its batch step: the sum of its processes'
 * resident sets, as jobacct_gather/linux counts them).
 */
async function elementPeak(folder: string): Promise<{ askedMb: number; peakMb: number; workers: number }> {
  const [submission] = await readdir(folder);
  const manifest = JSON.parse(await readFile(join(folder, submission!, "manifest.json"), "utf8")) as { workers: { memMb: number }; arrays: Array<{ jobId: string }> };
  const ids = manifest.arrays.map((a) => a.jobId).join(",");
  // Accounting writes a step's figures a moment after it ends.
  let peaks: number[] = [];
  for (let i = 0; i < 20 && peaks.length === 0; i++) {
    const { stdout } = await execa("sacct", ["-j", ids, "-n", "-P", "--format=JobID,MaxRSS"]);
    peaks = stdout
      .split("\n")
      .filter((l) => l.includes(".batch|") && /\|\d/.test(l))
      .map((l) => Number(/\|(\d+)K/.exec(l)?.[1] ?? NaN) / 1024)
      .filter(Number.isFinite);
    if (peaks.length === 0) await new Promise((r) => setTimeout(r, 1000));
  }
  return { askedMb: manifest.workers.memMb, peakMb: Math.max(...peaks), workers: peaks.length };
}
const workerMemory: Array<{ n: number; askedMb: number; peakMb: number; workers: number }> = [];

let largest: { n: number; folder: string } | undefined;
for (const n of sizes) {
  const work = `${n} function tasks`;
  // Packed first: every run then starts on a controller without the finished jobs of another (Slurm keeps them MinJobAge, 300 s).
  log(`${work}: slurmkit packed`);
  const packed = await viaSlurmkit(
    'slurmkit, workers ("auto")',
    Array.from({ length: n }, (_, i) => square.with(i)),
    { workers: "auto" },
  );
  rows.push({
    ...packed,
    workload: work,
    how: `${packed.how}, ${(await perTaskMs(packed.folder)).toFixed(2)} ms/task in the runner, ${(await filesIn(packed.folder)).toLocaleString("en")} files in the run folder`,
  });
  // One per element is compared with the floor for a Node runner; packed tasks with the least a raw element can do.
  const perElement = n <= 200 || full;
  if (perElement) {
    log(`${work}: raw, node -e`);
    rows.push({ ...(await raw(n, "node")), workload: work });
  }
  if (!perElement || full) {
    log(`${work}: raw`);
    rows.push({ ...(await raw(n)), workload: work });
  }
  if (perElement) {
    if (full) {
      log(`${work}: slurmkit, one per element, imported by path (bundle: false)`);
      rows.push({
        ...(await viaSlurmkit(
          "slurmkit, 1 per element, bundle: false (tsx on the node)",
          Array.from({ length: n }, (_, i) => square.with(i)),
          {},
          false,
        )),
        workload: work,
      });
    }
    log(`${work}: slurmkit, one per element`);
    rows.push({
      ...(await viaSlurmkit(
        "slurmkit, 1 per element (code snapshots)",
        Array.from({ length: n }, (_, i) => square.with(i)),
        {},
      )),
      workload: work,
    });
  }
  largest = { n, folder: packed.folder };
  workerMemory.push({ n, ...(await elementPeak(packed.folder)) });
}

// Many packed tasks really run, the client in a process of its own (packed.ts), then `slurmkit status` on that folder.
const many = { n: Number(process.env.BENCH_PACKED ?? (full ? "100000" : "20000")), seconds: NaN, runnerMsPerTask: NaN, files: 0, peakRssMb: NaN, peakHeapMb: NaN, statusMs: NaN, folder: "" };
if (many.n > 0) {
  log(`${many.n.toLocaleString("en")} packed function tasks`);
  const r = await execa(process.execPath, ["--import", "tsx", join(root, "test/bench/packed.ts"), String(many.n)], { cwd: root });
  Object.assign(many, JSON.parse(r.stdout.trim().split("\n").at(-1)!));
}

// The HTML report of the packed run: the file `slurmkit report` writes, and how long headless Chromium takes to draw it.
const reported = { n: many.n, ms: NaN, bytes: NaN, renderMs: NaN, bars: NaN };
if (many.n > 0 && many.folder) {
  await execa("npm", ["run", "build"], { cwd: root });
  const out = join(await mkdtemp(join(tmpdir(), "slurmkit-bench-report-")), "report.html");
  const t0 = performance.now();
  const r = await execa(process.execPath, [join(root, "dist/src/cli.js"), "report", many.folder, "-o", out], { reject: false });
  if (r.exitCode !== 0) throw new Error(`bench: slurmkit report exited ${r.exitCode}: ${r.stderr}`);
  reported.ms = performance.now() - t0;
  reported.bytes = (await stat(out)).size;
  const browser = await execa("bash", [join(root, "test/browser/chromium.sh"), "path"], { reject: false });
  if (browser.exitCode === 0) {
    const { chromium } = await import("playwright-core");
    const b = await chromium.launch({ executablePath: browser.stdout.trim(), args: ["--no-sandbox"] });
    const page = await b.newPage({ viewport: { width: 1400, height: 1000 } });
    const t1 = performance.now();
    await page.goto(pathToFileURL(out).href);
    await page.waitForFunction("window.slurmkitReport !== undefined && window.slurmkitReport.ready === true", undefined, { timeout: 120_000 });
    reported.renderMs = performance.now() - t1;
    reported.bars = (await page.evaluate("window.slurmkitReport.bars")) as number;
    await b.close();
  }
}

// The command line on the largest packed run folder, as a user runs it from the shell (a fresh process each time).
const cliMs: Array<{ command: string; ms: number }> = [];
if (largest) {
  await execa("npm", ["run", "build"], { cwd: root });
  const bin = join(root, "dist/src/cli.js");
  for (const args of [["status"], ["status", "--tasks"], ["results"]]) {
    const t0 = performance.now();
    const r = await execa(process.execPath, [bin, args[0]!, largest.folder, ...args.slice(1)], { reject: false });
    if (r.exitCode !== 0) throw new Error(`bench: slurmkit ${args.join(" ")} exited ${r.exitCode}: ${r.stderr}`);
    cliMs.push({ command: `slurmkit ${args.join(" ")}`, ms: performance.now() - t0 });
  }
}
if (many.n > 0) {
  if (!largest) await execa("npm", ["run", "build"], { cwd: root });
  const t0 = performance.now();
  const r = await execa(process.execPath, [join(root, "dist/src/cli.js"), "status", many.folder], { reject: false });
  if (r.exitCode !== 0) throw new Error(`bench: slurmkit status on ${many.n} tasks exited ${r.exitCode}: ${r.stderr}`);
  many.statusMs = performance.now() - t0;
}

// Long-tailed durations: lognormal around 0.5 s, clamped to 0.1–5 s, the same
// seeded list for every run. Workers that claim tasks against one task per
// element and against fixed chunks (one single-worker submission per chunk,
// as many chunks as workers), each measured as the makespan over (sum / slots).
const tail: Array<{ how: string; seconds: number; ideal: number }> = [];
{
  const n = Number(process.env.BENCH_TAIL ?? "200");
  let seed = 20261121;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const seconds = Array.from({ length: n }, () => {
    const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.min(5, Math.max(0.1, 0.5 * Math.exp(normal)));
  });
  const sleeps = seconds.map((s) => command("sleep", [s.toFixed(2)]));
  const slots = 4; // the test cluster's CPUs, each a task at once
  const ideal = seconds.reduce((a, b) => a + b, 0) / slots;
  const work = `${n} long-tailed tasks`;
  if (full) {
    log(`${work}: slurmkit, one per element`);
    tail.push({ how: "1 per element", seconds: (await viaSlurmkit("", sleeps, {})).seconds, ideal });
  }
  log(`${work}: fixed chunks`);
  {
    const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-")), time: 5, mem: MEM });
    await executor.limits();
    const t0 = performance.now();
    const size = Math.ceil(n / slots);
    const chunks = await Promise.all(Array.from({ length: slots }, (_, c) => executor.mapArray(sleeps.slice(c * size, (c + 1) * size), { workers: 1 })));
    await Promise.all(chunks.flat().map((j) => j.result()));
    tail.push({ how: `${slots} fixed chunks`, seconds: (performance.now() - t0) / 1000, ideal });
  }
  log(`${work}: workers`);
  tail.push({ how: `${slots} workers that claim tasks`, seconds: (await viaSlurmkit("", sleeps, { workers: slots })).seconds, ideal });
}
if (full) {
  const n = Number(process.env.BENCH_COMMANDS ?? "200");
  const work = `${n} command tasks`;
  log(`${work}: raw`);
  rows.push({ ...(await raw(n)), workload: work });
  log(`${work}: slurmkit`);
  const tasks = Array.from({ length: n }, (_, i) => command("sh", ["-c", 'echo "$1" > /dev/null', "sh", String(i)]));
  rows.push({ ...(await viaSlurmkit("slurmkit, 1 per element", tasks, {})), workload: work });
  rows.push({ ...(await viaSlurmkit('slurmkit, workers ("auto")', tasks, { workers: "auto" })), workload: work });
}

// A container start per packed task: trivial commands in 2 slots of one worker, without and with podman (the test
// cluster's busybox image), and what podman's client holds while its container runs (it counts in the task's memory).
const boxes = { n: Number(process.env.BENCH_CONTAINERS ?? "40"), plainMs: NaN, podmanMs: NaN, clientMb: NaN, conmonMb: NaN };
if (boxes.n > 0) {
  const podman = (await execa("bash", [join(root, "test/cluster/cluster.sh"), "podman"])).stdout;
  const vars = Object.fromEntries([...podman.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  process.env.CONTAINERS_CONF = vars.CONTAINERS_CONF;
  const image = vars.PODMAN_IMAGE!;
  log(`${boxes.n} trivial commands, packed in 2 slots: without a container`);
  // podman's client (36 MiB) and conmon count in a container task's memory: both rows ask for 200 MiB.
  const trivial = Array.from({ length: boxes.n }, () => command("true"));
  boxes.plainMs = await perTaskMs((await viaSlurmkit("", trivial, { workers: 1, slots: 2 }, true, "200M")).folder);
  log(`${boxes.n} trivial commands, packed in 2 slots: each in a podman container`);
  const boxed = Array.from({ length: boxes.n }, () => command("true", [], { container: { runtime: "podman", image } }));
  boxes.podmanMs = await perTaskMs((await viaSlurmkit("", boxed, { workers: 1, slots: 2 }, true, "200M")).folder);
  const client = execa("podman", ["run", "--rm", "--pid=host", "--conmon-pidfile", join(tmpdir(), "slurmkit-bench-conmon.pid"), image, "sleep", "2"], { reject: false });
  await new Promise((r) => setTimeout(r, 1200));
  const rssMb = async (pid: string | number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
  boxes.clientMb = await rssMb(client.pid!);
  boxes.conmonMb = await rssMb((await readFile(join(tmpdir(), "slurmkit-bench-conmon.pid"), "utf8")).trim());
  await client;
}

log("code snapshots and an element's start");
// Code snapshots: bundling the task module (it imports slurmkit) and the runner, in a fresh process as a
// first submission would; then the start of one element on this machine, from node's start to the task's
// result, with the snapshots against the installed runner importing the TypeScript module through tsx.
const snapshots = { bundleMs: NaN, runnerMs: NaN, startBundled: NaN, startTsx: NaN };
const start = { node: NaN, runnerLoad: NaN, taskLoad: NaN, rest: NaN, runnerKb: NaN, taskKb: NaN, lean: NaN, leanKb: NaN, cacheNode: "", uncached: NaN, cached: NaN };
{
  const script = `import { bundleModule, bundleRunner } from ${JSON.stringify(join(root, "src/code/bundle.ts"))};
    import { runnerPath } from ${JSON.stringify(join(root, "src/protocol/runner-path.ts"))};
    let t = performance.now(); await bundleModule(${JSON.stringify(new URL("../fixtures/tasks.ts", import.meta.url).href)});
    const bundleMs = performance.now() - t; t = performance.now(); await bundleRunner(runnerPath("slurm"));
    console.log(JSON.stringify({ bundleMs, runnerMs: performance.now() - t }));`;
  const file = join(await mkdtemp(join(tmpdir(), "slurmkit-bench-bundle-")), "bundle.mts");
  await writeFile(file, script);
  Object.assign(snapshots, JSON.parse((await execa(join(root, "node_modules/.bin/tsx"), [file])).stdout));
  /** The median of 5 timed runs of `node args` (after one run that warms the file cache). */
  const median5 = async (node: string, args: string[], env: Record<string, string> = {}, exitCode = 0): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const r = await execa(node, args, { env, reject: false });
      if (i > 0) times.push(performance.now() - t0);
      if (r.exitCode !== exitCode) throw new Error(`bench: ${node} ${args.join(" ")} exited ${r.exitCode}, not ${exitCode}: ${r.stderr}`);
    }
    return times.sort((a, b) => a - b)[2]!;
  };
  /** A held submission of one task, cancelled: its folder, and the runner its script runs. */
  const held = async (bundle: boolean): Promise<{ dir: string; runner: string }> => {
    const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-start-")), time: 5, mem: MEM, bundle, sbatch: { hold: true } });
    const [job] = await executor.mapArray([square.with(3)]);
    await execa("scancel", [job!.id.split("_")[0]!]);
    const dir = dirname(dirname(job!.paths.result));
    return { dir, runner: /^exec \S+ (\S+) /m.exec(await readFile(join(dir, "job.sbatch"), "utf8"))![1]! };
  };
  const one = { SLURMKIT_TASK_INDEX: "0" };
  const bundled = await held(true);
  snapshots.startBundled = await median5(process.execPath, [bundled.runner, bundled.dir], one);
  const tsxHeld = await held(false);
  snapshots.startTsx = await median5(process.execPath, [tsxHeld.runner, tsxHeld.dir], one);
  // Where an element's start goes: Node itself, loading the runner's bundle (it prints its usage without a folder),
  // loading the task's module (its snapshot), and the rest (reading and decoding the task, running it, writing and flushing its result).
  const code = join(dirname(bundled.dir), "code");
  const taskBundle = join(code, (await readdir(code)).find((f) => f.endsWith(".mjs") && !f.startsWith("runner-"))!);
  const probes = await mkdtemp(join(tmpdir(), "slurmkit-bench-probes-"));
  await writeFile(join(probes, "empty.mjs"), "");
  await writeFile(join(probes, "task.mjs"), `await import(${JSON.stringify(pathToFileURL(taskBundle).href)});\n`);
  start.node = await median5(process.execPath, [join(probes, "empty.mjs")]);
  start.runnerLoad = (await median5(process.execPath, [bundled.runner], {}, 2)) - start.node;
  start.taskLoad = (await median5(process.execPath, [join(probes, "task.mjs")])) - start.node;
  start.rest = snapshots.startBundled - start.node - start.runnerLoad - start.taskLoad;
  start.runnerKb = (await stat(bundled.runner)).size / 1024;
  start.taskKb = (await stat(taskBundle)).size / 1024;
  // A leaner runner: the same bundle minified (esbuild), beside the original.
  const { transform } = await import("esbuild");
  const lean = bundled.runner.replace(/\.mjs$/, ".min.mjs");
  await writeFile(lean, (await transform(await readFile(bundled.runner, "utf8"), { minify: true, format: "esm", target: "node18" })).code);
  start.leanKb = (await stat(lean)).size / 1024;
  start.lean = await median5(process.execPath, [lean, bundled.dir], one);
  // Node's compile cache (NODE_COMPILE_CACHE, Node 22.1 or newer): BENCH_NODE names such a node when this one is older.
  const newer = process.env.BENCH_NODE ?? process.execPath;
  start.cacheNode = (await execa(newer, ["--version"])).stdout.trim();
  if (Number(/^v(\d+)\.(\d+)/.exec(start.cacheNode)![1]) * 100 + Number(/^v\d+\.(\d+)/.exec(start.cacheNode)![1]) >= 2201) {
    const cache = await mkdtemp(join(tmpdir(), "slurmkit-bench-cache-"));
    start.uncached = await median5(newer, [bundled.runner, bundled.dir], one);
    start.cached = await median5(newer, [bundled.runner, bundled.dir], { ...one, NODE_COMPILE_CACHE: cache });
  }
}
log("claims alone");
// Claims alone: 4 workers taking 10,000 tasks in one folder by blocks, as workers do (exclusive creates on this file system).
let claimMs = NaN;
let claimFiles = 0;
{
  const folder = new RunFolder(await mkdtemp(join(tmpdir(), "slurmkit-bench-claims-")));
  await mkdir(folder.claimsDir);
  const n = 10_000;
  const t0 = performance.now();
  const taken = await Promise.all(
    Array.from({ length: 4 }, async (_, w) => {
      const claims = new Claims(folder, n, w, 4, () => ({ worker: `1_${w}`, slot: 0, host: "bench", at: Date.now() }));
      let k = 0;
      while ((await claims.next()) !== undefined) k++;
      return k;
    }),
  );
  claimMs = (performance.now() - t0) / n;
  claimFiles = (await readdir(folder.claimsDir)).length;
  if (taken.reduce((a, b) => a + b, 0) !== n) throw new Error("bench: claims went missing");
}

// A worker's memory sample: one pass over its cgroup's processes (or every process), per check of its running tasks.
let sampleMs = NaN;
let sampleScope = "";
{
  const scope = ownCgroupDir();
  sampleScope = scope === undefined ? "every process" : `${(await readFile(`${scope}/cgroup.procs`, "utf8")).trim().split("\n").length} processes of its cgroup`;
  sampleTrees([process.pid], "resident", scope);
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) sampleTrees([process.pid], "resident", scope);
  sampleMs = (performance.now() - t0) / 200;
}

// What measuring usage adds to each packed function task: the slot reads its CPU time once (process.cpuUsage, and
// /proc/self/stat only after a child started or ended), and the worker joins the usage to the task's result record
// (the append is counted whole, though the result would be appended anyway; the flush is not counted).
let usageUs = NaN;
{
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-bench-usage-"));
  const writer = await StreamWriter.create(join(dir, "1_0.0.rec"), { groupCommitMs: false });
  const cpu = new OwnCpu();
  const n = 100_000;
  let spent = 0;
  // A slot's result record, which the worker appends either way: the usage is joined to it.
  const result = encodeTaskRecord({ index: 7, result: { ok: true, value: 49, host: "n1", jobId: "1_0", startedAt: 1, endedAt: 2 } });
  for (let round = 0; round < n / 1000; round++) {
    const t0 = performance.now();
    for (let i = round * 1000; i < (round + 1) * 1000; i++) {
      const ms = cpu.ms() ?? 0;
      writer.append(withUsage(result, { cpuMs: Math.round(ms % 1000), memKb: 45_000 + (i % 100), memSamples: 1, slot: i % 4 })!);
    }
    spent += performance.now() - t0;
    await writer.flush();
  }
  await writer.close();
  cpu.close();
  usageUs = (spent * 1000) / n;
}

log("polls over ssh");
// Over the system's ssh (the test sshd, through an alias): the round trips one poll costs, with 10 and with 200
// jobs queued or running. Every Transport call is one command on the one multiplexed connection.
const roundTrips: { jobs: number; perPoll: number; pollMs: number }[] = [];
{
  await execa("bash", [join(root, "test/ssh/sshd.sh"), "up"], { stdio: "inherit" });
  const sshDir = (await execa("bash", [join(root, "test/ssh/sshd.sh"), "dir"])).stdout.trim();
  for (const n of [10, 200]) {
    // A connection and a watcher of its own for each size (a transport's key picks its watcher): the cancelled jobs of one are not read in the polls of the next.
    const inner = new OpenSshTransport("slurmkit-test", { configFile: join(sshDir, "openssh-config"), interactive: false, log: () => undefined });
    let calls = 0;
    /** Counts a call, then makes it. */
    const count = <T>(call: () => T): T => {
      calls++;
      return call();
    };
    const counted: Transport = {
      key: inner.key,
      run: (...a) => count(() => inner.run(...a)),
      readFile: (p) => count(() => inner.readFile(p)),
      readFrom: (p, o) => count(() => inner.readFrom!(p, o)),
      writeFile: (p, d) => count(() => inner.writeFile(p, d)),
      createExclusive: (p, d) => count(() => inner.createExclusive(p, d)),
      list: (p) => count(() => inner.list(p)),
      mkdir: (p) => count(() => inner.mkdir(p)),
      close: () => inner.close(),
    };
    const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-ssh-")), transport: counted, time: 5, mem: MEM });
    const jobs = await executor.mapArray(Array.from({ length: n }, () => command("sleep", ["120"])));
    await executor.watcher.pollNow();
    const before = calls;
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) await executor.watcher.pollNow();
    roundTrips.push({ jobs: n, perPoll: (calls - before) / 3, pollMs: (performance.now() - t0) / 3 });
    const ids = [...new Set(jobs.map((j) => j.id.split("_")[0]!))];
    await execa("scancel", ids);
    // Until Slurm has them all ended; their futures are not waited for (each cancelled one costs reads over SSH).
    while ((await execa("squeue", ["-h", "-j", ids.join(",")])).stdout.trim() !== "") await new Promise((r) => setTimeout(r, 500));
    executor.close();
  }
}

log("mapArray of 10,000 tasks");
// Client side: mapArray of 10,000 tasks (held, then cancelled: only the client is timed).
const executor = new SlurmExecutor({ folder: await mkdtemp(join(tmpdir(), "slurmkit-bench-client-")), time: 5, mem: MEM, sbatch: { hold: true } });
await executor.limits();
const tasks = Array.from({ length: 10_000 }, (_, i) => square.with(i));
const rssBefore = process.memoryUsage().rss;
const c0 = { ...executor.watcher.stats().calls };
const t0 = performance.now();
const jobs = await executor.mapArray(tasks, { workers: "auto" });
const clientMs = performance.now() - t0;
const rss = process.memoryUsage().rss;
await executor.watcher.pollNow();
const pollCalls = executor.watcher.stats().calls.squeue - c0.squeue;
await execa("scancel", [...new Set(jobs.map((j) => j.id.split("_")[0]!))]);
// Not waited for: their futures would settle during the timings below, and this process would take CPU from them.
for (const job of jobs) slurmWatcher(new LocalTransport()).forget(job);

// A million futures in a process of their own (million.ts), then the command line on that folder once every task has a result.
const million = { n: Number(process.env.BENCH_MILLION ?? "1000000"), mapArrayMs: NaN, heapMb: NaN, rssMb: NaN, pollMs: NaN, statusMs: NaN, resultsMs: NaN, folder: "" };
{
  log(`${million.n.toLocaleString("en")} futures`);
  const r = await execa(process.execPath, ["--expose-gc", "--import", "tsx", join(root, "test/bench/million.ts"), String(million.n)], { cwd: root });
  Object.assign(million, JSON.parse(r.stdout.trim().split("\n").at(-1)!));
  const bin = join(root, "dist/src/cli.js");
  if (!largest) await execa("npm", ["run", "build"], { cwd: root });
  // The streams were just written: their pages go to disk first, so that the commands are timed, not the writeback.
  await execa("sync");
  const cpu0 = process.cpuUsage();
  for (const command of ["status", "results"] as const) {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const run = await execa(process.execPath, [bin, command, million.folder], { reject: false, stdout: "ignore" });
      if (run.exitCode !== 0) throw new Error(`bench: slurmkit ${command} on ${million.n} tasks exited ${run.exitCode}: ${run.stderr}`);
      times.push(performance.now() - t0);
    }
    million[`${command}Ms`] = times.sort((a, b) => a - b)[1]!;
  }
  const cpu = process.cpuUsage(cpu0);
  log(`this process took ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU while status and results ran`);
}

console.log(`slurmkit benchmark, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, test cluster (2 nodes × 2 CPUs)`);
console.log("");
console.log("| workload | how | seconds | speed vs raw | sbatch | squeue | sacct |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
// Each workload's raw rows first, as they were measured before packing ran first.
const workloads = [...new Set(rows.map((r) => r.workload))];
const rank = (r: Row) => workloads.indexOf(r.workload) * 2 + Number(!r.how.startsWith("raw"));
const shown = [...rows].sort((a, b) => rank(a) - rank(b));
for (const r of shown) {
  // One per element against the node -e floor; packed rows against bash where the run has it.
  const raws = rows.filter((x) => x.workload === r.workload && x.how.startsWith("raw sbatch array"));
  const base = (r.how.includes("workers") ? raws.find((x) => !x.how.includes("node -e")) : raws.find((x) => x.how.includes("node -e"))) ?? raws[0]!;
  console.log(`| ${r.workload} | ${r.how} | ${r.seconds.toFixed(1)} | ${(base.seconds / r.seconds).toFixed(1)}x | ${r.sbatch} | ${r.squeue} | ${r.sacct} |`);
}
console.log("");
console.log(
  `one element's start, median of 5 on this machine: ${snapshots.startBundled.toFixed(0)} ms from node's start to the task's result = Node itself ${start.node.toFixed(0)} ms + ` +
    `loading the runner's bundle (${start.runnerKb.toFixed(0)} KiB) ${start.runnerLoad.toFixed(0)} ms + loading the task's snapshot (${start.taskKb.toFixed(0)} KiB) ${start.taskLoad.toFixed(0)} ms + ` +
    `reading, running and writing the task (its result flushed) ${start.rest.toFixed(0)} ms; the runner minified (${start.leanKb.toFixed(0)} KiB): ${start.lean.toFixed(0)} ms; ` +
    (Number.isNaN(start.cached)
      ? `Node's compile cache needs Node 22.1 or newer (this is ${start.cacheNode}; set BENCH_NODE to one)`
      : `Node ${start.cacheNode}: ${start.uncached.toFixed(0)} ms, ${start.cached.toFixed(0)} ms with its compile cache (NODE_COMPILE_CACHE)`),
);
if (many.n > 0) {
  console.log(
    `${many.n.toLocaleString("en")} packed function tasks (workers "auto", mem ${MEM}): ${many.seconds.toFixed(1)} s from mapArray to the last result seen, ` +
      `${many.runnerMsPerTask.toFixed(2)} ms per task from the first claim to the last result, ${many.files} files in the run folder, ` +
      `client peak RSS ${many.peakRssMb.toFixed(0)} MiB (heap ${many.peakHeapMb.toFixed(0)} MiB); slurmkit status on it ${many.statusMs.toFixed(0)} ms`,
  );
}
console.log("| long-tailed workload | how | makespan (s) | sum / slots (s) | ratio |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const t of tail) console.log(`| durations 0.1–5 s | ${t.how} | ${t.seconds.toFixed(1)} | ${t.ideal.toFixed(1)} | ${(t.seconds / t.ideal).toFixed(2)}x |`);
console.log("");
console.log(
  `code snapshots: bundling the task module ${snapshots.bundleMs.toFixed(0)} ms, the runner ${snapshots.runnerMs.toFixed(0)} ms (first time in a process); ` +
    `one element's start to its result on this machine (median of 5): ${snapshots.startBundled.toFixed(0)} ms from snapshots, ${snapshots.startTsx.toFixed(0)} ms importing the TypeScript module through tsx`,
);
if (largest) console.log(`command line on ${largest.n.toLocaleString("en")} completed tasks (packed): ${cliMs.map((c) => `${c.command} ${c.ms.toFixed(0)} ms`).join(", ")}`);
for (const w of workerMemory) {
  console.log(
    w.workers === 0
      ? `worker memory, ${w.n.toLocaleString("en")} packed tasks at mem ${MEM}: each worker asked for ${w.askedMb} MiB; sacct gave no MaxRSS for its workers (they ended before a sample)`
      : `worker memory, ${w.n.toLocaleString("en")} packed tasks at mem ${MEM}: each worker asked for ${w.askedMb} MiB; the most one held was ${w.peakMb.toFixed(1)} MiB (sacct MaxRSS over ${w.workers} workers)`,
  );
}
console.log(`over the system's ssh (one multiplexed connection): one poll costs ${roundTrips.map((r) => `${r.perPoll} round trips (${r.pollMs.toFixed(0)} ms) with ${r.jobs} jobs`).join(", ")}`);
console.log(`memory sample of a running task's process tree: ${sampleMs.toFixed(2)} ms (${sampleScope}), every 500 ms while tasks run`);
console.log(
  `usage per packed task (the slot's CPU time, the worker's usage record): ${usageUs.toFixed(1)} µs per task, ` +
    `${Number.isNaN(many.runnerMsPerTask) ? "" : `${((usageUs / 1000 / many.runnerMsPerTask) * 100).toFixed(2)}% of the packed run's ${many.runnerMsPerTask.toFixed(2)} ms per task`}`,
);
if (!Number.isNaN(reported.ms)) {
  console.log(
    `HTML report of ${reported.n.toLocaleString("en")} packed tasks: slurmkit report ${(reported.ms / 1000).toFixed(1)} s, ${(reported.bytes / 2 ** 20).toFixed(1)} MiB; ` +
      (Number.isNaN(reported.renderMs) ? "no headless Chromium to draw it" : `headless Chromium drew it (${reported.bars.toLocaleString("en")} bars) in ${(reported.renderMs / 1000).toFixed(1)} s`),
  );
}
if (boxes.n > 0) {
  console.log(
    `container start, ${boxes.n} trivial commands packed in 2 slots of one worker: ${boxes.plainMs.toFixed(1)} ms per task without a container, ` +
      `${boxes.podmanMs.toFixed(1)} ms in podman containers (+${(boxes.podmanMs - boxes.plainMs).toFixed(0)} ms per task); podman's client holds ${boxes.clientMb.toFixed(0)} MiB resident and conmon ${boxes.conmonMb.toFixed(1)} MiB while the container runs`,
  );
}
console.log(`claims: ${claimMs.toFixed(4)} ms per task, ${claimFiles} claim files (4 workers taking 10,000 tasks by blocks, exclusive creates on this machine's file system)`);
console.log(
  `mapArray of 10,000 tasks: ${clientMs.toFixed(0)} ms client time (one spec file, ${executor.watcher.stats().calls.sbatch - c0.sbatch} sbatch call); RSS ${(rss / 2 ** 20).toFixed(0)} MiB (+${((rss - rssBefore) / 2 ** 20).toFixed(0)} MiB); one poll of the 10,000 futures: ${pollCalls} squeue call`,
);
console.log(
  `${million.n.toLocaleString("en")} futures from one mapArray (held): ${(million.mapArrayMs / 1000).toFixed(1)} s, heap +${million.heapMb.toFixed(0)} MiB (${((million.heapMb * 2 ** 20) / million.n).toFixed(0)} B each), RSS ${million.rssMb.toFixed(0)} MiB; one poll ${million.pollMs.toFixed(0)} ms. ` +
    `Once every task has a result (streams written as workers write them): slurmkit status ${million.statusMs.toFixed(0)} ms, slurmkit results ${million.resultsMs.toFixed(0)} ms (to /dev/null; each the median of 3 runs)`,
);
process.exit(0);
