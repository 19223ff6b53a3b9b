import { readFileSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";

/** Where a task runs: its job, its rank among the job's ranks, the hosts and what this rank may use. */
export interface JobEnvironment {
  /** Whether the task runs under Slurm (false: the local equivalent). */
  readonly slurm: boolean;
  /** Slurm's job id (`SLURM_JOB_ID`: an array element's own id), or `local-<pid>`. */
  readonly jobId: string;
  /** The array's id and this element's index, for array elements. */
  readonly arrayJobId: string | undefined;
  readonly arrayIndex: number | undefined;
  /** How many times Slurm requeued the job before this attempt (`SLURM_RESTART_COUNT`). */
  readonly restarts: number;
  /** Global rank (`SLURM_PROCID`), rank on this node (`SLURM_LOCALID`) and this node's number (`SLURM_NODEID`). */
  readonly rank: number;
  readonly localRank: number;
  readonly nodeRank: number;
  /** Ranks in all (`SLURM_NTASKS`), ranks on this node, and nodes. */
  readonly worldSize: number;
  readonly localWorldSize: number;
  readonly nodeCount: number;
  /** This node's name, as Slurm calls it. */
  readonly hostname: string;
  /** Every node of the job (or step), the compressed list expanded: `n[1-2]` is `["n1", "n2"]`. */
  readonly hosts: readonly string[];
  /** The CPU ids this rank may run on. */
  readonly cpus: readonly number[];
  /** The GPUs this rank may use (`CUDA_VISIBLE_DEVICES`), [] when none. */
  readonly gpus: readonly string[];
}

/**
 * Expands a Slurm host list: `n[1-3,5]` to n1, n2, n3, n5, keeping zero
 * padding (`n[08-10]`), with several bracket groups (`r[1-2]-n[1-2]`) and
 * several comma-separated entries (`a,b[1-2]`).
 */
export function expandHostlist(list: string): string[] {
  const out: string[] = [];
  for (const entry of splitTopLevel(list.trim())) {
    if (entry !== "") out.push(...expandEntry(entry));
  }
  return out;
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function expandEntry(entry: string): string[] {
  const open = entry.indexOf("[");
  if (open < 0) return [entry];
  const close = entry.indexOf("]", open);
  if (close < 0) throw new Error(`Bad host list entry '${entry}': a '[' without ']'`);
  const head = entry.slice(0, open);
  const rest = expandEntry(entry.slice(close + 1));
  const out: string[] = [];
  for (const range of entry.slice(open + 1, close).split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (!m) throw new Error(`Bad host list range '${range}' in '${entry}': expected numbers such as 1-3`);
    const width = m[1]!.length;
    for (let n = Number(m[1]); n <= Number(m[2] ?? m[1]); n++) {
      const name = head + String(n).padStart(width, "0");
      for (const tail of rest) out.push(name + tail);
    }
  }
  return out;
}

/** Expands Slurm's tasks-per-node list: `2(x3),1` is [2, 2, 2, 1]. */
export function expandTasksPerNode(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (!m) return [];
    for (let i = 0; i < Number(m[2] ?? 1); i++) out.push(Number(m[1]));
  }
  return out;
}

/** Parses a CPU list such as "0-3,8,10-11"; [] when it is not one. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return [];
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

/** The CPUs this process may run on (Cpus_allowed_list), or [] when unknown. */
export function allowedCpus(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? parseCpuList(m[1]!) : [];
  } catch {
    return [];
  }
}

/** A non-negative integer from the environment, or `fallback`. */
export function envInt(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return text !== undefined && text !== "" && Number.isInteger(n) && n >= 0 ? n : fallback;
}

/** The GPUs this process may use (`CUDA_VISIBLE_DEVICES`), [] when none. */
export function visibleGpus(env: NodeJS.ProcessEnv): string[] {
  return (env.CUDA_VISIBLE_DEVICES ?? "")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
}

/** This process on this machine, outside any scheduler: rank 0 of 1, job id `SLURMKIT_JOB_ID` or `local-<pid>`. */
export function localEnvironment(env: NodeJS.ProcessEnv): JobEnvironment {
  const cpus = allowedCpus();
  const name = hostname();
  return {
    slurm: false,
    jobId: env.SLURMKIT_JOB_ID ?? `local-${process.pid}`,
    arrayJobId: undefined,
    arrayIndex: undefined,
    restarts: 0,
    rank: 0,
    localRank: 0,
    nodeRank: 0,
    worldSize: 1,
    localWorldSize: 1,
    nodeCount: 1,
    hostname: name,
    hosts: [name],
    cpus: cpus.length ? cpus : Array.from({ length: availableParallelism() }, (_, i) => i),
    gpus: visibleGpus(env),
  };
}

/**
 * The rendezvous port of a job: the same on every rank, from the job id alone
 * (20000-29999). A worker's slots share their worker's job id, so each slot
 * gets its own: `slot` × 1000 further on.
 */
export function masterPort(jobId: string, slot = 0): number {
  const n = Number(/\d+/.exec(jobId)?.[0] ?? 0);
  return 20000 + ((n + slot * 1000) % 10000);
}

/** PyTorch's env:// rendezvous variables. */
export interface TorchDistributedEnv {
  readonly MASTER_ADDR: string;
  readonly MASTER_PORT: string;
  readonly RANK: string;
  readonly LOCAL_RANK: string;
  readonly WORLD_SIZE: string;
  readonly LOCAL_WORLD_SIZE: string;
  readonly NODE_RANK: string;
}

/**
 * The variables of PyTorch's env:// rendezvous for one rank: MASTER_ADDR is
 * the address of rank 0's node (the first host, as the scheduler's node side
 * resolves it: 127.0.0.1 for local processes), MASTER_PORT is derived from
 * the job id so every rank agrees without talking.
 */
export async function torchEnvironment(environment: JobEnvironment, address: (host: string) => Promise<string>): Promise<TorchDistributedEnv> {
  const first = environment.hosts[0] ?? environment.hostname;
  return {
    MASTER_ADDR: await address(first),
    MASTER_PORT: String(masterPort(environment.jobId, Number(process.env.SLURMKIT_SLOT ?? 0) || 0)),
    RANK: String(environment.rank),
    LOCAL_RANK: String(environment.localRank),
    WORLD_SIZE: String(environment.worldSize),
    LOCAL_WORLD_SIZE: String(environment.localWorldSize),
    NODE_RANK: String(environment.nodeRank),
  };
}
