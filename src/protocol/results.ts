import type { ResultFile } from "./records.js";

/** A result file of a task that failed, or that something else ended. */
export type FailedResult = Extract<ResultFile, { ok: false }>;

/** Where and when a task ran, as its result records it. */
export interface ResultMeta {
  /** The node it ran on ("" when it never started). */
  readonly host: string;
  /** Slurm's id of its job (`A_i` for array elements), or `local-...`. */
  readonly jobId: string;
  /** ms since epoch. */
  readonly startedAt: number;
  /** ms since epoch. @default now */
  readonly endedAt?: number;
}

/**
 * The one builder of a failed task's result, for the runner, its worker and
 * the client alike: the error (its stack is its message when it has none),
 * and `state` when something other than the task ended it (a worker's
 * TIMEOUT or OUT_OF_MEMORY, a cancel, how its worker died). Free of zod, so
 * the runner can use it.
 *
 * @example
 * failedResult({ name: "TaskCancelled", message: "Task 3 was cancelled" }, { host: "", jobId: "12_0", startedAt: at, endedAt: at }, "CANCELLED")
 */
export function failedResult(
  error: { readonly name: string; readonly message: string; readonly stack?: string | undefined; readonly exitCode?: number | undefined; readonly signal?: string | undefined },
  meta: ResultMeta,
  state?: FailedResult["state"],
): FailedResult {
  return {
    ok: false,
    ...(state !== undefined ? { state } : {}),
    error: {
      name: error.name,
      message: error.message,
      stack: error.stack ?? error.message,
      ...(error.exitCode !== undefined ? { exitCode: error.exitCode } : {}),
      ...(error.signal !== undefined ? { signal: error.signal } : {}),
    },
    host: meta.host,
    jobId: meta.jobId,
    startedAt: meta.startedAt,
    endedAt: meta.endedAt ?? Date.now(),
  };
}
