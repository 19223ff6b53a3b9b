import { SchedulerError, SlurmkitError, SubmissionError } from "../base/errors.js";
import {
  parseDefaultMemory,
  parseMaxArraySize,
  parsePartitionMemory,
  parseUsesPss,
  parseQueueLines,
  parseSacctUsage,
  type SacctUsage,
  parseSbatchOutput,
  parseSinfoNodes,
  SINFO_NODE_FORMAT,
  type DefaultMemory,
  type NodeCpus,
} from "./parse.js";
import type { QueueEntry } from "../engine/scheduler.js";
import { LocalTransport } from "../transport/local.js";
import { isUnreachable, unlessUnreachable, type RunResult, type Transport } from "../transport/transport.js";

/** How many scheduler calls a process has made; tests read it. */
export interface SchedulerCallCounts {
  sbatch: number;
  squeue: number;
  sacct: number;
  scancel: number;
  /** `scontrol show config`, `sacctmgr` and `sinfo` calls that read the cluster's limits. */
  limits: number;
}

/** The cluster limits that decide how a large submission is split. */
export interface ClusterLimits {
  /** Array indices must stay below this (`MaxArraySize`, 1001 by default). */
  readonly maxArraySize: number;
  /** Jobs (array elements count one each) the user may have queued, when sacctmgr shows it. */
  readonly maxSubmitJobs: number | undefined;
  /** The cluster's nodes and their CPUs, from sinfo; empty when sinfo said nothing. */
  readonly nodes: readonly NodeCpus[];
  /** Partitions' MaxTime in seconds (undefined: infinite), from sinfo; missing when sinfo said nothing. */
  readonly maxTimes?: ReadonlyMap<string, number | undefined>;
  /** What a job that asks for no memory gets (DefMemPerCPU or DefMemPerNode), from `scontrol show config`; undefined when unlimited. */
  readonly defaultMemory?: DefaultMemory;
  /** Partitions' own default memory, where they set one (`scontrol show partition`); the default partition also under "*". */
  readonly partitionMemory?: ReadonlyMap<string, DefaultMemory | undefined>;
  /** Slurm's gatherer counts memory as proportional set sizes (`JobAcctGatherParams=UsePss`). */
  readonly usesPss?: boolean;
}

/** sbatch, squeue, sacct and scancel through a transport, with a count of every call. */
export class Scheduler {
  readonly calls: SchedulerCallCounts = { sbatch: 0, squeue: 0, sacct: 0, scancel: 0, limits: 0 };
  /** False once sacct said accounting is disabled; then squeue and the state files decide. */
  accountingWorks = true;
  /** After another sacct failure, sacct is not asked again before this time (ms since epoch). */
  #sacctRetryAt = 0;
  /** Kill a scheduler command that takes longer than this. */
  timeoutMs = 120_000;

  constructor(readonly transport: Transport) {}

  /**
   * Reads MaxArraySize and the default memory (`scontrol show config`), the
   * user's MaxSubmitJobs (`sacctmgr`, when accounting shows it; the smallest
   * over their associations), the nodes' CPUs (`sinfo`, when it answers) and
   * the partitions' own default memory (`scontrol show partition`).
   */
  async limits(): Promise<ClusterLimits> {
    this.calls.limits++;
    const config = await this.transport.run("scontrol", ["show", "config"], { timeoutMs: this.timeoutMs }).catch(asSchedulerError(["scontrol", "show", "config"]));
    const maxArraySize = config.exitCode === 0 ? parseMaxArraySize(config.stdout) : undefined;
    if (maxArraySize === undefined) {
      throw new SchedulerError(["scontrol", "show", "config"], config.exitCode, config.stderr.trim() || "no MaxArraySize line in its output");
    }
    let maxSubmitJobs: number | undefined;
    this.calls.limits++;
    // Without the user's name (id failed), sacctmgr would answer for every user: MaxSubmitJobs stays unknown.
    const user = await this.#user();
    const assoc =
      user === undefined
        ? undefined
        : await this.transport
            .run("sacctmgr", ["--noheader", "--parsable2", "show", "assoc", "where", `user=${user}`, "format=MaxSubmit"], { timeoutMs: this.timeoutMs })
            .catch(unlessUnreachable(undefined));
    if (assoc?.exitCode === 0) {
      const values = assoc.stdout
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /^\d+$/.test(l))
        .map(Number);
      if (values.length) maxSubmitJobs = Math.min(...values);
    }
    this.calls.limits++;
    const sinfo = await this.transport.run("sinfo", ["--noheader", "--Node", `--format=${SINFO_NODE_FORMAT}`], { timeoutMs: this.timeoutMs }).catch(unlessUnreachable(undefined));
    const maxTimes = new Map<string, number | undefined>();
    const nodes = sinfo?.exitCode === 0 ? parseSinfoNodes(sinfo.stdout, maxTimes) : [];
    this.calls.limits++;
    const partitions = await this.transport.run("scontrol", ["show", "partition", "-o"], { timeoutMs: this.timeoutMs }).catch(unlessUnreachable(undefined));
    const partitionMemory = partitions?.exitCode === 0 ? parsePartitionMemory(partitions.stdout) : undefined;
    const defaultMemory = parseDefaultMemory(config.stdout);
    return {
      maxArraySize,
      maxSubmitJobs,
      nodes,
      maxTimes,
      ...(defaultMemory ? { defaultMemory } : {}),
      ...(partitionMemory ? { partitionMemory } : {}),
      ...(parseUsesPss(config.stdout) ? { usesPss: true } : {}),
    };
  }

  /** The user's name on the cluster; undefined when `id -un` fails or prints something else. */
  async #user(): Promise<string | undefined> {
    const r = await this.transport.run("id", ["-un"], { timeoutMs: this.timeoutMs }).catch(unlessUnreachable(undefined));
    const user = r?.stdout.trim();
    return r?.exitCode === 0 && user && /^[\w.@-]+$/.test(user) ? user : undefined;
  }

  /** Runs `sbatch --parsable [args] script` and returns the job id. */
  async submit(script: string, args: readonly string[] = []): Promise<string> {
    const argv = ["--parsable", ...args, script];
    this.calls.sbatch++;
    let result: RunResult;
    try {
      result = await this.transport.run("sbatch", argv, { timeoutMs: this.timeoutMs });
    } catch (error) {
      throw new SubmissionError(["sbatch", ...argv], -1, `could not run sbatch: ${(error as Error).message}`, { cause: error });
    }
    const id = result.exitCode === 0 ? parseSbatchOutput(result.stdout) : undefined;
    if (id === undefined) {
      throw new SubmissionError(["sbatch", ...argv], result.exitCode, result.stderr || `unexpected output: ${result.stdout}`);
    }
    return id;
  }

  /** One squeue call for all the given job ids, finished ones included (while Slurm still lists them). */
  async queue(jobIds: readonly string[]): Promise<QueueEntry[]> {
    if (jobIds.length === 0) return [];
    const argv = ["-h", "-t", "all", "-j", jobIds.join(","), "-o", "%i|%T"];
    this.calls.squeue++;
    const result = await this.transport.run("squeue", argv, { timeoutMs: this.timeoutMs }).catch(asSchedulerError(["squeue", ...argv]));
    if (result.exitCode !== 0) {
      // One id that Slurm has already forgotten is an error; several are not.
      if (/Invalid job id specified/i.test(result.stderr)) return [];
      throw new SchedulerError(["squeue", ...argv], result.exitCode, result.stderr);
    }
    return parseQueueLines(result.stdout);
  }

  /**
   * One sacct call for all the given job ids; undefined when accounting is
   * disabled (then sacct is not asked again) or sacct fails (asked again after
   * a minute).
   */
  async accounting(jobIds: readonly string[]): Promise<QueueEntry[] | undefined> {
    const stdout = await this.#sacct(jobIds, ["-X", "-o", "JobID,State"]);
    return stdout === undefined ? undefined : parseQueueLines(stdout);
  }

  /**
   * What Slurm's accounting says the given jobs (or whole arrays) used, per
   * job id (`A_i` for elements), from one sacct call that lists their steps;
   * undefined as for `accounting`.
   */
  async usage(jobIds: readonly string[]): Promise<Map<string, SacctUsage> | undefined> {
    const stdout = await this.#sacct(jobIds, ["-o", "JobID,Elapsed,TotalCPU,MaxRSS"]);
    return stdout === undefined ? undefined : parseSacctUsage(stdout);
  }

  /** `sacct -n -P -j <ids> <options>`'s output; undefined when accounting is off, or sacct failed (not asked again for a minute). */
  async #sacct(jobIds: readonly string[], options: readonly string[]): Promise<string | undefined> {
    if (jobIds.length === 0 || !this.accountingWorks || Date.now() < this.#sacctRetryAt) return undefined;
    const argv = ["-n", "-P", "-j", jobIds.join(","), ...options];
    this.calls.sacct++;
    const result = await this.transport.run("sacct", argv, { timeoutMs: this.timeoutMs }).catch(unlessUnreachable(undefined));
    if (result?.exitCode !== 0) {
      if (result && /accounting storage is disabled/i.test(result.stderr + result.stdout)) this.accountingWorks = false;
      else this.#sacctRetryAt = Date.now() + 60_000;
      return undefined;
    }
    return result.stdout;
  }

  /**
   * The ids of this user's jobs whose comment starts with `tag` (the array's
   * id for an array): a submission's jobs whose id the client never learned.
   */
  async tagged(tag: string): Promise<string[]> {
    const user = await this.#user();
    const argv = ["-h", "-t", "all", ...(user ? ["-u", user] : []), "-o", "%F|%k"];
    this.calls.squeue++;
    const result = await this.transport.run("squeue", argv, { timeoutMs: this.timeoutMs }).catch(asSchedulerError(["squeue", ...argv]));
    if (result.exitCode !== 0) throw new SchedulerError(["squeue", ...argv], result.exitCode, result.stderr);
    const ids = result.stdout.split("\n").flatMap((line) => {
      const bar = line.indexOf("|");
      const comment = line.slice(bar + 1).trim();
      return bar > 0 && (comment === tag || comment.startsWith(`${tag} `)) ? [line.slice(0, bar).trim()] : [];
    });
    return [...new Set(ids)];
  }

  /** scancel for a job or array element id. */
  async cancel(jobId: string): Promise<void> {
    this.calls.scancel++;
    const result = await this.transport.run("scancel", [jobId], { timeoutMs: this.timeoutMs }).catch(asSchedulerError(["scancel", jobId]));
    if (result.exitCode !== 0) throw new SchedulerError(["scancel", jobId], result.exitCode, result.stderr);
  }
}

/** A command that could not run (timed out, or no such program) as a SchedulerError; an unreachable cluster stays what it is. */
function asSchedulerError(command: readonly string[]): (error: unknown) => never {
  return (error) => {
    if (isUnreachable(error) || error instanceof SlurmkitError) throw error;
    throw new SchedulerError(command, -1, `could not run ${command[0]}: ${(error as Error).message}`, { cause: error });
  };
}

const schedulers = new Map<string, Scheduler>();

/** The one Scheduler per transport key, so that executors and the watcher count calls together. */
export function sharedScheduler(transport: Transport): Scheduler {
  let s = schedulers.get(transport.key);
  if (!s) {
    s = new Scheduler(transport);
    schedulers.set(transport.key, s);
  }
  return s;
}

/** Lets go of the scheduler of a transport key (its watcher was let go). */
export function forgetScheduler(key: string): void {
  schedulers.delete(key);
}

/** Whether a Slurm controller answers here: `squeue` runs and succeeds within `timeoutMs`. */
export async function slurmAvailable(transport: Transport = new LocalTransport(), timeoutMs = 15_000): Promise<boolean> {
  try {
    const r = await transport.run("squeue", ["-h", "-o", "%i", "-j", "1"], { timeoutMs });
    return r.exitCode === 0 || /Invalid job id/i.test(r.stderr);
  } catch {
    return false;
  }
}
