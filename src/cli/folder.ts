import { UsageError } from "../base/errors.js";
import type { Job } from "../core/job.js";
import { loadJobs, loadRun, type RefusedSubmission, refusedSubmissions, type RunPart } from "../sdk/load-jobs.js";
import { originSourceOf, runsOf } from "../engine/origin.js";
import { reloadOf } from "../sdk/schedulers.js";
import { LocalTransport } from "../transport/local.js";
import { sshTransport } from "../transport/ssh-target.js";
import { isUnreachable, type Transport } from "../transport/transport.js";
import { sshFromFlags, type Values } from "./options.js";

/** A run folder opened by a command: its tasks (latest runs, in loadJobs order) and where it is. */
export interface OpenFolder {
  /** The futures; with `parts`, only those of tasks not completed in their streams. */
  readonly jobs: Job<unknown>[];
  /** Each submission's futures and its tasks completed in their streams, when opened with `streamed` (and the folder holds no reruns). */
  readonly parts?: readonly RunPart[];
  readonly transport: Transport;
  /** Submissions that sbatch refused (no task of theirs is among `jobs`), read when asked: the folder is read again. */
  refused(): Promise<readonly RefusedSubmission[]>;
  /** Reads every task's current state: two polls, so that an ended job with no result settles too. */
  refresh(): Promise<void>;
  close(): void;
}

/** An error's first line, and the last line of a command's stderr in it (what squeue said). */
function briefly(error: Error): string {
  const lines = error.message
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.length > 1 ? `${lines[0]}: ${lines.at(-1)}` : (lines[0] ?? String(error));
}

/**
 * Opens the folder (over SSH with --ssh) and reads where every task is.
 * `streamed`: a packed task whose stream holds its completed result gets no
 * future (see loadRun), for commands that read tasks by `parts`.
 */
export async function openFolder(folder: string | undefined, values: Values, command: string, streamed = false): Promise<OpenFolder> {
  if (folder === undefined) throw new UsageError(`slurmkit ${command} needs a run folder: the executor's folder, or one submission in it`);
  const ssh = sshFromFlags(values);
  if (ssh && !folder.startsWith("/")) throw new UsageError(`With --ssh the folder is a path on the cluster and must be absolute, got '${folder}'`);
  const transport: Transport = ssh !== undefined ? sshTransport(ssh) : new LocalTransport();
  try {
    const parts = streamed ? await loadRun(folder, transport) : undefined;
    const jobs = parts ? parts.flatMap((p) => p.jobs) : await loadJobs(folder, { transport });
    const warned = new Set<string>();
    const refresh = async () => {
      // The watcher of each scheduler the folder's jobs ran on.
      const kinds = new Set(jobs.map((j) => originSourceOf(j)?.kind ?? "slurm"));
      for (const kind of kinds) {
        const { watcher } = reloadOf(kind, transport, folder);
        await watcher.pollNow();
        await watcher.pollNow();
        // Tasks with a result are shown as they ended; the others' states need the scheduler.
        const { failedPolls, lastError } = watcher.stats();
        if (failedPolls > 0 && lastError && !warned.has(lastError.message)) {
          warned.add(lastError.message);
          process.stderr.write(
            isUnreachable(lastError)
              ? `slurmkit: could not reach the cluster (${briefly(lastError)}); tasks show what was known before (PENDING when nothing)\n`
              : `slurmkit: could not ask the scheduler where tasks are (${briefly(lastError)}); tasks with a result show how they ended, the others show their last known state (PENDING when none)\n`,
          );
        }
      }
    };
    const refused = () => refusedSubmissions(folder, transport);
    const opened = { jobs, ...(parts ? { parts } : {}), transport, refused, refresh, close: () => transport.close?.() };
    await refresh();
    return opened;
  } catch (error) {
    transport.close?.();
    throw error;
  }
}

/**
 * The tasks named on the command line: a plain number is a task's index (as
 * `status --tasks` lists it); a Slurm id is `1234_7`, or `1234` for a job
 * that is not an array when no task has that index.
 */
export function pickTasks(jobs: readonly Job<unknown>[], specs: readonly string[]): Job<unknown>[] {
  const picked = specs.map((spec) => {
    if (/^\d+$/.test(spec) && Number(spec) < jobs.length) return jobs[Number(spec)]!;
    // A Slurm id of the latest run, or of an earlier run of the task (the id in an old email or in sacct).
    const byId = jobs.filter((j) => runsOf(j).some((run) => run.id === spec));
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1) {
      throw new UsageError(`Slurm job ${spec} ran several tasks (packed): ${byId.map((j) => jobs.indexOf(j)).join(", ")}; name one by its index`);
    }
    const range = jobs.length ? `indices 0 to ${jobs.length - 1}` : "no tasks";
    if (!/^\d+(_\d+)?$/.test(spec)) throw new UsageError(`Expected a task index or a Slurm id such as 1234_7, got '${spec}'`);
    throw new UsageError(`No task ${spec} in this folder: it has ${range}, and no job with id ${spec} (see slurmkit status --tasks)`);
  });
  return [...new Set(picked)];
}
