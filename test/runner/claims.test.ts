// Workers sharing tasks by blocks, on this machine's file system: every task
// handed out once, releases taken up by another worker, and a restarted
// worker's own claims.
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { Claims } from "../../runner/claims.js";
import { guidedBlocks } from "../../src/protocol/blocks.js";
import { decodeRelease } from "../../src/protocol/records.js";
import { RunFolder } from "../../src/protocol/run-folder.js";

async function folder(): Promise<RunFolder> {
  const f = new RunFolder(await mkdtemp(join(tmpdir(), "slurmkit-claims-")));
  await Promise.all([f.claimsDir, f.releasesDir, f.cancelsDir, f.wantsDir].map((d) => mkdir(d)));
  return f;
}

const claimsOf = (f: RunFolder, count: number, w: number, workers: number) => new Claims(f, count, w, workers, () => ({ worker: `9_${w}`, slot: 0, host: "test", at: 1 }));

async function drain(claims: Claims): Promise<number[]> {
  const out: number[] = [];
  for (let t = await claims.next(); t; t = await claims.next()) out.push(t.index);
  return out;
}

describe("claims by blocks", () => {
  test("4 workers at once take each of 5,000 tasks exactly once, with one claim file per block", async () => {
    const f = await folder();
    const taken = await Promise.all([0, 1, 2, 3].map((w) => drain(claimsOf(f, 5000, w, 4))));
    const all = taken.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    // Each worker started in its own part of the list, so each ran some.
    for (const t of taken) expect(t.length).toBeGreaterThan(0);
    expect((await readdir(f.claimsDir)).sort()).toEqual(Array.from({ length: guidedBlocks(5000, 4).length - 1 }, (_, b) => `b${b}`).sort());
  });

  test("concurrent next() calls of one worker never hand out a task twice", async () => {
    const f = await folder();
    const claims = claimsOf(f, 300, 0, 2);
    const got = await Promise.all(Array.from({ length: 320 }, () => claims.next()));
    const indices = got.flatMap((t) => (t ? [t.index] : []));
    expect(indices.length).toBe(300);
    expect(new Set(indices).size).toBe(300);
  });

  test("a worker that stops hands back what it never started, a task given back included; another worker takes it once", async () => {
    const f = await folder();
    const first = claimsOf(f, 40, 0, 1);
    const ran = [(await first.next())!.index, (await first.next())!.index];
    const notStarted = (await first.next())!;
    first.giveBack(notStarted);
    expect(await first.release()).toBe(20 - 2);
    const release = decodeRelease(await readFile(f.release("b0.end")), "b0.end");
    expect(release.tasks[0]).toBe(notStarted.index);
    expect(release.tasks).not.toContain(ran[0]);
    // A later worker finds every block claimed, then takes the release (and the other blocks' tasks were never claimed by the first).
    const second = claimsOf(f, 40, 1, 1);
    const rest = await drain(second);
    expect(rest.sort((a, b) => a - b)).toEqual(Array.from({ length: 38 }, (_, k) => k + 2));
    expect(await readdir(f.claimsDir)).toContain("rb0.end");
    // A third finds nothing left.
    expect(await claimsOf(f, 40, 2, 1).next()).toBeUndefined();
  });

  test("a worker with every slot busy gives half its unstarted tasks to a worker that waits for some, which takes them once", async () => {
    const f = await folder();
    const busy = claimsOf(f, 40, 0, 1);
    const running = (await busy.next())!.index;
    const idle = claimsOf(f, 40, 1, 1);
    const drained = drain(idle);
    // The idle worker takes the other blocks, then says it wants tasks.
    for (let i = 0; i < 100 && !(await readdir(f.wantsDir)).includes("9_1"); i++) await new Promise((r) => setTimeout(r, 50));
    const before = busy.unstarted;
    const given = await busy.share();
    expect(given).toBe(before - Math.floor(before / 2));
    const got = await drained;
    expect(await readdir(f.releasesDir)).toEqual(["b0.s1"]);
    expect(await readdir(f.claimsDir)).toContain("rb0.s1");
    // Every task exactly once: the one running, the busy worker's rest, and what the idle one ran.
    const kept: number[] = [];
    for (let t = await busy.next(); t && busy.unstarted >= 0 && kept.length < before - given; t = await busy.next()) kept.push(t.index);
    expect([running, ...kept, ...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(await readdir(f.wantsDir)).toEqual([]);
    // No one waits now: nothing is given.
    expect(await claimsOf(f, 40, 0, 1).share()).toBe(0);
  });

  test("a cancel made before the claim is seen by the worker that claims the block", async () => {
    const f = await folder();
    await writeFile(f.cancel(3), "");
    const claims = claimsOf(f, 10, 0, 1);
    await claims.next();
    expect(claims.cancelled(3)).toBe(true);
    expect(claims.cancelled(4)).toBe(false);
  });

  test("a restarted worker takes up its own claims: unreleased tasks without a result, and started tasks of a claim it released", async () => {
    const f = await folder();
    const before = claimsOf(f, 40, 0, 1);
    const done = (await before.next())!.index;
    const running = (await before.next())!.index;
    // A second block, released when the first attempt stopped.
    const blockZero = guidedBlocks(40, 1)[1]!;
    for (let k = 2; k < blockZero; k++) await before.next();
    const startedInB1 = (await before.next())!.index;
    expect(await before.release()).toBeGreaterThan(0);
    const after = claimsOf(f, 40, 0, 1);
    const again = await after.resume((i) => i === done);
    // b1 was released: its started task runs again; b0 was fully handed out, so it is not held.
    expect(again).toEqual([startedInB1]);
    // b0 had no release: its tasks without a result are held again, the one running when it stopped first.
    expect((await after.next())?.index).toBe(running);
    // Another worker's claims are not taken up.
    expect(await claimsOf(f, 40, 1, 1).resume(() => false)).toEqual([]);
  });
});
