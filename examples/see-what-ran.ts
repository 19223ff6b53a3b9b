// A small sweep whose tasks use different amounts of time, CPU and memory:
// some fail, one runs out of memory and one out of time. Then it shows what
// each used, writes the HTML report, and prints how to see the rest.
// Uses this repository's test cluster (npm run cluster:up). About 90 s.
import { fileURLToPath } from "node:url";
import { asCompleted, command, report, SlurmExecutor } from "slurmkit";
import { train } from "./tasks.js";

if (!process.env.SLURM_CONF) process.env.SLURM_CONF = fileURLToPath(new URL("../.cluster/etc/slurm.conf", import.meta.url));
const folder = "runs/see-what-ran";
// Small, honest requests: one CPU, 300 MiB and one minute per task.
const executor = new SlurmExecutor({ folder, time: 1, mem: "300M" });

const sweep = Array.from({ length: 24 }, (_, i) => train.with({ lr: i === 23 ? 0.9 : 0.01 * (i + 1), mb: 20 + ((i * 37) % 180), cpuSeconds: 0.2 + (i % 5) * 0.4, waitSeconds: 1 + (i % 4) }));
// Packed: two workers of two slots, each task held to its own 300 MiB and one minute.
const packed = await executor.mapArray([...sweep, train.with({ lr: 0.1, mb: 400, cpuSeconds: 0.1, waitSeconds: 2 }), command("/bin/sleep", ["75"])], { workers: 2, slots: 2 });
// And a few with an element of their own, where Slurm's accounting can check the figures.
const own = await executor.mapArray([0.02, 0.04, 0.08].map((lr) => train.with({ lr, mb: 120, cpuSeconds: 1.5, waitSeconds: 2 })));

for await (const job of asCompleted([...packed, ...own])) {
  const u = await job.usage();
  const figures = u ? `${u.wallSeconds.toFixed(1)} s, CPU ${u.cpuSeconds?.toFixed(2)} s, peak ${u.memPeakMb?.toFixed(0)} MiB on ${u.node}` : "never ran";
  console.log(`${job.id.padEnd(8)} ${job.state.padEnd(13)} ${figures}`);
}
const written = await report([...packed, ...own], `${folder}/report.html`, { title: "see-what-ran" });
console.log(`\nReport: ${written.path} (${written.tasks} tasks, ${written.failures} failed)`);
console.log(`Next: npx slurmkit status ${folder}; npx slurmkit suggest ${folder}; npx slurmkit rerun ${folder} --failed --right-size`);
