// How workers share a packed submission's tasks: each task is claimed once,
// by exclusive create of its claim file, and a restarted worker finds its own
// unfinished claims again.
import { readdir, readFile } from "node:fs/promises";
import { createExclusive } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import { decodeClaim, type ClaimFile } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";

/**
 * The order in which a worker tries tasks: from its own part of the list
 * (worker w of W starts at w·N/W) round to the start, so that workers rarely
 * try the same claim, and a worker that is done with its part takes others'.
 */
export function claimOrder(count: number, workerIndex: number, workerCount: number): { next: number; readonly count: number; tried: number } {
  const first = workerCount > 0 ? Math.floor(((workerIndex % workerCount) * count) / workerCount) : 0;
  return { next: first, count, tried: 0 };
}

/** Claims the next task not claimed yet; undefined when every task is claimed. */
export async function claimNext(folder: RunFolder, order: { next: number; count: number; tried: number }, claim: ClaimFile): Promise<number | undefined> {
  const bytes = packr.pack(claim);
  while (order.tried < order.count) {
    const index = order.next;
    order.next = (order.next + 1) % order.count;
    order.tried++;
    if (await createExclusive(folder.claim(index), bytes)) return index;
  }
  return undefined;
}

/** Tasks this worker claimed in an earlier run that have no result. */
export async function unfinishedClaims(folder: RunFolder, workerId: string, hasResult: (index: number) => boolean): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir(folder.claimsDir).catch(() => [] as string[])) {
    const index = Number(name);
    if (!Number.isInteger(index) || hasResult(index)) continue;
    const claim = await readFile(folder.claim(index)).then(
      (b) => decodeClaim(b, folder.claim(index)),
      () => undefined,
    );
    if (claim?.worker === workerId) out.push(index);
  }
  return out.sort((a, b) => a - b);
}
