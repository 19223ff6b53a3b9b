#!/usr/bin/env node
import { VERSION } from "./version.js";

const USAGE = `slurmkit ${VERSION}: submit work to Slurm and get typed job futures back.

Usage:
  slurmkit --version    print the version
  slurmkit --help       print this help

slurmkit is used as a library: import { SlurmExecutor } from "slurmkit".
`;

/** Runs the slurmkit command line with the given arguments and returns its exit code. */
export function main(argv: readonly string[]): number {
  const [first] = argv;
  if (first === "--version" || first === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (first === undefined || first === "--help" || first === "-h") {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write(`slurmkit: unknown command '${first}'\n\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
