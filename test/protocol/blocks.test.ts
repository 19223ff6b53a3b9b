import { describe, expect, test } from "vitest";
import { blockOf, guidedBlocks } from "../../src/protocol/blocks.js";

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
