import { parseParameters } from "./src/index.ts";
for (const p of [{ mem: "100M", memPerCpu: "1G" }, { mem: "100M", sbatch: { mem: "200M" } }, { sbatch: { "job_name": "x" } }, { sbatch: { jobName: "x" } }, { sbatch: { mailType: "END" } }, { mem: 0 }, { mem: "0G" }, { nodes: "4-2" }, { memPerCpu: "1G", sbatch: { "mem-per-gpu": "4G" } }, { sbatch: { "mail-type": "END", exclusive: true } }]) {
  try { const r = parseParameters(p); console.log("OK", JSON.stringify(r)); } catch (e) { console.log((e as Error).message.replace(/\n+/g, " | ")); }
}
