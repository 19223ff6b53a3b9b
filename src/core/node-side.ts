import type { JobEnvironment } from "./job-environment.js";

/** How an attempt is ending once the scheduler warned it. */
export type Ending = "TIMEOUT" | "PREEMPTED";

/** What a warning says: how the attempt ends, and when (ms since epoch) if known. */
export interface WarningNews {
  readonly ending: Ending;
  readonly deadline: number | undefined;
}

/**
 * A scheduler's node side: what the runner, and `jobEnvironment()`, learn
 * from the scheduler on the node where a task runs, and the two things they
 * ask of it (how a warned attempt ends, and a requeue). Each scheduler has
 * one (`src/slurm/node.ts`, `src/local/node.ts`), and a runner entry
 * (`src/<scheduler>/runner.ts`) that starts the runner with it. A node side
 * imports only `base`, `protocol` and `core`, so the runner stays small.
 */
export interface NodeSide {
  /** The scheduler's name, as in the runner's messages ("Slurm"). */
  readonly scheduler: string;
  /** Whether `env` is a process of this scheduler's jobs. */
  detects(env: NodeJS.ProcessEnv): boolean;
  /** Where this process runs: its job, rank, hosts, CPUs and GPUs. */
  environment(env: NodeJS.ProcessEnv): JobEnvironment;
  /** The text of this element's index in its array ("0" outside an array), and the variable it came from, for errors. */
  elementIndex(env: NodeJS.ProcessEnv): { readonly text: string; readonly from: string };
  /** The job the scheduler can requeue; undefined when it cannot (outside a batch job). */
  requeueableJob(env: NodeJS.ProcessEnv): string | undefined;
  /** Whether this process runs in a launcher's step, where the scheduler signals every rank itself. */
  inStep(env: NodeJS.ProcessEnv): boolean;
  /** What a packed task's process sees of its own share, as it would in a job of its own. */
  taskShare(cpusPerTask: number, memMb: number | undefined): NodeJS.ProcessEnv;
  /** A node's network address, for a rendezvous. */
  address(host: string): Promise<string>;
  /** How job `jobId`'s attempt ends, once warned; problems asking go to `report`. */
  ending(jobId: string, report: (line: string) => void): Promise<WarningNews>;
  /** Requeues job `jobId` (same id): an error message, or undefined when the scheduler took the request. */
  requeue(jobId: string): Promise<string | undefined>;
  /**
   * Submits a batch script from the node, with sbatch-style options: its job
   * id; `refused` when the scheduler said no or is not there (some sites
   * forbid submitting from compute nodes); `lost` when no answer came (the
   * job may exist). Absent where a node cannot submit.
   */
  submit?(script: string, args: readonly string[]): Promise<{ jobId: string } | { refused: string } | { lost: string }>;
  /**
   * The scheduler tells a rerun job nothing of its reruns (PBS: `run_count`
   * is on the server only), so `environment().restarts` is 0: the runner
   * reads the run folder instead (this job's attempt records, a worker's own
   * claims).
   */
  readonly restartsUnknown?: true;
  /** Whether job `jobId` (or an element of it) is still pending or running; undefined when the scheduler cannot say. */
  queued?(jobId: string): Promise<boolean | undefined>;
}

/** The id a task's records carry: `<array>_<index>` for an array element, else the job's id. */
export function recordJobId(environment: JobEnvironment): string {
  return environment.arrayJobId !== undefined && environment.arrayIndex !== undefined ? `${environment.arrayJobId}_${environment.arrayIndex}` : environment.jobId;
}
