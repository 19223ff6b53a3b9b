// Slurm's node side: what the runner and jobEnvironment() read from Slurm's
// variables on the node, and the runner's requests to Slurm (squeue for how a
// warned job ends, scontrol to requeue it, sbatch for the next round of
// workers). Imports only base, protocol and core, as the runner bundles it.
import { execFile } from "node:child_process";
import { lookup } from "node:dns/promises";
import { hostname } from "node:os";
import { allowedCpus, envInt, expandHostlist, expandTasksPerNode, localEnvironment, visibleGpus, type JobEnvironment } from "../core/job-environment.js";
import type { NodeSide, WarningNews } from "../core/node-side.js";

function run(program: string, args: readonly string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv): Promise<{ ok: boolean; stdout: string; stderr: string; missing: boolean; killed: boolean }> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout: timeoutMs, ...(env ? { env } : {}) }, (error, stdout, stderr) =>
      resolve({ ok: !error, stdout, stderr: stderr || (error?.message ?? ""), missing: error?.code === "ENOENT", killed: error?.killed === true }),
    );
  });
}

/** How long sbatch on a node may take before its answer counts as lost. */
const NODE_SBATCH_TIMEOUT_MS = 60_000;

/**
 * sbatch from the node, with this job's own Slurm variables left out (the
 * new job gets its own), but SLURM_CONF and the SBATCH_* input variables
 * kept.
 */
async function slurmSubmit(script: string, args: readonly string[]): Promise<{ jobId: string } | { refused: string } | { lost: string }> {
  // SLURM_CONF says where the cluster's configuration is, and SBATCH_* what the client's sbatch read (an account, say), as for round 0.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k === "SLURM_CONF" || !/^(SLURM_|SLURMKIT_)/.test(k)));
  const r = await run("sbatch", ["--parsable", ...args, script], NODE_SBATCH_TIMEOUT_MS, env);
  if (r.ok) {
    const jobId = /^(\d+)/.exec(r.stdout.trim())?.[1];
    return jobId ? { jobId } : { lost: `sbatch answered ${JSON.stringify(r.stdout.trim())}, not a job id` };
  }
  if (r.missing) return { refused: "sbatch is not on this node's PATH" };
  if (r.killed) return { lost: `sbatch gave no answer within ${NODE_SBATCH_TIMEOUT_MS / 1000} s` };
  return { refused: `sbatch failed: ${r.stderr.trim().split("\n")[0]}` };
}

/** Whether this process runs in an srun step (not the batch script), where Slurm signals every process itself. */
function inSrunStep(env: NodeJS.ProcessEnv): boolean {
  return env.SLURM_STEP_ID !== undefined && env.SLURM_STEP_ID !== "batch";
}

/**
 * Where this task runs, from Slurm's variables. A single-rank task (started
 * by the batch script, not srun) is rank 0 of 1; srun's ranks read their
 * step's variables.
 */
function slurmEnvironment(env: NodeJS.ProcessEnv): JobEnvironment {
  if (!env.SLURM_JOB_ID) return localEnvironment(env);
  const name = env.SLURMD_NODENAME ?? hostname();
  const inStep = inSrunStep(env);
  const array = env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID !== undefined;
  const common = {
    slurm: true,
    jobId: env.SLURM_JOB_ID,
    arrayJobId: array ? env.SLURM_ARRAY_JOB_ID : undefined,
    arrayIndex: array ? envInt(env.SLURM_ARRAY_TASK_ID, 0) : undefined,
    restarts: envInt(env.SLURM_RESTART_COUNT, 0),
    hostname: name,
    cpus: allowedCpus(),
    gpus: visibleGpus(env),
  };
  if (!inStep) {
    return { ...common, rank: 0, localRank: 0, nodeRank: 0, worldSize: 1, localWorldSize: 1, nodeCount: 1, hosts: [name] };
  }
  const hosts = expandHostlist(env.SLURM_STEP_NODELIST ?? env.SLURM_JOB_NODELIST ?? name);
  const nodeRank = envInt(env.SLURM_NODEID, 0);
  const perNode = expandTasksPerNode(env.SLURM_STEP_TASKS_PER_NODE ?? env.SLURM_TASKS_PER_NODE ?? "");
  return {
    ...common,
    rank: envInt(env.SLURM_PROCID, 0),
    localRank: envInt(env.SLURM_LOCALID, 0),
    nodeRank,
    worldSize: envInt(env.SLURM_STEP_NUM_TASKS ?? env.SLURM_NTASKS, 1),
    localWorldSize: perNode[nodeRank] ?? 1,
    nodeCount: envInt(env.SLURM_STEP_NUM_NODES ?? env.SLURM_JOB_NUM_NODES, hosts.length),
    hosts,
  };
}

/** A node's address: its name if that resolves, else Slurm's NodeAddr for it (`scontrol show node`). */
async function nodeAddress(node: string): Promise<string> {
  try {
    return (await lookup(node)).address;
  } catch {
    const shown = await run("scontrol", ["show", "node", node], 30_000);
    const addr = /\bNodeAddr=(\S+)/.exec(shown.ok ? shown.stdout : "")?.[1];
    if (!addr) throw new Error(`Cannot find the address of node ${node}: its name does not resolve and scontrol shows no NodeAddr for it`);
    return addr;
  }
}

/**
 * How the job's attempt is ending, as Slurm says: a job being preempted has a
 * PreemptTime; one warned of its time limit has none. Also its end time.
 * When squeue cannot answer, it says so through `report` and takes it as the
 * time limit's.
 */
async function slurmEnding(jobId: string, report: (line: string) => void): Promise<WarningNews> {
  const r = await run("squeue", ["-h", "-j", jobId, "-O", "PreemptTime:40,EndTime:40"], 10_000);
  if (!r.ok) report(`slurmkit runner: could not ask squeue how job ${jobId} ends (${r.stderr.trim()}); taking the warning as the time limit's\n`);
  const [preempt, end] = r.stdout.trim().split(/\s+/);
  const preempted = /^\d{4}-\d\d-\d\dT/.test(preempt ?? "");
  const deadline = end && /^\d{4}-\d\d-\d\dT/.test(end) ? Date.parse(end) : undefined;
  return { ending: preempted ? "PREEMPTED" : "TIMEOUT", deadline: Number.isNaN(deadline) ? undefined : deadline };
}

/**
 * Requeues the job (same id): allows it first, as slurmkit submits with
 * `--no-requeue` so that Slurm never reruns a task by itself.
 */
async function slurmRequeue(jobId: string): Promise<string | undefined> {
  const allow = await run("scontrol", ["update", `JobId=${jobId}`, "Requeue=1"]);
  if (!allow.ok) return `scontrol update JobId=${jobId} Requeue=1 failed: ${allow.stderr.trim()}`;
  const requeue = await run("scontrol", ["requeue", jobId]);
  return requeue.ok ? undefined : `scontrol requeue ${jobId} failed: ${requeue.stderr.trim()}`;
}

/** Whether squeue still lists job `jobId` (any element); undefined when squeue cannot say. */
async function slurmQueued(jobId: string): Promise<boolean | undefined> {
  const r = await run("squeue", ["-h", "-j", jobId, "-o", "%T"], 30_000);
  if (r.ok) return r.stdout.trim() !== "";
  return /invalid job id/i.test(r.stderr) ? false : undefined;
}

/** Slurm's node side. */
export const slurmNode: NodeSide = {
  scheduler: "Slurm",
  detects: (env) => env.SLURM_JOB_ID !== undefined,
  environment: slurmEnvironment,
  elementIndex: (env) => ({ text: env.SLURM_ARRAY_TASK_ID ?? "0", from: "SLURM_ARRAY_TASK_ID" }),
  requeueableJob: (env) => env.SLURM_JOB_ID,
  inStep: inSrunStep,
  // What one task gets, not what the element holds.
  taskShare: (cpusPerTask, memMb) => ({
    SLURM_CPUS_PER_TASK: String(cpusPerTask),
    ...(memMb !== undefined ? { SLURM_MEM_PER_NODE: String(memMb), SLURM_MEM_PER_CPU: undefined } : {}),
  }),
  address: nodeAddress,
  ending: slurmEnding,
  requeue: slurmRequeue,
  submit: slurmSubmit,
  queued: slurmQueued,
};
