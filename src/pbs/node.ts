// PBS's node side: what the runner and jobEnvironment() read from PBS's
// variables and `$PBS_NODEFILE` on the node, and the runner's requests to
// PBS (qrerun). Imports only base, protocol and core, as the runner bundles it.
import { execFile } from "node:child_process";
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { allowedCpus, envInt, localEnvironment, visibleGpus, type JobEnvironment } from "../core/job-environment.js";
import type { NodeSide } from "../core/node-side.js";

/** `12.server`, `12[3].server` as slurmkit's `12`, `12_3`. */
function slurmkitId(pbsId: string): string {
  const m = /^(\d+)(?:\[(\d*)\])?/.exec(pbsId);
  if (!m) return pbsId;
  return m[2] ? `${m[1]}_${m[2]}` : m[1]!;
}

/**
 * The hosts of a job in `$PBS_NODEFILE`'s order, each once, and how many
 * lines (MPI ranks, `mpiprocs` per chunk) each has: the file lists a host
 * once per rank it holds.
 */
export function parseNodefile(text: string): { hosts: string[]; ranksPerHost: number[] } {
  const hosts: string[] = [];
  const ranksPerHost: number[] = [];
  for (const line of text.split("\n")) {
    const host = line.trim();
    if (!host) continue;
    const at = hosts.indexOf(host);
    if (at === -1) {
      hosts.push(host);
      ranksPerHost.push(1);
    } else ranksPerHost[at]!++;
  }
  return { hosts, ranksPerHost };
}

/** This job's array and index when it is a subjob (PBS_JOBID `12[3].server`); undefined for a plain job. */
function subjobOf(env: NodeJS.ProcessEnv): { array: string; index: number } | undefined {
  const m = /^(\d+)\[(\d+)\]/.exec(env.PBS_JOBID ?? "");
  return m ? { array: m[1]!, index: Number(m[2]) } : undefined;
}

/** The rank variables of the MPI launchers PBS sites use: Cray PALS (ALCF), MPICH and Intel MPI (PMI), Open MPI, PMIx. */
const RANK_VARIABLES = ["PALS_RANKID", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"];
const LOCAL_RANK_VARIABLES = ["PALS_LOCAL_RANKID", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"];
const SIZE_VARIABLES = ["PALS_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"];

const first = (env: NodeJS.ProcessEnv, names: readonly string[]): string | undefined => names.map((n) => env[n]).find((v) => v !== undefined && /^\d+$/.test(v));

/**
 * Where slurmkit's own launcher (pbsdsh, src/pbs/launch.ts) placed this rank,
 * if it did in this job: its variables name the job, so ones carried into
 * another job (qsub -V) are not taken for it.
 */
function slurmkitRank(env: NodeJS.ProcessEnv): Pick<JobEnvironment, "rank" | "localRank" | "localWorldSize" | "nodeRank" | "worldSize" | "hosts"> | undefined {
  if (env.SLURMKIT_RANK_JOB === undefined || env.SLURMKIT_RANK_JOB !== env.PBS_JOBID) return undefined;
  const numbers = [env.SLURMKIT_RANK, env.SLURMKIT_LOCAL_RANK, env.SLURMKIT_LOCAL_WORLD_SIZE, env.SLURMKIT_NODE_RANK, env.SLURMKIT_WORLD_SIZE];
  if (!numbers.every((v) => v !== undefined && /^\d+$/.test(v))) return undefined;
  const [rank, localRank, localWorldSize, nodeRank, worldSize] = numbers.map(Number) as [number, number, number, number, number];
  return { rank, localRank, localWorldSize, nodeRank, worldSize, hosts: (env.SLURMKIT_HOSTS ?? "").split(" ").filter(Boolean) };
}

/** Whether this process is a rank that a launcher started: slurmkit's, or an MPI launcher (it reads its rank from the launcher's variables). */
function inLauncher(env: NodeJS.ProcessEnv): boolean {
  return slurmkitRank(env) !== undefined || first(env, RANK_VARIABLES) !== undefined;
}

/**
 * Where this task runs, from PBS's variables, as ezpz reads them: the job's
 * hosts from `$PBS_NODEFILE` (each once, in its order), and, in a rank an
 * MPI launcher started, its rank from the launcher's variables and the
 * world's size from theirs or the nodefile's lines. The batch script's own
 * process is rank 0 of 1 on its node, as on Slurm.
 */
export function pbsEnvironment(env: NodeJS.ProcessEnv, nodefile: (path: string) => string = (p) => readFileSync(p, "utf8")): JobEnvironment {
  if (!env.PBS_JOBID) return localEnvironment(env);
  const name = hostname().split(".")[0]!;
  // From PBS_JOBID (12[3].server): qsub -V may carry PBS_ARRAY_* in from the job that submitted this one.
  const subjob = subjobOf(env);
  const common = {
    slurm: false,
    jobId: slurmkitId(env.PBS_JOBID),
    arrayJobId: subjob?.array,
    arrayIndex: subjob?.index,
    // PBS tells a rerun job nothing of its reruns (run_count is on the server only).
    restarts: 0,
    hostname: name,
    cpus: allowedCpus(),
    gpus: visibleGpus(env),
  };
  if (!inLauncher(env)) return { ...common, rank: 0, localRank: 0, nodeRank: 0, worldSize: 1, localWorldSize: 1, nodeCount: 1, hosts: [name] };
  const own = slurmkitRank(env);
  // The launcher read the nodefile on the job's first host: a rank elsewhere may not see it.
  if (own) return { ...common, ...own, hosts: own.hosts.length ? own.hosts : [name], nodeCount: Math.max(1, own.hosts.length) };
  let parsed: { hosts: string[]; ranksPerHost: number[] } = { hosts: [name], ranksPerHost: [1] };
  try {
    if (env.PBS_NODEFILE) parsed = parseNodefile(nodefile(env.PBS_NODEFILE));
  } catch {
    // No nodefile to read (a rank on a node that cannot see it): this node alone.
  }
  const short = parsed.hosts.map((h) => h.split(".")[0]!);
  const nodeRank = Math.max(0, short.indexOf(name));
  const lines = parsed.ranksPerHost.reduce((a, b) => a + b, 0);
  return {
    ...common,
    rank: envInt(first(env, RANK_VARIABLES), 0),
    localRank: envInt(first(env, LOCAL_RANK_VARIABLES), 0),
    nodeRank,
    worldSize: envInt(first(env, SIZE_VARIABLES), lines),
    localWorldSize: parsed.ranksPerHost[nodeRank] ?? 1,
    nodeCount: parsed.hosts.length,
    hosts: parsed.hosts,
  };
}

function run(program: string, args: readonly string[], timeoutMs = 60_000): Promise<{ ok: boolean; stderr: string; signal: string | undefined }> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout: timeoutMs }, (error, _stdout, stderr) =>
      resolve({ ok: !error, stderr: stderr || (error?.message ?? ""), signal: error?.killed ? undefined : (error?.signal ?? undefined) }),
    );
  });
}

/** PBS's node side. */
export const pbsNode: NodeSide = {
  scheduler: "PBS",
  detects: (env) => env.PBS_JOBID !== undefined && env.PBS_ENVIRONMENT !== undefined,
  environment: (env) => pbsEnvironment(env),
  elementIndex: (env) => ({ text: String(subjobOf(env)?.index ?? 0), from: "PBS_JOBID" }),
  requeueableJob: (env) => env.PBS_JOBID,
  restartsUnknown: true,
  inStep: inLauncher,
  // What one task gets, not what the element holds: PBS's own words for a job's CPUs.
  taskShare: (cpusPerTask) => ({ NCPUS: String(cpusPerTask), OMP_NUM_THREADS: String(cpusPerTask) }),
  address: async (host) => (await lookup(host)).address,
  // PBS warns no job before its walltime: the only warning a task gets is the runner's own, ahead of the walltime.
  ending: async () => ({ ending: "TIMEOUT", deadline: undefined }),
  // qrerun from inside the job returns once the server reruns it, and MoM's SIGTERM to the job's processes may end it first: a qrerun killed by a signal was taken.
  requeue: async (jobId) => {
    const r = await run("qrerun", [jobId]);
    return r.ok || r.signal !== undefined ? undefined : `qrerun ${jobId} failed: ${r.stderr.trim()}`;
  },
};
