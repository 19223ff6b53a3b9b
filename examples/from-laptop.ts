// Submits to a cluster over SSH, as from a laptop. Settings come from the
// environment:
//
//   SLURMKIT_SSH=ada@login.cluster.org[:port]   who and where
//   SLURMKIT_SSH_KEY=~/.ssh/id_ed25519          the private key (else ssh-agent)
//   SLURMKIT_KNOWN_HOSTS=...                    default ~/.ssh/known_hosts
//   SLURMKIT_FOLDER=/home/ada/runs/laptop       the run folder, on the cluster
//   SLURMKIT_PATH_MAP=/Users/ada/slurmkit=/home/ada/slurmkit   with bundle: false only: this checkout on the cluster
//
// Function tasks and slurmkit's runner are uploaded as code snapshots: the
// cluster needs Node.js and nothing else.
// e.g. npx tsx examples/from-laptop.ts
import { homedir } from "node:os";
import { command, progress, SlurmExecutor } from "slurmkit";
import { square } from "./tasks.js";

const target = /^([^@]+)@([^:]+)(?::(\d+))?$/.exec(process.env.SLURMKIT_SSH ?? "");
if (!target) {
  console.error("Set SLURMKIT_SSH=user@host[:port] (and SLURMKIT_SSH_KEY, SLURMKIT_FOLDER); see the top of this file.");
  process.exit(2);
}
const [, username, host, port] = target as unknown as [string, string, string, string | undefined];
const key = process.env.SLURMKIT_SSH_KEY?.replace(/^~(?=\/)/, homedir());
const [from, to] = (process.env.SLURMKIT_PATH_MAP ?? "").split("=");

const executor = new SlurmExecutor({
  folder: process.env.SLURMKIT_FOLDER ?? `/home/${username}/runs/from-laptop`,
  ssh: {
    host,
    username,
    ...(port ? { port: Number(port) } : {}),
    ...(key ? { privateKey: key } : { agent: true }),
    ...(process.env.SLURMKIT_KNOWN_HOSTS ? { knownHosts: process.env.SLURMKIT_KNOWN_HOSTS } : {}),
  },
  ...(from && to ? { pathMap: { [from]: to } } : {}),
  time: 5,
  mem: "500M",
});
console.log(`Submitting over SSH to ${username}@${host}; run folder ${executor.folder} on the cluster`);

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
