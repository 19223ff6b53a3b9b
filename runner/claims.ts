// How workers share a packed submission's tasks: by blocks (blocks.ts), each
// claimed once by an exclusive create of `claims/b<b>`. A worker with nothing
// left says so (`wants/<worker>`), and a worker whose slots are all busy gives
// it half the tasks it holds and has not started (`releases/<claim>.s<k>`).
// A worker that stops hands back what it never started (`releases/<claim>.end`).
// Each release is taken once (`claims/r<release>`). A restarted worker finds
// its own unfinished claims again.
import { existsSync } from "node:fs";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createExclusive, writeFileAtomic, writeFileExclusive } from "../src/protocol/atomic.js";
import { blockClaimName, blockTasks, endName, guidedBlocks, isReleaseName, parseClaimName, releaseClaimName, releaseOf, splitName } from "../src/protocol/blocks.js";
import { packr } from "../src/protocol/codec.js";
import { decodeClaim, decodeRelease, type ClaimFile, type ReleaseFile } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";

/** A claim this worker holds, with the tasks it has not handed out yet. */
interface Held {
  readonly name: string;
  readonly tasks: number[];
  /** Parts given away so far. */
  splits: number;
  /** Workers that died holding these tasks (from the release it took). */
  readonly deaths: number;
}

/** A task handed out by `next()`: give it back if it does not start. */
export interface Taken {
  readonly index: number;
  readonly claim: Held;
}

/** How long a worker with nothing to run waits for a part of another worker's claim, after the last part it got. */
export const WANT_MS = 2_000;
/** How often it looks for one meanwhile. */
const WANT_POLL_MS = 200;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const list = (dir: string) =>
  readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [] as string[];
    throw e;
  });

/**
 * One worker's claims. `next()` hands out the tasks of the claims it holds,
 * and claims the next block (from its own part of the list round to the
 * start) when they run out; once every block is claimed, it takes released
 * tasks, and then waits a while for other workers to give it some. After
 * each claim it lists `cancels/`: the client creates a cancel before it
 * looks for the block's claim, so a task cancelled before its block was
 * claimed is always seen here (`cancelled`).
 */
export class Claims {
  readonly #starts: Uint32Array;
  /** Blocks in the order this worker tries them. */
  readonly #order: number[];
  #tried = 0;
  readonly #held: Held[] = [];
  readonly #triedReleases = new Set<string>();
  #cancels = new Set<number>();
  #busy: Promise<unknown> = Promise.resolve();
  /** Set once it waited for parts in vain: no more tasks come. */
  #exhausted = false;

  constructor(
    private readonly folder: RunFolder,
    count: number,
    workerIndex: number,
    workerCount: number,
    private readonly claim: () => ClaimFile,
    /** This worker's id, for its want. */
    private readonly worker = claim().worker,
  ) {
    this.#starts = guidedBlocks(count, Math.max(1, workerCount));
    const blocks = this.#starts.length - 1;
    const first = workerCount > 0 && blocks > 0 ? Math.floor(((workerIndex % workerCount) * blocks) / workerCount) : 0;
    this.#order = Array.from({ length: blocks }, (_, k) => (first + k) % blocks);
  }

  /** How many blocks the tasks are cut into. */
  get blocks(): number {
    return this.#starts.length - 1;
  }

  /**
   * Takes up the claims this worker held in an earlier attempt (it was
   * requeued): their tasks with no result, not given away and not released,
   * first in line. A claim it released already is never released again: its
   * tasks that are left (they had started) are returned, to run again before
   * any other.
   */
  async resume(hasResult: (index: number) => boolean): Promise<number[]> {
    const again: number[] = [];
    const releases = await list(this.folder.releasesDir);
    for (const name of (await list(this.folder.claimsDir)).sort()) {
      if (!parseClaimName(name)) continue;
      const claim = await readFile(this.folder.claimFile(name))
        .then((b) => decodeClaim(b, this.folder.claimFile(name)))
        .catch(() => undefined);
      if (claim?.worker !== this.worker) continue;
      const gone = new Set<number>();
      let splits = 0;
      let stopped = false;
      for (const r of releases) {
        const of = releaseOf(r);
        if (of?.claim !== name) continue;
        for (const i of (await this.#readRelease(r))?.tasks ?? []) gone.add(i);
        if (of.split === undefined) stopped = true;
        else splits = Math.max(splits, of.split);
      }
      const tasks = (await this.#tasksOf(name)).filter((i) => !gone.has(i) && !hasResult(i));
      const parsed = parseClaimName(name);
      const deaths = parsed?.kind === "release" ? ((await this.#readRelease(parsed.of))?.deaths ?? 0) : 0;
      if (stopped) again.push(...tasks);
      else if (tasks.length) this.#held.push({ name, tasks, splits, deaths });
    }
    await this.refreshCancels();
    return again;
  }

  /** The next task to run, claiming more as needed; undefined when no task is left to claim. Calls run one at a time. */
  next(): Promise<Taken | undefined> {
    const next = this.#busy.then(() => this.#next());
    this.#busy = next.catch(() => undefined);
    return next;
  }

  async #next(): Promise<Taken | undefined> {
    for (;;) {
      const claim = this.#held.find((h) => h.tasks.length > 0);
      if (claim) return { index: claim.tasks.shift()!, claim };
      if (this.#exhausted || !((await this.#claimMore()) || (await this.#wait()))) return undefined;
    }
  }

  /** A task `next()` handed out that did not start: first in line again (or last), and released if the worker stops. */
  giveBack(taken: Taken, last = false): void {
    if (last) taken.claim.tasks.push(taken.index);
    else taken.claim.tasks.unshift(taken.index);
  }

  /** Whether the client asked to cancel the task, as of the last listing of `cancels/`. */
  cancelled(index: number): boolean {
    return this.#cancels.has(index);
  }

  /** Lists `cancels/` again; cancels are never taken back, so a listing only adds (one that started earlier cannot hide a newer cancel). */
  async refreshCancels(): Promise<void> {
    for (const name of await list(this.folder.cancelsDir)) {
      const index = Number(name);
      if (Number.isInteger(index)) this.#cancels.add(index);
    }
  }

  /** Tasks handed out by none yet, of the claims this worker holds. */
  get unstarted(): number {
    return this.#held.reduce((n, h) => n + h.tasks.length, 0);
  }

  /**
   * Gives half the unstarted tasks of its fullest claim (at least one) to
   * the workers that wait for tasks, if any does: call it when every slot is
   * busy, so that tasks behind a long one do not wait for it. Returns how
   * many tasks it gave.
   */
  async share(): Promise<number> {
    const fullest = this.#held.reduce<Held | undefined>((a, h) => (h.tasks.length > (a?.tasks.length ?? 0) ? h : a), undefined);
    if (!fullest) return 0;
    if (!(await this.#wanted())) return 0;
    const give = fullest.tasks.splice(Math.floor(fullest.tasks.length / 2));
    const release: ReleaseFile = { tasks: give, by: this.worker, at: Date.now(), deaths: fullest.deaths };
    // Numbered before the write: a name is never used twice, even when a write that failed left its file.
    const path = this.folder.release(splitName(fullest.name, ++fullest.splits));
    try {
      await writeFileAtomic(path, packr.pack(release));
    } catch (error) {
      // A rename that reported failure may still have happened (NFS): then the part is given.
      if (!existsSync(path)) fullest.tasks.push(...give);
      throw error;
    }
    return give.length;
  }

  /** Tasks no worker holds: in blocks nobody claimed, and in releases nobody took. */
  async left(): Promise<number> {
    const claimed = new Set(await list(this.folder.claimsDir));
    let n = 0;
    for (let b = 0; b < this.blocks; b++) if (!claimed.has(blockClaimName(b))) n += this.#starts[b + 1]! - this.#starts[b]!;
    for (const r of await list(this.folder.releasesDir)) {
      if (isReleaseName(r) && !claimed.has(releaseClaimName(r))) n += (await this.#readRelease(r))?.tasks.length ?? 0;
    }
    return n;
  }

  /**
   * Hands back the tasks of its claims that it never started, each claim's
   * in `releases/<claim>.end` (written atomically), for another worker to claim.
   * Called once, as the worker stops: it then holds nothing. Returns how
   * many tasks it released.
   */
  async release(): Promise<number> {
    this.#exhausted = true;
    let released = 0;
    for (const h of this.#held.splice(0)) {
      if (h.tasks.length === 0) continue;
      const release: ReleaseFile = { tasks: h.tasks, by: this.worker, at: Date.now(), deaths: h.deaths };
      // Never over one the client wrote (it only does for a worker that ended): whole, and only if none is there.
      if (await writeFileExclusive(this.folder.release(endName(h.name)), packr.pack(release))) released += release.tasks.length;
    }
    return released;
  }

  async #claimMore(): Promise<boolean> {
    const bytes = packr.pack(this.claim());
    while (this.#tried < this.#order.length) {
      const block = this.#order[this.#tried++]!;
      const name = blockClaimName(block);
      if (await createExclusive(this.folder.claimFile(name), bytes)) return this.#hold(name, blockTasks(this.#starts, block), 0);
    }
    // Every block is claimed: the tasks other workers released or gave away.
    for (const released of await list(this.folder.releasesDir)) {
      if (this.#triedReleases.has(released) || !isReleaseName(released)) continue;
      this.#triedReleases.add(released);
      const release = await this.#readRelease(released);
      if (!release) continue;
      if (await createExclusive(this.folder.claimFile(releaseClaimName(released)), bytes)) return this.#hold(releaseClaimName(released), release.tasks, release.deaths ?? 0);
    }
    return false;
  }

  /** Whether another worker waits for tasks now (a want older than WANT_MS and a margin is one left by a worker that died). */
  async #wanted(): Promise<boolean> {
    for (const w of await list(this.folder.wantsDir)) {
      if (w === this.worker) continue;
      const since = await stat(this.folder.want(w)).then(
        (st) => Date.now() - st.mtimeMs,
        () => Infinity,
      );
      if (since < WANT_MS + 5_000) return true;
    }
    return false;
  }

  /** Says it wants tasks, and waits up to WANT_MS for a worker to give it some; false when none came. */
  async #wait(): Promise<boolean> {
    const want = this.folder.want(this.worker);
    await writeFile(want, "").catch(() => undefined);
    try {
      for (const until = Date.now() + WANT_MS; Date.now() < until; ) {
        await sleep(WANT_POLL_MS);
        if (await this.#claimMore()) return true;
      }
      this.#exhausted = true;
      return false;
    } finally {
      await rm(want, { force: true }).catch(() => undefined);
    }
  }

  async #hold(name: string, tasks: number[], deaths: number): Promise<true> {
    // Held at once, so that it is released if the worker stops; its tasks are handed out only after the listing below.
    const held: Held = { name, tasks: [], splits: 0, deaths };
    this.#held.push(held);
    // After the claim, never before: a cancel the client made before it saw no claim is in this listing.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.refreshCancels();
        break;
      } catch (error) {
        if (attempt === 3) {
          held.tasks.push(...tasks);
          throw error;
        }
        await sleep(1000);
      }
    }
    held.tasks.push(...tasks);
    return true;
  }

  async #tasksOf(name: string): Promise<number[]> {
    const parsed = parseClaimName(name);
    if (parsed?.kind === "block") return parsed.block < this.blocks ? blockTasks(this.#starts, parsed.block) : [];
    if (parsed?.kind === "release") return (await this.#readRelease(parsed.of))?.tasks ?? [];
    return [];
  }

  /** A release file; undefined when there is none (a corrupt one too: it was written atomically, so no slurmkit wrote it). */
  async #readRelease(name: string): Promise<ReleaseFile | undefined> {
    const path = this.folder.release(name);
    return readFile(path)
      .then((b) => decodeRelease(b, path))
      .catch(() => undefined);
  }
}
