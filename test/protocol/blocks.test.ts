import { describe, expect, test } from "vitest";
import { blockClaimName, blockOf, blockTasks, endName, guidedBlocks, isReleaseName, parseClaimName, releaseClaimName, releaseOf, splitName } from "../../src/protocol/blocks.js";

describe("guided blocks", () => {
  test("they cover every task once, in order, and shrink to the floor (the tasks over 16 times the workers) at the tail", () => {
    for (const [count, workers] of [
      [1, 1],
      [7, 3],
      [100, 2],
      [5000, 4],
      [1_000_000, 16],
    ] as const) {
      const starts = guidedBlocks(count, workers);
      expect(starts[0]).toBe(0);
      expect(starts.at(-1)).toBe(count);
      const sizes = Array.from(starts.subarray(1), (s, b) => s - starts[b]!);
      expect(sizes.every((s) => s >= 1)).toBe(true);
      expect(sizes.every((s, b) => b === 0 || s <= sizes[b - 1]!)).toBe(true);
      expect(sizes.at(-2) ?? 1).toBe(Math.max(1, Math.ceil(count / (16 * workers))));
    }
  });

  test("the first block is the tasks over twice the workers, and the number of blocks does not grow with the task count", () => {
    expect(Array.from(guidedBlocks(10, 1))).toEqual([0, 5, 8, 9, 10]);
    expect(guidedBlocks(1_000_000, 16)[1]).toBe(31_250);
    const blocks = (n: number, w: number) => guidedBlocks(n, w).length - 1;
    // About 6 per worker: 24 for 4 workers from 5,000 tasks up, 98 for 16.
    for (const n of [5000, 100_000, 1_000_000]) {
      expect(blocks(n, 4)).toBe(24);
      expect(Math.abs(blocks(n, 16) - 98)).toBeLessThanOrEqual(1);
    }
    expect(blocks(1_000_000, 16)).toBeLessThanOrEqual(7 * 16);
    expect(blocks(100, 4)).toBe(20);
    expect(blocks(1_000_000, 64)).toBeLessThanOrEqual(7 * 64);
    expect(guidedBlocks(0, 3)).toEqual(Uint32Array.from([0]));
  });

  test("blockOf finds each task's block, and names what is out of range", () => {
    const starts = guidedBlocks(5000, 4);
    for (let i = 0; i < 5000; i += 7) {
      const b = blockOf(starts, i);
      expect(starts[b]! <= i && i < starts[b + 1]!).toBe(true);
    }
    expect(blockOf(starts, 4999)).toBe(starts.length - 2);
    expect(() => blockOf(starts, 5000)).toThrow("Task 5000 is in no block of 5000 tasks");
    expect(() => guidedBlocks(10, 0)).toThrow("Expected at least one worker, got 0");
  });
});

describe("claim names", () => {
  test("a block's claim, a release's claim, and a release of a release, parse back; a version 2 task claim is none of them", () => {
    expect(parseClaimName(blockClaimName(12))).toEqual({ kind: "block", block: 12 });
    expect(parseClaimName(releaseClaimName("b12.end"))).toEqual({ kind: "release", of: "b12.end" });
    expect(parseClaimName(releaseClaimName(endName(releaseClaimName("b3.s1"))))).toEqual({ kind: "release", of: "rb3.s1.end" });
    // Not a release's name: a claim's.
    expect(parseClaimName(releaseClaimName("b12"))).toBeUndefined();
    for (const other of ["12", "b", "rx3", "b3.tmp-n1-5-ab", "c0"]) expect(parseClaimName(other)).toBeUndefined();
  });

  test("releases: a claim's end and the parts its holder gave away, of blocks and of releases taken up, never two of one name", () => {
    expect(splitName("b3", 2)).toBe("b3.s2");
    expect(endName("rb3.s2")).toBe("rb3.s2.end");
    expect(parseClaimName(releaseClaimName(splitName("b3", 2)))).toEqual({ kind: "release", of: "b3.s2" });
    for (const name of ["b3.end", "b3.s2", "rb3.s2.end", "rb3.s2.s1", "rb3.end.end"]) expect(isReleaseName(name)).toBe(true);
    for (const name of ["b3", "b3.s2.s1", "3", "b3.tmp-n1-5-ab", "b3.s", "rb3"]) expect(isReleaseName(name)).toBe(false);
    expect(releaseOf("rb3.s2.s1")).toEqual({ claim: "rb3.s2", split: 1 });
    expect(releaseOf("rb3.s2.end")).toEqual({ claim: "rb3.s2", split: undefined });
    // Split 2 of the claim "rb3" and the end of the claim "rb3.s2" are different names.
    expect(splitName(releaseClaimName(endName("b3")), 2)).not.toBe(endName(releaseClaimName(splitName("b3", 2))));
  });

  test("a block's tasks are its range; a block past the last is a RangeError", () => {
    const starts = guidedBlocks(10, 1);
    expect(blockTasks(starts, 0)).toEqual([0, 1, 2, 3, 4]);
    expect(blockTasks(starts, 3)).toEqual([9]);
    expect(() => blockTasks(starts, 4)).toThrow(RangeError);
  });
});
