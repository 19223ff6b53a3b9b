import { SchedulerError, SubmissionError } from "./errors.js";
import { parseJobState, type JobState } from "./job-state.js";
import { unlessUnreachable, type Transport } from "./transport.js";

/** One line of squeue or sacct output: a job id or an array range, and its state. */
export interface QueueEntry {
  /** The job id (the array's id for array elements). */
  readonly jobId: string;
  /** The array indices this line covers; undefined for a job that is not an array element. */
  readonly indices?: readonly number[];
  readonly state: JobState;
  /** The raw state text, e.g. "CANCELLED by 0". */
  readonly rawState: string;
}

/**
 * Parses a job id as squeue or sacct print it: "123", "123_4", or an array
 * range "123_[0-3,7,9-15%2]" (the "%2" is the parallelism limit).
 */
export function parseJobId(text: string): { jobId: string; indices?: number[] } | undefined {
  const m = /^(\d+)(?:_(\d+|\[([0-9,\-%:]+)\]))?(?:\+\d+)?$/.exec(text.trim());
  if (!m) return undefined;
  const [, jobId, single, range] = m;
  if (single === undefined) return { jobId: jobId! };
  if (range === undefined) return { jobId: jobId!, indices: [Number(single)] };
  const indices: number[] = [];
  for (const part of range.split("%")[0]!.split(",")) {
    const r = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part);
    if (!r) return undefined;
    const lo = Number(r[1]);
    const hi = r[2] === undefined ? lo : Number(r[2]);
    const step = r[3] === undefined ? 1 : Number(r[3]);
    for (let i = lo; i <= hi; i += step) indices.push(i);
  }
  return { jobId: jobId!, indices };
}

/** Parses `id|state` lines (squeue -o '%i|%T', sacct -P -o JobID,State). Unparseable lines are skipped. */
export function parseQueueLines(stdout: string): QueueEntry[] {
  const out: QueueEntry[] = [];
  for (const line of stdout.split("\n")) {
    const [idText, rawState] = line.split("|");
    if (!idText || rawState === undefined) continue;
    const id = parseJobId(idText);
    if (!id) continue;
    out.push({ ...id, state: parseJobState(rawState), rawState: rawState.trim() });
  }
  return out;
}

/** Parses `sbatch --parsable` output: "123" or "123;cluster". */
export function parseSbatchOutput(stdout: string): string | undefined {
  const m = /^(\d+)(?:;\S+)?$/m.exec(stdout.trim());
  return m?.[1];
}

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
}

/** One node's CPU count and partitions, as sinfo lists them. */
export interface NodeCpus {
  readonly name: string;
  readonly cpus: number;
  readonly partitions: readonly string[];
  /** True when one of its partitions is the cluster's default (sinfo marks it with `*`). */
  readonly inDefaultPartition: boolean;
}

/** Reads `sinfo --noheader --Node --format=%N|%c|%P` output: one line per node and partition. */
export function parseSinfoNodes(stdout: string): NodeCpus[] {
  const nodes = new Map<string, { name: string; cpus: number; partitions: string[]; inDefaultPartition: boolean }>();
  for (const line of stdout.split("\n")) {
    const [name, cpus, partition] = line.trim().split("|");
    if (!name || !cpus || !/^\d+$/.test(cpus) || !partition) continue;
    const node = nodes.get(name) ?? { name, cpus: Number(cpus), partitions: [], inDefaultPartition: false };
    node.partitions.push(partition.replace(/\*$/, ""));
    if (partition.endsWith("*")) node.inDefaultPartition = true;
    nodes.set(name, node);
  }
  return [...nodes.values()];
}

/**
 * How many one-node jobs of `cpusPerTask` CPUs fit on the partition's nodes at
 * once (the default partition without one; a comma list means any of them).
 * Undefined when no node is known.
 */
export function concurrentSlots(nodes: readonly NodeCpus[], partition: string | undefined, cpusPerTask = 1): number | undefined {
  const wanted = partition?.split(",").map((p) => p.trim());
  const inPartition = nodes.filter((n) => (wanted ? n.partitions.some((p) => wanted.includes(p)) : n.inDefaultPartition));
  if (inPartition.length === 0) return undefined;
  return inPartition.reduce((sum, n) => sum + Math.floor(n.cpus / cpusPerTask), 0);
}

/** Reads MaxArraySize from `scontrol show config` output. */
export function parseMaxArraySize(stdout: string): number | undefined {
  const m = /^\s*MaxArraySize\s*=\s*(\d+)\s*$/m.exec(stdout);
  return m ? Number(m[1]) : undefined;
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
   * Reads MaxArraySize (`scontrol show config`) and the user's MaxSubmitJobs
   * (`sacctmgr`, when accounting shows it; the smallest over their associations)
   * and the nodes' CPUs (`sinfo`, when it answers).
   */
  async limits(): Promise<ClusterLimits> {
    this.calls.limits++;
    const config = await this.transport.run("scontrol", ["show", "config"], { timeoutMs: this.timeoutMs });
    const maxArraySize = config.exitCode === 0 ? parseMaxArraySize(config.stdout) : undefined;
    if (maxArraySize === undefined) {
      throw new SchedulerError(["scontrol", "show", "config"], config.exitCode, config.stderr.trim() || "no MaxArraySize line in its output");
    }
    let maxSubmitJobs: number | undefined;
    this.calls.limits++;
    const assoc = await this.transport
      .run("sacctmgr", ["--noheader", "--parsable2", "show", "assoc", "where", `user=${await this.#user()}`, "format=MaxSubmit"], { timeoutMs: this.timeoutMs })
      .catch(unlessUnreachable(undefined));
    if (assoc?.exitCode === 0) {
      const values = assoc.stdout.split("\n").map((l) => l.trim()).filter((l) => /^\d+$/.test(l)).map(Number);
      if (values.length) maxSubmitJobs = Math.min(...values);
    }
    this.calls.limits++;
    const sinfo = await this.transport
      .run("sinfo", ["--noheader", "--Node", "--format=%N|%c|%P"], { timeoutMs: this.timeoutMs })
      .catch(unlessUnreachable(undefined));
    const nodes = sinfo?.exitCode === 0 ? parseSinfoNodes(sinfo.stdout) : [];
    return { maxArraySize, maxSubmitJobs, nodes };
  }

  async #user(): Promise<string> {
    const r = await this.transport.run("id", ["-un"], { timeoutMs: this.timeoutMs });
    return r.stdout.trim();
  }

  /** Runs `sbatch --parsable [args] script` and returns the job id. */
  async submit(script: string, args: readonly string[] = []): Promise<string> {
    const argv = ["--parsable", ...args, script];
    this.calls.sbatch++;
    let result;
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
    const result = await this.transport.run("squeue", argv, { timeoutMs: this.timeoutMs });
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
    if (jobIds.length === 0 || !this.accountingWorks || Date.now() < this.#sacctRetryAt) return undefined;
    const argv = ["-n", "-P", "-X", "-j", jobIds.join(","), "-o", "JobID,State"];
    this.calls.sacct++;
    const result = await this.transport.run("sacct", argv, { timeoutMs: this.timeoutMs }).catch(unlessUnreachable(undefined));
    if (!result || result.exitCode !== 0) {
      if (result && /accounting storage is disabled/i.test(result.stderr + result.stdout)) this.accountingWorks = false;
      else this.#sacctRetryAt = Date.now() + 60_000;
      return undefined;
    }
    return parseQueueLines(result.stdout);
  }

  /** scancel for a job or array element id. */
  async cancel(jobId: string): Promise<void> {
    this.calls.scancel++;
    const result = await this.transport.run("scancel", [jobId], { timeoutMs: this.timeoutMs });
    if (result.exitCode !== 0) throw new SchedulerError(["scancel", jobId], result.exitCode, result.stderr);
  }
}
