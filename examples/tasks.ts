import { hostname } from "node:os";
import { defineTask } from "slurmkit";

/** A function task: runs on the node, returns a typed result through msgpack. */
export const square = defineTask(import.meta.url, "square", (n: number) => ({
  n,
  square: n * n,
  ranOn: process.env.SLURMD_NODENAME ?? hostname(),
}));
