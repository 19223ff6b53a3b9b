// ezpz's launch on Slurm: a virtualenv built on every node from an offline
// wheelhouse, then one rank per GPU across all nodes. The ranks meet at
// MASTER_ADDR:MASTER_PORT as torch.distributed's env:// rendezvous would
// (`torchDistributed: true` exports those variables to every rank).
//
//     npx tsx examples/ezpz/launch.ts [run folder] [--slurm nodes=2 gres=gpu:2 ntasks_per_node=2 ...]
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { atRuntime, command, parseSlurmFlags, SlurmExecutor, venvPerNode } from "slurmkit";

const here = dirname(fileURLToPath(import.meta.url));
const testCluster = fileURLToPath(new URL("../../.cluster/etc/slurm.conf", import.meta.url));
if (!process.env.SLURM_CONF && existsSync(testCluster)) process.env.SLURM_CONF = testCluster;

const flags = parseSlurmFlags(process.argv.slice(2));
const wheelhouse = buildWheelhouse(join(here, "work", "wheelhouse"));
const executor = new SlurmExecutor({
  folder: flags.rest[0] ?? "runs/ezpz",
  jobName: "ezpz",
  // One rank per accelerator: as many ranks per node as GPUs per node.
  nodes: 2,
  gres: "gpu:2",
  ntasksPerNode: 2,
  time: 5,
  setup: [venvPerNode({ path: atRuntime("$SLURM_TMPDIR/ezpz-venv"), wheelhouse, packages: ["ezpz-demo"] }), ...(flags.setup ?? [])],
});
// `--slurm key=value` flags replace these defaults: nodes=4 gres=gpu:4 ntasks_per_node=4 on a bigger cluster.
if (flags.parameters) executor.update(flags.parameters);
const job = await executor.submit(command("python3", ["-m", "ezpz_demo"], { torchDistributed: true }));
console.log(`Launched ${job.id}; run folder ${executor.folder}`);
await job.result();
// The job's result is rank 0's; the other ranks' output may reach the log a moment later.
const world = (Number.parseInt(String(executor.parameters.nodes ?? 1), 10) || 1) * (executor.parameters.ntasksPerNode ?? 1);
let lines: string[] = [];
for (let i = 0; i < 100 && lines.length < world; i++) {
  lines = (await job.stdout()).split("\n").filter((l) => l.startsWith("rank "));
  if (lines.length < world) await new Promise((r) => setTimeout(r, 300));
}
for (const line of lines.sort()) console.log(line);

/** A wheel is a zip with a dist-info folder: pip installs it on the nodes with no network. */
function buildWheelhouse(dir: string): string {
  const name = "ezpz_demo-1.0.0";
  const files: Record<string, string> = {
    "ezpz_demo/__init__.py": "",
    "ezpz_demo/__main__.py": readFileSync(join(here, "ezpz_demo", "__main__.py"), "utf8"),
    [`${name}.dist-info/METADATA`]: "Metadata-Version: 2.1\nName: ezpz-demo\nVersion: 1.0.0\n",
    [`${name}.dist-info/WHEEL`]: "Wheel-Version: 1.0\nGenerator: slurmkit-example\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
  };
  const record = Object.entries(files).map(([path, text]) => `${path},sha256=${createHash("sha256").update(text).digest("base64url")},${Buffer.byteLength(text)}`);
  files[`${name}.dist-info/RECORD`] = `${record.join("\n")}\n${name}.dist-info/RECORD,,\n`;
  const build = join(dir, "..", "build");
  rmSync(build, { recursive: true, force: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(build, path)), { recursive: true });
    writeFileSync(join(build, path), text);
  }
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, `${name}-py3-none-any.whl`), { force: true });
  execFileSync("zip", ["-q", "-r", join(dir, `${name}-py3-none-any.whl`), "ezpz_demo", `${name}.dist-info`], { cwd: build });
  rmSync(build, { recursive: true });
  return dir;
}
