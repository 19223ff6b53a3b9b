import { SlurmkitError } from "../base/errors.js";
import { closeMatches } from "../base/suggest.js";
import { VERSION } from "../base/version.js";
import { cancel, rerun } from "./change.js";
import { connect } from "./connect.js";
import { doctor } from "./doctor.js";
import { logs } from "./logs.js";

import { results } from "./results.js";
import { status, watch } from "./status.js";
import { suggestCommand } from "./suggest.js";
import { reportCommand } from "./report.js";

const USAGE = `slurmkit ${VERSION}: submit work to Slurm and get typed job futures back.

Usage: slurmkit <command> <folder> [options]

<folder> is a run folder: an executor's folder, or one submission in it.

Commands:
  status <folder> [--tasks]          one row per submission with its tasks per state, and what
                                     they used (CPU and memory against what they asked for);
                                     --tasks lists every task (index, id, state, host, elapsed, usage)
  watch <folder> [--interval S]      live progress until every task ended, then the status
  logs <folder> <task> [--err] [--follow] [--attempt N]
                                     a task's stdout (stderr with --err); <task> is an index
                                     or a Slurm id such as 1234_7
  results <folder> [--failed]        JSON Lines: each task's result, or its error, and what it used
  report <folder> [-o report.html] [--title T]
                                     one self-contained HTML file: a timeline of every task,
                                     distributions of time, CPU and memory, failures, totals
  suggest <folder>                   what to ask for next time (time, mem, CPUs), from what the
                                     tasks used, as --slurm pairs and executor options
  cancel <folder> [task...]          cancel the tasks named, or every one not ended
  rerun <folder> (--failed | --state TIMEOUT,... | --all | task...) [--right-size] [--dry-run] [--slurm key=value ...]
                                     run tasks again from the stored spec, with overrides
                                     (--pbs key=value ... for a PBS folder);
                                     --right-size gives OUT_OF_MEMORY tasks twice the mem and
                                     TIMEOUT tasks twice the time (capped by the partition);
                                     --dry-run prints the sbatch scripts and submits nothing
  doctor [--pbs] [--folder DIR] [--partition P] [--node-binary PATH] [--setup LINE]... [--no-job]
                                     check what the cluster allows before a first sweep: Slurm,
                                     accounting, limits, partitions, preemption, sbatch --test-only,
                                     then one small job that reports from a node (exit 1: a check failed);
                                     --pbs: PBS's commands, server, queues, max_array_size, job history
  connect DEST [--persist 12h] [--close]
                                     log in to a cluster once on this terminal (MFA, a passphrase)
                                     and keep the connection for later runs, even without a terminal

Options of every command:
  --ssh DEST                         the folder is on a cluster reached with the system's ssh:
                                     DEST is a Host alias from ~/.ssh/config or user@host[:port]
  --ssh-config FILE                  read this ssh_config instead of ~/.ssh/config
  --identity FILE                    use the built-in SSH client with this key instead
                                     (DEST is then user@host[:port])
  --known-hosts FILE                 the built-in client's host keys (default: ~/.ssh/known_hosts)
  --json                             machine-readable output

Exit codes: 0 done (status and watch: every task completed); 1 a task failed;
2 a usage error or a command that could not run (nothing was changed);
3 (status, watch) tasks are still pending or running.

slurmkit --version prints the version.
`;

const COMMANDS: Record<string, (args: readonly string[]) => Promise<number>> = { status, watch, logs, results, suggest: suggestCommand, report: reportCommand, cancel, rerun, connect, doctor };

/** Runs the slurmkit command line with the given arguments and resolves to its exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--version" || first === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  // No command is a usage error: the usage goes to stderr, and scripts see exit 2.
  if (first === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const command = COMMANDS[first];
  if (!command) {
    const close = closeMatches(first, Object.keys(COMMANDS));
    process.stderr.write(`slurmkit: unknown command '${first}'${close.length ? ` (did you mean ${close.join(" or ")}?)` : ""}; commands: ${Object.keys(COMMANDS).join(", ")}; see slurmkit --help\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    return await command(rest);
  } catch (error) {
    const known = error instanceof SlurmkitError; // UsageError is one too
    process.stderr.write(`slurmkit ${first}: ${known ? (error as Error).message : ((error as Error).stack ?? String(error))}\n`);
    return 2;
  }
}
