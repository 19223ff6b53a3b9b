import { liftCoveredOptions, parseParameters } from "./src/slurm/parameters.ts";
const old = { time: 5, sbatch: { "mem-per-cpu": "1G", "mail-type": "END", time: "0:10:00", exclusive: true as const } };
const l = liftCoveredOptions(old as never);
console.log(JSON.stringify(l), JSON.stringify(parseParameters(l)));
