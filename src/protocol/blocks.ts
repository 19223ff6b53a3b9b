// Guided self-scheduling blocks of a packed submission's tasks: fixed ahead
// from the task count and the planned workers, so that the client and every
// worker compute the same blocks without talking. Blocks shrink as the
// queue drains: the first are large (few claims), the last hold one task
// (a balanced tail).

/** How many blocks per worker the remaining tasks are cut into, at each step. */
export const GUIDED_FACTOR = 2;

/**
 * The blocks' starts, then `count` at the end: block b holds tasks
 * `starts[b]` to `starts[b + 1] - 1`. Block b has
 * `max(1, ceil(R / (factor · workers)))` tasks, R being the tasks not in
 * blocks before it.
 */
export function guidedBlocks(count: number, workers: number, factor = GUIDED_FACTOR): Uint32Array {
  if (!Number.isInteger(count) || count < 0 || count >= 2 ** 32) throw new RangeError(`Expected a task count from 0 to 2^32 - 1, got ${count}`);
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`Expected at least one worker, got ${workers}`);
  const starts: number[] = [];
  let at = 0;
  while (at < count) {
    starts.push(at);
    at += Math.max(1, Math.ceil((count - at) / (factor * workers)));
  }
  starts.push(count);
  return Uint32Array.from(starts);
}

/** The block that holds task `index` (binary search over the starts). */
export function blockOf(starts: Uint32Array, index: number): number {
  let lo = 0;
  let hi = starts.length - 2;
  if (hi < 0 || index < 0 || index >= starts[starts.length - 1]!) throw new RangeError(`Task ${index} is in no block of ${starts[starts.length - 1] ?? 0} tasks`);
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
