// Futures in the order they settle, as Python's concurrent.futures.as_completed
// gives them to submitit's users.
import { accepts, checkOptions } from "../base/options.js";
import { ParameterError } from "../base/errors.js";
import { Job, onSettled } from "./job.js";

/** Options of asCompleted. */
export interface AsCompletedOptions {
  /** Ends the iteration: the loop over it ends without an error, and the jobs go on. */
  readonly signal?: AbortSignal;
}

/**
 * Yields each job as it settles (completed, failed or ended otherwise), in
 * the order they settle: jobs already settled first, in the order given.
 * Each job is yielded once; read its outcome with `result()` or `state`.
 * Works for any futures: one per element, packed, or from `loadJobs`.
 *
 * When `signal` aborts, or the loop is left early (`break`), it stops
 * waiting: the loop ends without an error and the jobs go on running.
 * (Only `signal` ends a wait in progress: an iterator's `return()` called
 * while its `next()` is pending takes effect when the next job settles.)
 * A list that holds something other than a job rejects the first `next()`
 * with a ParameterError.
 *
 * @example
 * for await (const job of asCompleted(jobs, { signal: AbortSignal.timeout(3_600_000) })) {
 *   console.log(job.id, job.state);
 * }
 */
export async function* asCompleted<J extends Job<unknown>>(jobs: Iterable<J>, options: AsCompletedOptions = {}): AsyncGenerator<J, void, undefined> {
  const list = [...jobs];
  const bad = list.findIndex((job) => !(job instanceof Job));
  if (bad >= 0) {
    const what = list[bad] === null ? "null" : typeof list[bad];
    throw new ParameterError("asCompleted", [`Expected jobs (futures from an executor or loadJobs); item ${bad} is ${what}`]);
  }
  const { signal } = checkOptions("asCompleted options", options, { signal: accepts.signal });
  if (signal?.aborted) return;
  let aborted = false;
  let wake: (() => void) | undefined;
  const onAbort = () => {
    aborted = true;
    wake?.();
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const settled: J[] = [];
  // One listener per job that has not settled (no promise, no abort listener each: a million jobs stay cheap).
  const stops = new Map<J, () => void>();
  try {
    for (const job of new Set(list)) {
      if (job.done()) {
        settled.push(job);
        continue;
      }
      stops.set(
        job,
        onSettled(job as Job<unknown>, () => {
          stops.get(job)?.();
          stops.delete(job);
          settled.push(job);
          wake?.();
        }),
      );
    }
    let next = 0;
    for (;;) {
      while (next < settled.length) {
        if (aborted) return;
        const job = settled[next]!;
        // What was yielded is let go: a long run does not keep every settled job here.
        settled[next++] = undefined as unknown as J;
        yield job;
      }
      if (stops.size === 0 || aborted) return;
      if (next > 1024) {
        settled.length = 0;
        next = 0;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // The jobs not yet settled are no longer waited for here; they go on.
    for (const stop of stops.values()) stop();
    stops.clear();
  }
}
