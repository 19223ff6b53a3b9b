import { execFile } from "node:child_process";
import { lookup } from "node:dns/promises";
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

const int = (text: string | undefined, fallback: number): number => {
  const n = Number(text);
  return text !== undefined && text !== "" && Number.isInteger(n) && n >= 0 ? n : fallback;
};

/**
 * Where this task runs, read from Slurm's environment: call it inside a task.
 * A single-rank task (started by the batch script, not srun) is rank 0 of 1;
 * srun's ranks read their step's variables. Outside Slurm it describes this
 * process on this machine: rank 0 of 1, job id `local-<pid>`.
 *
 * @example
 * const { rank, worldSize, hosts } = jobEnvironment();
 */
export function jobEnvironment(env: NodeJS.ProcessEnv = process.env): JobEnvironment {
  const cpus = allowedCpus();
  const gpus = (env.CUDA_VISIBLE_DEVICES ?? "")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
  const name = env.SLURMD_NODENAME ?? hostname();
  if (!env.SLURM_JOB_ID) {
    const all = cpus.length ? cpus : Array.from({ length: availableParallelism() }, (_, i) => i);
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
      cpus: all,
      gpus,
    };
  }
  const inStep = inSrunStep(env);
  const hosts = expandHostlist((inStep ? env.SLURM_STEP_NODELIST : undefined) ?? env.SLURM_JOB_NODELIST ?? name);
  const array = env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID !== undefined;
  const common = {
    slurm: true,
    jobId: env.SLURM_JOB_ID,
    arrayJobId: array ? env.SLURM_ARRAY_JOB_ID : undefined,
    arrayIndex: array ? int(env.SLURM_ARRAY_TASK_ID, 0) : undefined,
    restarts: int(env.SLURM_RESTART_COUNT, 0),
    hostname: name,
    cpus,
    gpus,
  };
  if (!inStep) {
    return { ...common, rank: 0, localRank: 0, nodeRank: 0, worldSize: 1, localWorldSize: 1, nodeCount: 1, hosts: [name] };
  }
  const nodeRank = int(env.SLURM_NODEID, 0);
  const perNode = expandTasksPerNode(env.SLURM_STEP_TASKS_PER_NODE ?? env.SLURM_TASKS_PER_NODE ?? "");
  return {
    ...common,
    rank: int(env.SLURM_PROCID, 0),
    localRank: int(env.SLURM_LOCALID, 0),
    nodeRank,
    worldSize: int(env.SLURM_STEP_NUM_TASKS ?? env.SLURM_NTASKS, 1),
    localWorldSize: perNode[nodeRank] ?? 1,
    nodeCount: int(env.SLURM_STEP_NUM_NODES ?? env.SLURM_JOB_NUM_NODES, hosts.length),
    hosts,
  };
}

/** Whether this process runs in an srun step (not the batch script), where Slurm signals every process itself. */
export function inSrunStep(env: NodeJS.ProcessEnv): boolean {
  return env.SLURM_STEP_ID !== undefined && env.SLURM_STEP_ID !== "batch";
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

/** A node's address: its name if that resolves, else Slurm's NodeAddr for it (`scontrol show node`). */
export async function nodeAddress(node: string): Promise<string> {
  try {
    return (await lookup(node)).address;
  } catch {
    const text = await new Promise<string>((resolve) => {
      execFile("scontrol", ["show", "node", node], { timeout: 30_000 }, (error, stdout) => resolve(error ? "" : stdout));
    });
    const addr = /\bNodeAddr=(\S+)/.exec(text)?.[1];
    if (!addr) throw new Error(`Cannot find the address of node ${node}: its name does not resolve and scontrol shows no NodeAddr for it`);
    return addr;
  }
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
 * The variables of PyTorch's env:// rendezvous for this rank: MASTER_ADDR is
 * the address of rank 0's node (the first host), MASTER_PORT is derived from
 * the job id so every rank agrees without talking. Call it inside a task;
 * command tasks get them with `command(..., { torchDistributed: true })`.
 */
export async function torchDistributedEnv(environment: JobEnvironment = jobEnvironment()): Promise<TorchDistributedEnv> {
  const first = environment.hosts[0] ?? environment.hostname;
  return {
    MASTER_ADDR: environment.slurm ? await nodeAddress(first) : "127.0.0.1",
    MASTER_PORT: String(masterPort(environment.jobId, Number(process.env.SLURMKIT_SLOT ?? 0) || 0)),
    RANK: String(environment.rank),
    LOCAL_RANK: String(environment.localRank),
    WORLD_SIZE: String(environment.worldSize),
    LOCAL_WORLD_SIZE: String(environment.localWorldSize),
    NODE_RANK: String(environment.nodeRank),
  };
}
