/**
 * slurmkit: submit work to Slurm clusters from TypeScript and get typed job futures back.
 * @packageDocumentation
 */
export { VERSION } from "./version.js";
