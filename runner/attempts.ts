import { EventEmitter } from "node:events";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { TaskInterruptedError } from "../src/base/errors.js";
import { writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import { decodeAttempt, decodeCheckpoint, type AttemptFile, type CheckpointFile } from "../src/protocol/records.js";
import { RunFolder } from "../src/protocol/run-folder.js";
import type { WarningNews } from "../src/core/node-side.js";
import { nodeSide } from "./node.js";

// Attempts of a task that Slurm warns about (time limit, preemption): the
// warning, how the attempt is ending, and the requeue with its records.

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
    if (RunFolder.parseAttemptName(name)?.index !== index) continue;
    const path = `${folder.attemptsDir}/${name}`;
    const record = decodeAttempt(await readFile(path), path);
    attempt++;
    if (record.ended === "TIMEOUT") timeouts++;
  }
  return { attempt, timeouts };
}

/** Whether job `jobId` requeued task `index` before: an attempt record of it says so (for schedulers that do not count restarts). */
export async function requeuedBefore(folder: RunFolder, index: number, jobId: string): Promise<boolean> {
  const names = await readdir(folder.attemptsDir).catch(() => [] as string[]);
  for (const name of names) {
    if (RunFolder.parseAttemptName(name)?.index !== index) continue;
    const path = `${folder.attemptsDir}/${name}`;
    if (decodeAttempt(await readFile(path), path).jobId === jobId) return true;
  }
  return false;
}

/** The checkpoint task `index` resumes from, if an earlier attempt wrote one. */
export async function readCheckpoint(folder: RunFolder, index: number): Promise<CheckpointFile | undefined> {
  const bytes = await readFile(folder.checkpoint(index)).catch(() => undefined);
  return bytes ? decodeCheckpoint(bytes, folder.checkpoint(index)) : undefined;
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

/** The warning this process got, kept so that a task that starts listening later still hears it. */
let latest: Promise<WarningNews> | undefined;
const news = new EventEmitter();

function announce(warning: Promise<WarningNews>): void {
  latest = warning;
  news.emit("warn", warning);
}

/**
 * Whether the warning came before the runner could listen: the batch script
 * saw it (and exports SLURMKIT_WARNED=1), or it came while the runner set up.
 * Call first thing; the variable is taken out of the environment tasks get.
 */
export function earlyWarning(name: NodeJS.Signals | undefined): () => boolean {
  let came = process.env.SLURMKIT_WARNED === "1";
  delete process.env.SLURMKIT_WARNED;
  if (name) process.on(name, () => (came = true));
  return () => came;
}

/**
 * Listens for the scheduler's warning signal (Slurm's `--signal`, USR2 by
 * default) for the rest of the process's life: the runner calls it first
 * thing, so that no warning is missed. `early`: it came already (see
 * earlyWarning). Outside a batch job (no job id) it is taken as the time
 * limit's.
 */
export function listenForWarning(name: NodeJS.Signals, jobId: string | undefined, report: (line: string) => void, early = false): void {
  const take = () => {
    if (!latest) announce(jobId ? nodeSide().ending(jobId, report) : Promise.resolve({ ending: "TIMEOUT", deadline: undefined }));
  };
  process.on(name, take);
  if (early) take();
}

/**
 * Whether a worker warns its packed task now: `warnSeconds` before the task's
 * own limit (at once if that is longer than the limit), and never with a
 * lead of 0, for which Slurm sends no warning either.
 */
export function taskWarningDue(warnSeconds: number, limitSeconds: number, startedAt: number, now: number): boolean {
  return warnSeconds > 0 && now >= startedAt + Math.max(0, limitSeconds - warnSeconds) * 1000;
}

/** A worker's slot: the worker passed Slurm's warning on, for the task the slot runs. */
export function passWarning(warning: WarningNews): void {
  announce(Promise.resolve(warning));
}

/** A worker's slot starts another task: the last task's warning is not this one's. */
export function forgetWarning(): void {
  latest = undefined;
}

/** Slurm's warning to one attempt: an AbortSignal for the task, and how the attempt ends once it came. */
export interface Warning {
  /** Aborts (reason: TaskInterruptedError) when the warning comes. */
  readonly signal: AbortSignal;
  /** Resolves when the warning came and how the attempt ends is known. */
  readonly arrived: Promise<WarningNews>;
  /** Whether the warning came. */
  readonly came: boolean;
  /** Stops listening. */
  dispose(): void;
}

/** The warning of one attempt (number `attempt`), whether it came before this call or comes later. */
export function watchWarning(attempt: number): Warning {
  const controller = new AbortController();
  let came = false;
  let resolve!: (news: WarningNews) => void;
  const arrived = new Promise<WarningNews>((r) => (resolve = r));
  const take = (warning: Promise<WarningNews>) => {
    if (came) return;
    came = true;
    void warning.then((w) => {
      controller.abort(new TaskInterruptedError(w.ending, attempt));
      resolve(w);
    });
  };
  if (latest) take(latest);
  else news.on("warn", take);
  return {
    signal: controller.signal,
    arrived,
    get came() {
      return came;
    },
    dispose: () => void news.off("warn", take),
  };
}
