// zod/mini: the runner reads these records too, and mini bundles small
// (+64 KB in the runner's bundle, about +3 ms at its start).
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { RunFolderError } from "../base/errors.js";
import type { JobState } from "../base/job-state.js";
import { packr } from "./codec.js";

// English messages, as full zod gives them, for errors that name what is wrong.
z.config(en());

/**
 * The manifest version this slurmkit writes. Version 2: a packed
 * submission's workers write task states and results to record streams
 * (`streams/`), not to files per task. Version 3: they claim tasks by
 * blocks (`claims/b<b>`), and hand back what they did not start
 * (`releases/`). Version 4: tasks record what they used (`usage` in a
 * result file, and beside the result in a worker's stream), and the manifest what
 * one task asked for (`request`). Older versions are read as before.
 */
export const MANIFEST_VERSION = 4;

/** The first manifest version whose packed workers claim tasks by blocks. */
export const BLOCK_CLAIMS_VERSION = 3;

/**
 * What a task used, measured on its node by the runner (one per element) or
 * its worker (packed). Wall time is the result's `endedAt - startedAt`.
 */
export const usageSchema = z.object({
  /** CPU time (user + system, ms) of the task's processes, from /proc's clock ticks (10 ms); children count once reaped. */
  cpuMs: z.number().check(z.nonnegative()),
  /** The peak of its processes' memory (KiB), as the node counts it against `mem`; absent when no sample was taken. */
  memKb: z.optional(z.number().check(z.nonnegative())),
  /** How many times its memory was sampled. */
  memSamples: z.int().check(z.nonnegative()),
  /** Packed: the worker's slot that ran it. */
  slot: z.optional(z.int().check(z.nonnegative())),
  /**
   * Its GPUs, from nvidia-smi: mean utilisation (%) over its GPUs and
   * samples, and each GPU's peak memory in use (MiB), added up; a figure no
   * sample showed is absent (MIG shows no utilisation).
   */
  gpu: z.optional(
    z.object({
      count: z.int().check(z.positive()),
      utilPct: z.optional(z.number().check(z.nonnegative())),
      memMb: z.optional(z.number().check(z.nonnegative())),
      samples: z.int().check(z.nonnegative()),
    }),
  ),
});

/** What a task used (a result file's `usage`, or a stream record's, beside its result). */
export type UsageRecord = z.output<typeof usageSchema>;

const resultMeta = {
  /** The node the task ran on. */
  host: z.string(),
  /** Slurm's id of the job (`A_i` for array elements), or `local-...`. */
  jobId: z.string(),
  /** ms since epoch. */
  startedAt: z.number(),
  endedAt: z.number(),
  /** What the task used (one per element; a packed task's is a record of its own in the stream). */
  usage: z.optional(usageSchema),
};

/** A result's shape (the result file, or a stream's result record). */
export const resultSchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), value: z.unknown(), ...resultMeta }),
  z.object({
    ok: z.literal(false),
    /**
     * Set when the task did not fail by itself: its worker stopped it (its
     * own time limit passed: TIMEOUT; the client cancelled it, or a task it
     * runs after failed: CANCELLED), or the client recorded how its worker
     * ended under it (NODE_FAIL, OUT_OF_MEMORY, ...), so that tasks that run
     * after it can tell.
     */
    state: z.optional(z.enum(["FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "UNKNOWN"])),
    error: z.object({
      name: z.string(),
      message: z.string(),
      stack: z.string(),
      exitCode: z.optional(z.int()),
      signal: z.optional(z.string()),
    }),
    ...resultMeta,
  }),
]);

/** What the runner writes to a result file (msgpack). */
export type ResultFile = z.output<typeof resultSchema>;

/** A state's shape (the state file, or a stream's state record). */
export const stateSchema = z.object({
  /** REQUEUED: the runner asked Slurm to requeue the task (`at` says when); the next attempt writes RUNNING. */
  state: z.enum(["RUNNING", "COMPLETED", "FAILED", "REQUEUED"]),
  host: z.string(),
  jobId: z.string(),
  pid: z.int(),
  at: z.number(),
});

/** What the runner writes to a state file (msgpack): when a task starts, and when it ends. */
export type StateFile = z.output<typeof stateSchema>;

/**
 * How a task ended whose job left the scheduler without a result, from its
 * last state record: COMPLETED or FAILED as the runner wrote, FAILED when it
 * still said RUNNING (the runner died), UNKNOWN after a requeue it asked for.
 */
export function stateFileEnd(s: StateFile): JobState {
  return s.state === "RUNNING" ? "FAILED" : s.state === "REQUEUED" ? "UNKNOWN" : s.state;
}

const attemptSchema = z.object({
  /** The attempt's number, from 0. */
  attempt: z.int().check(z.nonnegative()),
  /** Why it ended: Slurm's warning before the time limit, or preemption. */
  ended: z.enum(["TIMEOUT", "PREEMPTED"]),
  host: z.string(),
  jobId: z.string(),
  /** ms since epoch. */
  startedAt: z.number(),
  endedAt: z.number(),
});

/** What an attempt file holds: one attempt of a task that ended in a requeue. */
export type AttemptFile = z.output<typeof attemptSchema>;

/** Decodes an attempt file's bytes; a corrupt one is a RunFolderError naming `path`. */
export function decodeAttempt(bytes: Uint8Array, path: string): AttemptFile {
  return decodeWith(attemptSchema, unpack(bytes, path, "attempt file"), path, "attempt file");
}

const checkpointSchema = z.object({
  /** The attempt that wrote it (from 0). */
  attempt: z.int().check(z.nonnegative()),
  /** The argument the next attempt is called with. */
  arg: z.unknown(),
});

/** What a checkpoint file holds: the arguments the next attempt gets, from the attempt that wrote it. */
export type CheckpointFile = z.output<typeof checkpointSchema>;

/** Decodes a checkpoint file's bytes; a corrupt one is a RunFolderError naming `path`. */
export function decodeCheckpoint(bytes: Uint8Array, path: string): CheckpointFile {
  return decodeWith(checkpointSchema, unpack(bytes, path, "checkpoint file"), path, "checkpoint file");
}

const claimSchema = z.object({
  /** The worker element (`A_w`) that took the task or block, or "client" for a task cancelled before any worker took it (version 2). */
  worker: z.string(),
  slot: z.int().check(z.nonnegative()),
  host: z.string(),
  at: z.number(),
});

/** What a claim file holds: who took the task (version 2) or the block or release (version 3). */
export type ClaimFile = z.output<typeof claimSchema>;

/** Decodes a claim file's bytes; a corrupt one is a RunFolderError naming `path`. */
export function decodeClaim(bytes: Uint8Array, path: string): ClaimFile {
  return decodeWith(claimSchema, unpack(bytes, path, "claim file"), path, "claim file");
}

const releaseSchema = z.object({
  /** The tasks of the claim that never started, in the order they were to run. */
  tasks: z.array(z.int().check(z.nonnegative())),
  /** Who wrote it: the worker (`A_w`) that held the claim, or "client" for a worker that ended without writing one. */
  by: z.string(),
  at: z.number(),
  /** How many workers died holding these tasks before they started (the client's releases); 0 when absent. */
  deaths: z.optional(z.int().check(z.nonnegative())),
});

const roundSchema = z.object({
  /** The round: 0 for the workers submitted first, then 1, 2, ... */
  round: z.int().check(z.positive()),
  /** Its workers' element numbers start here (round × the manifest's workers), and there are `elements` of them. */
  firstElement: z.int().check(z.nonnegative()),
  elements: z.int().check(z.positive()),
  /** Who submits it: a worker (`A_w`) whose time ran out with tasks left, or "client". */
  by: z.string(),
  at: z.number(),
  /** sbatch's job id, once it answered. */
  jobId: z.optional(z.string().check(z.regex(/^\d+$/))),
  /** Why it was not submitted (sbatch refused, or is not there on the node): the client submits the next round. */
  refused: z.optional(z.string()),
  /** sbatch's answer was lost: the job may exist, and is found by its tag. */
  lost: z.optional(z.string()),
});

/** What a round file (`rounds/<n>`) holds: one round of workers, submitted once by whoever created the file. */
export type RoundFile = z.output<typeof roundSchema>;

/** Decodes a round file's bytes; a corrupt one is a RunFolderError naming `path`. */
export function decodeRound(bytes: Uint8Array, path: string): RoundFile {
  return decodeWith(roundSchema, unpack(bytes, path, "round file"), path, "round file");
}

/** What a release file (`releases/<claim>`) holds: the tasks of a claim whose holder stopped before starting them. */
export type ReleaseFile = z.output<typeof releaseSchema>;

/** Decodes a release file's bytes; a corrupt one is a RunFolderError naming `path`. */
export function decodeRelease(bytes: Uint8Array, path: string): ReleaseFile {
  return decodeWith(releaseSchema, unpack(bytes, path, "release file"), path, "release file");
}

const workersSchema = z.object({
  /** Worker elements submitted at first (top-ups add arrays, not to this). */
  count: z.int().check(z.positive()),
  /** Task slots per worker; each slot has one task's resources. */
  slots: z.int().check(z.positive()),
  /** One task's time limit, which the worker enforces, in seconds. */
  taskTimeSeconds: z.optional(z.int().check(z.positive())),
  /** Each worker element's own time limit, in seconds. */
  walltimeSeconds: z.optional(z.int().check(z.positive())),
  /** One task's memory in MiB (`mem`, `memPerCpu` × CPUs, or the cluster's default), which the worker enforces. */
  taskMemMb: z.optional(z.int().check(z.positive())),
  /** Each worker element's memory in MiB: slots × taskMemMb, plus the worker's own (WORKER_OVERHEAD_MB). */
  memMb: z.optional(z.int().check(z.positive())),
  /** At most this many workers run at once (arrayParallelism), for the arrays of later workers too. */
  parallelism: z.optional(z.int().check(z.positive())),
});

/** How the workers of a packed submission are shaped. */
export type WorkersRecord = z.output<typeof workersSchema>;

const afterSchema = z.object({
  deps: z.array(
    z.object({
      /** The dependency's submission folder. */
      dir: z.string(),
      /** Its worker array's id, for messages. */
      jobId: z.string(),
      /** The tasks of it that must have completed. */
      indices: z.array(z.int().check(z.nonnegative())),
    }),
  ),
});

/** The `after` file: the packed tasks a submission's tasks run after, checked on the node before each task starts. */
export type AfterFile = z.output<typeof afterSchema>;

/** Decodes an `after` file's bytes; a corrupt one is a RunFolderError naming `path`. */
export function decodeAfter(bytes: Uint8Array, path: string): AfterFile {
  return decodeWith(afterSchema, unpack(bytes, path, "dependency file"), path, "dependency file");
}

const submittedArraySchema = z.object({
  jobId: z.string().check(z.regex(/^\d+$/)),
  /** The submission's element that is this array's index 0. */
  firstElement: z.int().check(z.nonnegative()),
  elements: z.int().check(z.positive()),
});

/** One array job of a packed or split submission. */
export type SubmittedArray = z.output<typeof submittedArraySchema>;

const requestSchema = z.object({
  /** CPUs per task. */
  cpus: z.int().check(z.positive()),
  /** Memory per task (MiB), when `mem` or `memPerCpu` was set. */
  memMb: z.optional(z.int().check(z.positive())),
  /** Time per task (s), when `time` was set. */
  timeSeconds: z.optional(z.int().check(z.positive())),
  /** GPUs per task. */
  gpus: z.optional(z.int().check(z.positive())),
  /** The partition(s) asked for. */
  partition: z.optional(z.string()),
});

/** What one task asked for, as the manifest records it (for usage reports and right-sizing). */
export type TaskRequest = z.output<typeof requestSchema>;

const manifestSchema = z.object({
  version: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(MANIFEST_VERSION)]),
  /** The scheduler that runs it ("slurm", "local"): which one rebuilds its futures. */
  kind: z.string().check(z.regex(/^[a-z][a-z0-9-]*$/)),
  createdAt: z.string(),
  taskCount: z.int().check(z.nonnegative()),
  /** Slurm: the job id sbatch printed; null until sbatch returns. */
  jobId: z.nullable(z.string()),
  /** Slurm: whether the job is an array (every mapArray is; submit is not). */
  array: z.boolean(),
  /** Ranks per array element (nodes × ntasksPerNode). */
  ranks: z.int().check(z.positive()),
  /** Slurm: the script writes `results/<element>.exited` after its exit steps (stage-out); a task settles only after that. */
  exitMarkers: z.optional(z.boolean()),
  /** Slurm, packed or split: tasks per array element (the runner writes each task's logs). */
  tasksPerElement: z.optional(z.int().check(z.positive())),
  /** Slurm, packed or split: the array jobs, in order. */
  arrays: z.optional(z.array(submittedArraySchema)),
  /** Slurm, packed: the elements are workers that claim tasks (then `tasksPerElement` is absent). */
  workers: z.optional(workersSchema),
  /** Slurm: its jobs were cancelled right after sbatch, sbatch refused it (a rerun or split array that was all or nothing), or no job of it was found long after it was made: never look for them. */
  withdrawn: z.optional(z.literal(true)),
  /** Slurm: sbatch refused it, and said this (its stderr, at most 2000 characters); `status` shows it. */
  refused: z.optional(z.string()),
  /** Version 4: what one task asked for. */
  request: z.optional(requestSchema),
  /** A rerun: its task k runs task `tasks[k]` of the submission folder `of` (a sibling; the original, never another rerun) again. */
  rerun: z.optional(z.object({ of: z.string().check(z.regex(/^[^/]+$/)), tasks: z.array(z.int().check(z.nonnegative())) })),
});

/** What the client writes to manifest.json: enough to rebuild the futures. */
export type Manifest = z.output<typeof manifestSchema>;

/** What is wrong with a decoded value, in one line: the first few zod issues with their paths. */
function describeIssues(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? `\`${i.path.join(".")}\`: ` : ""}${i.message}`)
    .join("; ");
}

function decodeWith<T>(schema: z.ZodMiniType<T>, value: unknown, path: string, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new RunFolderError(path, `${path} is not a slurmkit ${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

function unpack(bytes: Uint8Array, path: string, what: string): unknown {
  if (bytes.length === 0) throw new RunFolderError(path, `${path} is empty where a ${what} was expected`);
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new RunFolderError(path, `${path} is not a readable ${what} (${bytes.length} bytes, truncated or corrupt msgpack: ${(error as Error).message})`, { cause: error });
  }
}

/** Decodes a result file's bytes; a corrupt or foreign file is a RunFolderError naming `path`. */
export function decodeResult(bytes: Uint8Array, path: string): ResultFile {
  return decodeWith(resultSchema, unpack(bytes, path, "result file"), path, "result file");
}

/** Decodes a state file's bytes; a corrupt or foreign file is a RunFolderError naming `path`. */
export function decodeState(bytes: Uint8Array, path: string): StateFile {
  return decodeWith(stateSchema, unpack(bytes, path, "state file"), path, "state file");
}

/** Decodes manifest.json; one from another slurmkit version, or a corrupt one, is a RunFolderError naming `path`. */
export function decodeManifest(text: string, path: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RunFolderError(path, `${path} is not valid JSON (truncated or corrupt): ${(error as Error).message}`, { cause: error });
  }
  const version = (value as { version?: unknown } | null)?.version;
  if (typeof version === "number" && version > MANIFEST_VERSION) {
    throw new RunFolderError(path, `${path} was written by a newer slurmkit (manifest version ${version}); this slurmkit reads versions 1 to ${MANIFEST_VERSION}: upgrade slurmkit to load it`);
  }
  return decodeWith(manifestSchema, value, path, "manifest");
}

/** manifest.json's text. */
export function encodeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
