import { describe, expect, test } from "vitest";
import { exitCodeOfSummaries, formatElapsed, progressLine, statusTable, summarize, tasksTable, type TaskView } from "../../src/report/summary.js";
import { attemptSection } from "../../src/cli/logs.js";

const view = (index: number, state: TaskView["state"], extra: Partial<TaskView> = {}): TaskView => ({ index, submission: "S1", task: index, id: `7_${index}`, state, rerun: false, ...extra });
const plain = { tty: false, color: false };
const tty = { tty: true, color: false };

describe("the reports' summaries", () => {
  test("counts per submission, done/failed, and an ETA from completed durations over the tasks running at once", () => {
    const tasks = [
      view(0, "COMPLETED", { startedAt: 0, endedAt: 10_000 }),
      view(1, "COMPLETED", { startedAt: 0, endedAt: 30_000 }),
      view(2, "FAILED"),
      view(3, "RUNNING"),
      view(4, "RUNNING"),
      view(5, "PENDING"),
      view(6, "PENDING"),
      view(7, "PENDING"),
      { ...view(0, "COMPLETED", { rerun: true }), submission: "S2" },
    ];
    const [s1, s2] = summarize(tasks);
    // 5 left, 2 at once: 3 rounds of the 20 s mean.
    expect(s1).toEqual({ id: "S1", tasks: 8, states: { COMPLETED: 2, FAILED: 1, RUNNING: 2, PENDING: 3 }, reruns: 0, done: 3, running: 2, pending: 3, failed: 1, etaMs: 60_000 });
    expect(s2).toMatchObject({ id: "S2", tasks: 1, reruns: 1, done: 1, etaMs: 0 });
    expect(progressLine(s1!, plain)).toBe("S1  3/8 done  2 running  3 pending  1 failed  ETA 1m 00s");
    expect(progressLine(s2!, plain)).toBe("S2  1/1 done  0 running  0 pending  0 failed");
    expect(progressLine(summarize([view(0, "PENDING")])[0]!, plain)).toBe("S1  0/1 done  0 running  1 pending  0 failed  ETA ?");
    expect(progressLine(s1!, { tty: true, color: true })).toContain("\x1b[31m1 failed\x1b[0m");
  });

  test("exit codes: 3 while any task is pending or running, else 1 if any failed, else 0", () => {
    expect(exitCodeOfSummaries(summarize([view(0, "COMPLETED"), view(1, "FAILED"), view(2, "RUNNING")]))).toBe(3);
    expect(exitCodeOfSummaries(summarize([view(0, "COMPLETED"), view(1, "TIMEOUT")]))).toBe(1);
    expect(exitCodeOfSummaries(summarize([view(0, "COMPLETED")]))).toBe(0);
  });

  test("tables: tab-separated off a TTY, aligned on one, a total row for several submissions", () => {
    const tasks = [view(0, "COMPLETED"), view(1, "FAILED"), { ...view(0, "COMPLETED"), submission: "S2-long-name" }];
    expect(statusTable(summarize(tasks), plain)).toBe("SUBMISSION\tTASKS\tCOMPLETED\tFAILED\nS1\t2\t1\t1\nS2-long-name\t1\t1\t0\ntotal\t3\t2\t1\n");
    expect(statusTable(summarize(tasks), tty)).toBe(
      ["SUBMISSION    TASKS  COMPLETED  FAILED", "S1            2      1          1", "S2-long-name  1      1          0", "total         3      2          1", ""].join("\n"),
    );
    const running = [view(0, "RUNNING", { host: "n1", startedAt: 1000 }), view(1, "COMPLETED", { host: "n2", startedAt: 0, endedAt: 125_000, rerun: true })];
    expect(tasksTable(running, plain, 61_000)).toBe("INDEX\tSUBMISSION\tTASK\tID\tSTATE\tHOST\tELAPSED\n0\tS1\t0\t7_0\tRUNNING\tn1\t1m 00s\n1\tS1\t1\t7_1\tCOMPLETED (rerun)\tn2\t2m 05s\n");
  });

  test("durations as people read them", () => {
    expect([0, 45_000, 185_000, 7_800_000].map(formatElapsed)).toEqual(["0s", "45s", "3m 05s", "2h 10m"]);
  });

  test("a log with several attempts is split at the runner's headers", () => {
    const log =
      "first\nline\n\n===== slurmkit: task 3, attempt 1, on n1 at 2026-11-22T00:00:00.000Z =====\nsecond\n\n===== slurmkit: task 3, attempt 2, on n2 at 2026-11-22T00:01:00.000Z =====\nthird\n";
    expect(attemptSection(log, 0)).toBe("first\nline\n");
    expect(attemptSection(log, 1)).toBe("second\n");
    expect(attemptSection(log, 2)).toBe("third\n");
    expect(attemptSection(log, 3)).toBeUndefined();
    expect(attemptSection("only\n", 0)).toBe("only\n");
  });
});
