// Submits to a cluster over SSH, as from a laptop, with the system's ssh and
// your own ~/.ssh/config (aliases, ProxyJump, ControlMaster, MFA prompts on
// this terminal). Settings come from the environment:
//
//   SLURMKIT_SSH=cedar                     a Host alias, or user@host[:port]
//   SLURMKIT_SSH_CONFIG=./ssh_config       optional: another ssh_config than ~/.ssh/config
//   SLURMKIT_FOLDER=/home/ada/runs/laptop  the run folder, on the cluster (absolute)
//
// Function tasks and slurmkit's runner are uploaded as code snapshots: the
// cluster needs Node.js 18 or newer on the nodes and nothing else.
// e.g. SLURMKIT_SSH=cedar npx tsx examples/from-laptop.ts
import { command, progress, SlurmExecutor, type OpenSshTarget } from "slurmkit";
import { square } from "./tasks.js";

const destination = process.env.SLURMKIT_SSH ?? "";
const folder = process.env.SLURMKIT_FOLDER ?? "";
if (!destination || !folder) {
  console.error("Set SLURMKIT_SSH to a Host alias from ~/.ssh/config or user@host[:port], and SLURMKIT_FOLDER to a folder on the cluster; see the top of this file.");
  process.exit(2);
}
const ssh: OpenSshTarget = { destination, ...(process.env.SLURMKIT_SSH_CONFIG ? { configFile: process.env.SLURMKIT_SSH_CONFIG } : {}) };
const executor = new SlurmExecutor({ folder, ssh, time: 5, mem: "500M" });
console.log(`Submitting over SSH to ${destination}; run folder ${executor.folder} on the cluster`);

const squares = await executor.mapArray([1, 2, 3].map((n) => square.with(n)));
const where = await executor.submit(command("hostname"));
progress([...squares, where]);
for (const job of squares) {
  const { n, square: sq, ranOn } = await job.result();
  console.log(`${job.id}: ${n}² = ${sq} (on ${ranOn})`);
}
await where.result();
console.log(`${where.id}: hostname printed ${(await where.stdout()).trim()}`);
executor.close();
