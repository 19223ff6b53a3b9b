import { describe, expect, test } from "vitest";
import { taskWarningDue } from "../../runner/attempts.js";

describe("a worker's warning to its packed task", () => {
  test("comes warnSeconds before the task's own limit, at once when the lead is longer than the limit, and never with a lead of 0", () => {
    const start = 1_000_000;
    expect(taskWarningDue(30, 60, start, start + 29_999)).toBe(false);
    expect(taskWarningDue(30, 60, start, start + 30_000)).toBe(true);
    expect(taskWarningDue(90, 60, start, start)).toBe(true);
    // A task of 30 s or less gets a lead of 0 by default: no warning, even at its limit, where it is stopped TIMEOUT.
    expect(taskWarningDue(0, 20, start, start + 20_000)).toBe(false);
    expect(taskWarningDue(0, 20, start, start + 60_000)).toBe(false);
  });
});
