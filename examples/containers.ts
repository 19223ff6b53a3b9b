// Command tasks in a container image that holds no Node.js: slurmkit's runner
// stays on the node's Node.js and starts each command through the runtime.
// On this repository's test cluster that runtime is podman, and the image a
// static busybox that cluster.sh builds (no registry is reachable there). On
// a cluster with Apptainer, change the container() line (README, "Containers").
// About 15 s.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { command, container, SlurmExecutor } from "slurmkit";
import { inContainer } from "./tasks.js";

if (!process.env.SLURM_CONF) process.env.SLURM_CONF = fileURLToPath(new URL("../.cluster/etc/slurm.conf", import.meta.url));
// The test cluster's podman settings (runc, ulimits) and image; the jobs inherit CONTAINERS_CONF.
const cluster = execFileSync("bash", [fileURLToPath(new URL("../test/cluster/cluster.sh", import.meta.url)), "podman"], { encoding: "utf8" });
const vars = Object.fromEntries([...cluster.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
process.env.CONTAINERS_CONF = vars.CONTAINERS_CONF;
const image = vars.PODMAN_IMAGE!;

const executor = new SlurmExecutor({
  folder: "runs/containers",
  time: 2,
  mem: "200M",
  // Every command task of a submission runs in this image; the run folder, the working directory and $SLURM_TMPDIR are bound in.
  setup: [container({ runtime: "podman", image, binds: ["/tmp"] })],
});
const jobs = await executor.mapArray(
  [
    command("sh", ["-c", 'echo "in $(head -n 1 /etc/os-release), node: $(command -v node || echo none), job $SLURM_ARRAY_JOB_ID"']),
    // A command's own container replaces the submission's: a sweep can mix images.
    command("cat", ["/etc/os-release"], { container: { runtime: "podman", image, options: ["--label", "example=containers"] } }),
  ],
  { workers: 1, slots: 2 },
);
for (const [i, job] of jobs.entries()) {
  await job.result();
  console.log(`task ${i} (${job.id}): ${(await job.stdout()).trim().split("\n")[0]}`);
}
// A function task: its JavaScript runs in the runner, on the node; ctx.container.exec runs commands in the image.
const [fn] = await executor.mapArray([inContainer.with("ada")]);
const result = await fn!.result();
console.log(`function task (${fn!.id}): ${(await fn!.stdout()).trim()}; ${JSON.stringify(result)}`);
