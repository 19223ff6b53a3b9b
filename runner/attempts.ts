import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { TaskInterruptedError } from "../src/errors.js";
import { writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import type { AttemptFile, CheckpointFile } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";

// Attempts of a task that Slurm warns about (time limit, preemption): the
// warning, how the attempt is ending, and the requeue with its records.

/** How an attempt is ending once Slurm warned. */
export type Ending = "TIMEOUT" | "PREEMPTED";

/** The attempts a task had before this one. */
export interface History {
  /** This attempt's number: the attempts recorded before it. */
  readonly attempt: number;
  /** Of those, the ones that ended at the time limit (they count against maxRequeues). */
  readonly timeouts: number;
}

/** Reads the attempt records of task `index` (only a requeued job has any). */
export async function readHistory(folder: RunFolder, index: number, restarted: boolean): Promise<History> {
  if (!restarted) return { attempt: 0, timeouts: 0 };
  const names = await readdir(folder.attemptsDir).catch(() => [] as string[]);
  let attempt = 0;
  let timeouts = 0;
  for (const name of names) {
    if (!name.startsWith(`${index}.`)) continue;
    const record = packr.unpack(await readFile(`${folder.attemptsDir}/${name}`)) as Partial<AttemptFile>;
    attempt++;
    if (record.ended === "TIMEOUT") timeouts++;
  }
  return { attempt, timeouts };
}

/** The checkpoint task `index` resumes from, if an earlier attempt wrote one. */
export async function readCheckpoint(folder: RunFolder, index: number): Promise<CheckpointFile | undefined> {
  const bytes = await readFile(folder.checkpoint(index)).catch(() => undefined);
  return bytes ? (packr.unpack(bytes) as CheckpointFile) : undefined;
}

/** Records an attempt that ends in a requeue, and the checkpoint the next one starts from. */
export async function recordRequeue(folder: RunFolder, index: number, record: AttemptFile, checkpoint: CheckpointFile | undefined): Promise<void> {
  if (checkpoint) {
    await mkdir(dirname(folder.checkpoint(index)), { recursive: true });
    await writeFileAtomic(folder.checkpoint(index), packr.pack(checkpoint));
  }
  await mkdir(folder.attemptsDir, { recursive: true });
  await writeFileAtomic(folder.attempt(index, record.attempt), packr.pack(record));
}

/** Takes back the record of a requeue that Slurm refused. */
export async function forgetRequeue(folder: RunFolder, index: number, attempt: number): Promise<void> {
  await rm(folder.attempt(index, attempt), { force: true });
}

function run(program: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout: 60_000 }, (error, stdout, stderr) => resolve({ ok: !error, stdout, stderr: stderr || (error?.message ?? "") }));
  });
}

/**
 * Requeues this job (same id): allows it first, as slurmkit submits with
 * `--no-requeue` so that Slurm never reruns a task by itself. Returns an
 * error message, or undefined when Slurm took the request.
 */
export async function requeueJob(jobId: string): Promise<string | undefined> {
  const allow = await run("scontrol", ["update", `JobId=${jobId}`, "Requeue=1"]);
  if (!allow.ok) return `scontrol update JobId=${jobId} Requeue=1 failed: ${allow.stderr.trim()}`;
  const requeue = await run("scontrol", ["requeue", jobId]);
  return requeue.ok ? undefined : `scontrol requeue ${jobId} failed: ${requeue.stderr.trim()}`;
}

/**
 * How the attempt is ending, as Slurm says: a job being preempted has a
 * PreemptTime; one warned of its time limit has none. Also its end time.
 */
export async function endingOf(jobId: string): Promise<{ ending: Ending; deadline: number | undefined }> {
  const r = await run("squeue", ["-h", "-j", jobId, "-O", "PreemptTime:40,EndTime:40"]);
  const [preempt, end] = r.stdout.trim().split(/\s+/);
  const preempted = /^\d{4}-\d\d-\d\dT/.test(preempt ?? "");
  const deadline = end && /^\d{4}-\d\d-\d\dT/.test(end) ? Date.parse(end) : undefined;
  return { ending: preempted ? "PREEMPTED" : "TIMEOUT", deadline: Number.isNaN(deadline) ? undefined : deadline };
}

/** Slurm's warning to one attempt: an AbortSignal for the task, and how the attempt ends once it came. */
export interface Warning {
  /** Aborts (reason: TaskInterruptedError) when the warning comes. */
  readonly signal: AbortSignal;
  /** Resolves when the warning came and how the attempt ends is known. */
  readonly arrived: Promise<{ ending: Ending; deadline: number | undefined }>;
  /** Whether the warning came. */
  readonly came: boolean;
  /** Stops listening. */
  dispose(): void;
}

/**
 * Listens for Slurm's warning signal (`--signal`, USR2 by default). Outside
 * Slurm (no job id) a warning is taken as the time limit's.
 */
export function watchWarning(name: NodeJS.Signals | undefined, attempt: number, jobId: string | undefined): Warning {
  const controller = new AbortController();
  let came = false;
  let resolve!: (v: { ending: Ending; deadline: number | undefined }) => void;
  const arrived = new Promise<{ ending: Ending; deadline: number | undefined }>((r) => (resolve = r));
  const on = () => {
    if (came) return;
    came = true;
    void (jobId ? endingOf(jobId) : Promise.resolve({ ending: "TIMEOUT" as const, deadline: undefined })).then((e) => {
      controller.abort(new TaskInterruptedError(e.ending, attempt));
      resolve(e);
    });
  };
  if (name) process.on(name, on);
  return {
    signal: controller.signal,
    arrived,
    get came() {
      return came;
    },
    dispose: () => {
      if (name) process.off(name, on);
    },
  };
}
