// Guided self-scheduling blocks of a packed submission's tasks: fixed ahead
// from the task count and the planned workers, so that the client and every
// worker compute the same blocks without talking. Blocks shrink as the
// queue drains: the first are large (few claims), the last small (a
// balanced tail). A floor that grows with the task count keeps the number
// of blocks, and so of claim files, the same whatever the task count.

/** How many blocks per worker the remaining tasks are cut into, at each step. */
export const GUIDED_FACTOR = 2;
/** The smallest block is the tasks over this many times the workers (and at least 1). */
export const TAIL_BLOCKS = 16;

/**
 * The blocks' starts, then `count` at the end: block b holds tasks
 * `starts[b]` to `starts[b + 1] - 1`. Block b has
 * `max(ceil(count / (TAIL_BLOCKS · workers)), ceil(R / (factor · workers)))`
 * tasks (at least 1), R being the tasks not in blocks before it. With
 * factor 2 the guided part ends when R falls below count / 8, after about
 * 2·W·ln 8 ≈ 4.2·W blocks; the rest is about 2·W blocks of the floor. So
 * about 6·W blocks in all, whatever the count, and the tail costs a worker
 * at most one floor block (1/16 of its share) more than an even split.
 */
export function guidedBlocks(count: number, workers: number, factor = GUIDED_FACTOR): Uint32Array {
  if (!Number.isInteger(count) || count < 0 || count >= 2 ** 32) throw new RangeError(`Expected a task count from 0 to 2^32 - 1, got ${count}`);
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`Expected at least one worker, got ${workers}`);
  const starts: number[] = [];
  const floor = Math.max(1, Math.ceil(count / (TAIL_BLOCKS * workers)));
  let at = 0;
  while (at < count) {
    starts.push(at);
    at += Math.max(floor, Math.ceil((count - at) / (factor * workers)));
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

/** The claim of block b: `b<b>`. */
export function blockClaimName(block: number): string {
  return `b${block}`;
}

/** The claim of the tasks that claim `released` handed back: `r<released>`. */
export function releaseClaimName(released: string): string {
  return `r${released}`;
}

/**
 * A claim's kind from its name: a block, or a release (`releases/<of>`)
 * taken up; undefined for any other name (a version 2 task claim).
 */
export function parseClaimName(name: string): { kind: "block"; block: number } | { kind: "release"; of: string } | undefined {
  const block = /^b(\d+)$/.exec(name);
  if (block) return { kind: "block", block: Number(block[1]) };
  const release = /^r(.+)$/.exec(name);
  return release && isReleaseName(release[1]!) ? { kind: "release", of: release[1]! } : undefined;
}

/** The part of claim `claim`'s tasks its holder gave away to an idle worker, its `split`-th: `<claim>.s<split>`. */
export function splitName(claim: string, split: number): string {
  return `${claim}.s${split}`;
}

/** What claim `claim`'s holder never started, handed back as it stopped: `<claim>.end`. */
export function endName(claim: string): string {
  return `${claim}.end`;
}

/** The claim a release's name belongs to, and its split number (undefined for its `.end`); undefined for any other name. */
export function releaseOf(name: string): { claim: string; split: number | undefined } | undefined {
  const m = /^(.+)\.(?:s(\d+)|end)$/.exec(name);
  if (!m || parseClaimName(m[1]!) === undefined) return undefined;
  return { claim: m[1]!, split: m[2] === undefined ? undefined : Number(m[2]) };
}

/** Whether a name is a release's: `<claim>.end` or `<claim>.s<k>`. */
export function isReleaseName(name: string): boolean {
  return releaseOf(name) !== undefined;
}

/** The tasks of block b, in order. */
export function blockTasks(starts: Uint32Array, block: number): number[] {
  const from = starts[block];
  const to = starts[block + 1];
  if (from === undefined || to === undefined) throw new RangeError(`Block ${block} is not one of the ${Math.max(0, starts.length - 1)} blocks`);
  return Array.from({ length: to - from }, (_, k) => from + k);
}
