// Maps a function task and runs a command task, then prints the results.
// Uses this repository's test cluster when it is up (npm run cluster:up),
// any other Slurm that answers, and local processes otherwise.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { autoExecutor, command, progress, SlurmExecutor } from "slurmkit";
import { square } from "./tasks.js";

const testCluster = fileURLToPath(new URL("../.cluster/", import.meta.url));
if (!process.env.SLURM_CONF && clusterRunning(testCluster)) process.env.SLURM_CONF = `${testCluster}etc/slurm.conf`;

const executor = await autoExecutor({ folder: "runs/quickstart", time: 5, mem: "500M" });
console.log(`Running on ${executor instanceof SlurmExecutor ? "Slurm" : "this machine (no Slurm found)"}; run folder ${executor.folder}`);

const squares = await executor.mapArray([1, 2, 3, 4].map((n) => square.with(n)));
const hello = await executor.submit(command("echo", ["hello from a command task:", "$HOME stays literal"]));
progress([...squares, hello]); // a live line on stderr while they run, on a terminal only

for (const job of squares) {
  const { n, square: sq, ranOn } = await job.result();
  console.log(`${job.id}: ${n}² = ${sq} (on ${ranOn})`);
}
console.log(`${hello.id}: exit code ${(await hello.result()).exitCode}, stdout: ${(await hello.stdout()).trim()}`);

function clusterRunning(dir: string): boolean {
  const pidFile = `${dir}run/slurmctld.pid`;
  if (!existsSync(pidFile)) return false;
  try {
    process.kill(Number(readFileSync(pidFile, "utf8")), 0);
    return true;
  } catch {
    return false;
  }
}
