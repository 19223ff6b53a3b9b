// Parsers of Slurm's command output (squeue, sacct, sbatch, sinfo, scontrol): pure functions of text.
import { parseSlurmState } from "./states.js";
import { parseDurationSeconds } from "./units.js";
import type { QueueEntry } from "../engine/scheduler.js";

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
    out.push({ ...id, state: parseSlurmState(rawState), rawState: rawState.trim() });
  }
  return out;
}

/** What Slurm's accounting says one job (an array element, or a job of its own) used. */
export interface SacctUsage {
  /** Elapsed, seconds. */
  readonly elapsedSeconds: number;
  /** TotalCPU (user + system of every step), seconds. */
  readonly cpuSeconds: number;
  /** The largest MaxRSS of its steps, MiB; undefined when no step shows one (a job shorter than the gatherer's interval). */
  readonly maxRssMb: number | undefined;
}

/** A sacct time: `[D-][HH:]MM:SS[.mmm]`, in seconds; undefined for anything else. */
export function parseSacctSeconds(text: string): number | undefined {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1] ?? 0) * 86_400 + Number(m[2] ?? 0) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/** A sacct memory figure (`138792K`, `1.5G`, `0`) in MiB; undefined when empty. */
export function parseSacctMb(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGTP]?)$/.exec(text.trim());
  if (!m) return undefined;
  const power = { "": -2, K: -1, M: 0, G: 1, T: 2, P: 3 }[m[2] as "" | "K" | "M" | "G" | "T" | "P"];
  return Number(m[1]) * 1024 ** power;
}

/**
 * Parses `sacct -n -P -o JobID,Elapsed,TotalCPU,MaxRSS` (steps included):
 * per job (`A` or `A_i`), its Elapsed and TotalCPU from its own line, and
 * the largest MaxRSS of its steps (`A_i.batch`, `A_i.0`, ...).
 */
export function parseSacctUsage(stdout: string): Map<string, SacctUsage> {
  const jobs = new Map<string, { elapsedSeconds: number; cpuSeconds: number; maxRssMb: number | undefined }>();
  const rss = new Map<string, number>();
  for (const line of stdout.split("\n")) {
    const [id, elapsed, cpu, maxRss] = line.split("|");
    if (!id || maxRss === undefined) continue;
    const dot = id.indexOf(".");
    const job = dot < 0 ? id.trim() : id.slice(0, dot).trim();
    const mb = parseSacctMb(maxRss);
    if (mb !== undefined) rss.set(job, Math.max(rss.get(job) ?? 0, mb));
    if (dot >= 0) continue;
    const elapsedSeconds = parseSacctSeconds(elapsed ?? "");
    const cpuSeconds = parseSacctSeconds(cpu ?? "");
    if (elapsedSeconds !== undefined && cpuSeconds !== undefined) jobs.set(job, { elapsedSeconds, cpuSeconds, maxRssMb: undefined });
  }
  for (const [job, usage] of jobs) usage.maxRssMb = rss.get(job);
  return jobs;
}

/** Parses `sbatch --parsable` output: "123" or "123;cluster". */
export function parseSbatchOutput(stdout: string): string | undefined {
  const m = /^(\d+)(?:;\S+)?$/m.exec(stdout.trim());
  return m?.[1];
}

/** One node's CPUs, memory, GPUs and partitions, as sinfo lists them. */
export interface NodeCpus {
  readonly name: string;
  readonly cpus: number;
  readonly partitions: readonly string[];
  /** True when one of its partitions is the cluster's default (sinfo marks it with `*`). */
  readonly inDefaultPartition: boolean;
  /** Memory in megabytes, when sinfo said. */
  readonly memoryMb?: number;
  /** GPUs (gres `gpu` entries), when sinfo said. */
  readonly gpus?: number;
  /** False when sinfo says the node cannot take jobs (down, drained, failing, in maintenance). */
  readonly usable?: boolean;
}

/** The key of the default partition's time limit in parseSinfoNodes' `maxTimes`. */
export const DEFAULT_PARTITION = "*";

/** The sinfo format parseSinfoNodes reads. */
export const SINFO_NODE_FORMAT = "%N|%c|%P|%m|%G|%l|%t";

/** sinfo's short states of nodes that take no jobs. */
const UNUSABLE = /^(down|drain|drng|fail|failg|maint|inval|unk|futr|pow_dn|powered_down|no_respond|boot_fail)/;

/** GPUs in a node's gres text such as `gpu:2`, `gpu:a100:4(S:0-1)` or `(null)`. */
export function gpusInGres(gres: string): number {
  let gpus = 0;
  for (const entry of gres.split(/,(?![^(]*\))/)) {
    const parts = entry.replace(/\(.*\)$/, "").split(":");
    if (parts[0] === "gpu" && /^\d+$/.test(parts.at(-1) ?? "")) gpus += Number(parts.at(-1));
  }
  return gpus;
}

/**
 * Reads `sinfo --noheader --Node --format=%N|%c|%P|%m|%G|%l|%t` output (the
 * first three columns suffice): one line per node and partition. Partitions' time
 * limits go into `maxTimes` (undefined for infinite).
 */
export function parseSinfoNodes(stdout: string, maxTimes?: Map<string, number | undefined>): NodeCpus[] {
  const nodes = new Map<string, { name: string; cpus: number; partitions: string[]; inDefaultPartition: boolean; memoryMb?: number; gpus?: number; usable?: boolean }>();
  for (const line of stdout.split("\n")) {
    const [name, cpus, partition, memory, gres, limit, state] = line.trim().split("|");
    if (!name || !cpus || !/^\d+$/.test(cpus) || !partition) continue;
    const node = nodes.get(name) ?? { name, cpus: Number(cpus), partitions: [], inDefaultPartition: false };
    const bare = partition.replace(/\*$/, "");
    node.partitions.push(bare);
    if (partition.endsWith("*")) node.inDefaultPartition = true;
    if (memory !== undefined && /^\d+$/.test(memory)) node.memoryMb = Number(memory);
    if (gres !== undefined) node.gpus = gpusInGres(gres);
    if (state !== undefined) node.usable = !UNUSABLE.test(state.replace(/[*~#!%$@^-]+$/, ""));
    if (limit !== undefined && maxTimes) {
      const seconds = /^(infinite|unlimited)$/i.test(limit) ? undefined : parseDurationSeconds(limit);
      maxTimes.set(bare, seconds);
      if (partition.endsWith("*")) maxTimes.set(DEFAULT_PARTITION, seconds);
    }
    nodes.set(name, node);
  }
  return [...nodes.values()];
}

/** Reads MaxArraySize from `scontrol show config` output. */
export function parseMaxArraySize(stdout: string): number | undefined {
  const m = /^\s*MaxArraySize\s*=\s*(\d+)\s*$/m.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

/** The memory Slurm gives a job that asks for none: per CPU (DefMemPerCPU) or per node (DefMemPerNode), in MiB. */
export type DefaultMemory = { readonly perCpuMb: number } | { readonly perNodeMb: number };

/** Reads DefMemPerCPU or DefMemPerNode from `scontrol show config` output; undefined when unlimited or absent. */
export function parseDefaultMemory(stdout: string): DefaultMemory | undefined {
  const m = /^\s*DefMemPer(CPU|Node)\s*=\s*(\d+)\s*$/m.exec(stdout);
  if (!m || Number(m[2]) === 0) return undefined;
  return m[1] === "CPU" ? { perCpuMb: Number(m[2]) } : { perNodeMb: Number(m[2]) };
}

/** Whether Slurm's gatherer counts a job's memory as proportional set sizes (`JobAcctGatherParams=UsePss`), from `scontrol show config`. */
export function parseUsesPss(stdout: string): boolean {
  return /^\s*JobAcctGatherParams\s*=.*\bUsePss\b/im.test(stdout);
}

/**
 * Each partition's own default memory (DefMemPerCPU or DefMemPerNode), from
 * `scontrol show partition -o`: undefined where the partition sets none and
 * the cluster's applies. The default partition is also under
 * DEFAULT_PARTITION.
 */
export function parsePartitionMemory(stdout: string): Map<string, DefaultMemory | undefined> {
  const out = new Map<string, DefaultMemory | undefined>();
  for (const line of stdout.split("\n")) {
    const name = /(?:^|\s)PartitionName=(\S+)/.exec(line)?.[1];
    if (name === undefined) continue;
    const m = /(?:^|\s)DefMemPer(CPU|Node)=(\d+)(?:\s|$)/.exec(line);
    const memory = !m || Number(m[2]) === 0 ? undefined : m[1] === "CPU" ? { perCpuMb: Number(m[2]) } : { perNodeMb: Number(m[2]) };
    out.set(name, memory);
    if (/(?:^|\s)Default=YES(?:\s|$)/.test(line)) out.set(DEFAULT_PARTITION, memory);
  }
  return out;
}
