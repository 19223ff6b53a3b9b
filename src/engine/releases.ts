// Packed tasks a worker claimed (by blocks) and never started, once every
// worker has ended: the client hands them back for the workers that did not
// (killed, or their node died), so that more workers run them. A dead worker
// fails only the tasks it was running.
import { blockTasks, endName, parseClaimName, releaseOf } from "../protocol/blocks.js";
import { packr } from "../protocol/codec.js";
import { decodeClaim, decodeRelease, type ReleaseFile } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { parseTaskStreamName } from "../protocol/task-stream.js";
import { unlessUnreachable } from "../transport/transport.js";
import type { WatchedFiles } from "./job-files.js";
import type { TaskRecords } from "./task-records.js";

/** Tasks are handed back for at most this many workers that died holding them before they started; then they fail with the last. */
export const MAX_DEATHS = 3;

/** What the client made of the claims of a pool whose workers all ended. */
export interface HandedBack {
  /** Tasks released now, for the next workers. */
  readonly released: number;
  /**
   * Unstarted tasks not handed back, each with the worker that held it:
   * that worker's record stream is corrupt (its records may be lost, so
   * they are not run again, and fail naming the stream), or MAX_DEATHS
   * workers died holding them. Each follows its worker, and fails with it.
   */
  readonly kept: ReadonlyMap<number, string>;
}

/**
 * Writes `releases/<claim>.end` for each claim with no release whose tasks
 * include some that never started (no state or result record), were not
 * given to another worker (`releases/<claim>.s<k>`) and were not
 * cancelled. Call it only once every worker has ended: a live holder may
 * still start them. Two clients that do it at once write the same release.
 * The first `slots` tasks of each go last: a task whose start was not
 * flushed may be what killed its worker.
 */
export async function handBackUnstarted(files: WatchedFiles, folder: RunFolder, starts: Uint32Array, slots: number, records: TaskRecords, cancelled: ReadonlySet<number>): Promise<HandedBack> {
  const [claims, releases] = await Promise.all([files.list(folder.claimsDir), files.list(folder.releasesDir)]);
  const done = new Set(releases);
  const corrupt = new Set(records.problems.map((p) => parseTaskStreamName(p.stream)?.worker));
  const kept = new Map<number, string>();
  let released = 0;
  for (const name of claims) {
    const claim = parseClaimName(name);
    if (!claim || done.has(endName(name))) continue;
    const taken = claim.kind === "release" ? await readRelease(files, folder, claim.of) : undefined;
    const tasks = claim.kind === "block" ? (claim.block < starts.length - 1 ? blockTasks(starts, claim.block) : []) : (taken?.tasks ?? []);
    const deaths = (taken?.deaths ?? 0) + 1;
    // Parts its holder gave to other workers are theirs now.
    const given = new Set<number>();
    for (const r of releases) if (releaseOf(r)?.claim === name && r !== endName(name)) for (const i of (await readRelease(files, folder, r))?.tasks ?? []) given.add(i);
    const unstarted = tasks.filter((i) => !given.has(i) && records.state(i) === undefined && !records.hasResult(i) && !cancelled.has(i));
    if (unstarted.length === 0) continue;
    const holder = await files
      .readFile(folder.claimFile(name))
      .then((b) => decodeClaim(b, folder.claimFile(name)).worker)
      .catch(unlessUnreachable(undefined));
    // Its records may be lost (a corrupt stream), or workers keep dying before these tasks start: they fail with this one.
    if (holder !== undefined && (corrupt.has(holder) || deaths > MAX_DEATHS)) {
      for (const i of unstarted) kept.set(i, holder);
      continue;
    }
    // The first `slots` were likeliest running when the worker died, before their records were flushed (one may have killed it): last in line.
    const k = Math.min(slots, unstarted.length - 1);
    const release: ReleaseFile = { tasks: [...unstarted.slice(k), ...unstarted.slice(0, k)], by: "client", at: Date.now(), deaths };
    await files.writeFile(folder.release(endName(name)), packr.pack(release));
    released += unstarted.length;
  }
  return { released, kept };
}

async function readRelease(files: WatchedFiles, folder: RunFolder, name: string): Promise<ReleaseFile | undefined> {
  const path = folder.release(name);
  return files
    .readFile(path)
    .then((b) => decodeRelease(b, path))
    .catch(unlessUnreachable(undefined));
}
