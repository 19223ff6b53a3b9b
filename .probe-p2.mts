import { parseParameters } from "./src/slurm/parameters.ts";
for (const p of [{ mem: "1G", sbatch: { mem: "2G", "mail-type": "a\nb" } }, { sbatch: { jobName: "x", array: "1" } }]) {
  try { parseParameters(p); } catch (e) { console.log((e as any).problems); }
}
