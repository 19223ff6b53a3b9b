import { describe, expect, test } from "vitest";
import { parseJobState } from "../../src/api/job-state.js";
import { indexEntries, parseJobId, parseQueueLines, parseSbatchOutput, parseSinfoNodes } from "../../src/slurm/parse.js";
import { autoTasksPerElement, concurrentSlots } from "../../src/slurm/plan.js";
import type { ClusterLimits } from "../../src/slurm/scheduler.js";

describe("parsing scheduler output", () => {
  test("job ids, elements and array ranges", () => {
    expect(parseJobId("123")).toEqual({ jobId: "123" });
    expect(parseJobId("123_4")).toEqual({ jobId: "123", indices: [4] });
    expect(parseJobId("123_[4-9%2]")).toEqual({ jobId: "123", indices: [4, 5, 6, 7, 8, 9] });
    expect(parseJobId("123_[0,3-5,9]")).toEqual({ jobId: "123", indices: [0, 3, 4, 5, 9] });
    expect(parseJobId("123_[0-8:4]")).toEqual({ jobId: "123", indices: [0, 4, 8] });
    expect(parseJobId("123.batch")).toBeUndefined();
    expect(parseJobId("abc")).toBeUndefined();
  });

  test("squeue and sacct lines, with states as Slurm prints them", () => {
    const entries = parseQueueLines("123_[2-4%2]|PENDING\n123_0|RUNNING\n123_1|CANCELLED by 0\n124|OUT_OF_MEMORY\n\ngarbage\n");
    expect(entries).toEqual([
      { jobId: "123", indices: [2, 3, 4], state: "PENDING", rawState: "PENDING" },
      { jobId: "123", indices: [0], state: "RUNNING", rawState: "RUNNING" },
      { jobId: "123", indices: [1], state: "CANCELLED", rawState: "CANCELLED by 0" },
      { jobId: "124", state: "OUT_OF_MEMORY", rawState: "OUT_OF_MEMORY" },
    ]);
    expect(Object.fromEntries(indexEntries(entries))).toEqual({
      "123_2": "PENDING",
      "123_3": "PENDING",
      "123_4": "PENDING",
      "123_0": "RUNNING",
      "123_1": "CANCELLED",
      "124": "OUT_OF_MEMORY",
    });
  });

  test("every Slurm state maps to a typed state", () => {
    expect(parseJobState("COMPLETING")).toBe("RUNNING");
    expect(parseJobState("CONFIGURING")).toBe("RUNNING");
    expect(parseJobState("NODE_FAIL")).toBe("NODE_FAIL");
    expect(parseJobState("PREEMPTED")).toBe("PREEMPTED");
    expect(parseJobState("TIMEOUT")).toBe("TIMEOUT");
    expect(parseJobState("DEADLINE")).toBe("TIMEOUT");
    expect(parseJobState("BOOT_FAIL")).toBe("FAILED");
    expect(parseJobState("REQUEUED")).toBe("PENDING");
    expect(parseJobState("SOMETHING_NEW")).toBe("UNKNOWN");
  });

  test("sbatch --parsable output", () => {
    expect(parseSbatchOutput("123\n")).toBe("123");
    expect(parseSbatchOutput("123;cluster\n")).toBe("123");
    expect(parseSbatchOutput("Submitted batch job 123")).toBeUndefined();
  });

  test("sinfo nodes, and how many jobs of a size the partition runs at once", () => {
    const nodes = parseSinfoNodes("n1|2|debug*\nn2|2|debug*\ng1|16|gpu\ng1|16|long\nbad line\nx|?|debug\n");
    expect(nodes).toEqual([
      { name: "n1", cpus: 2, partitions: ["debug"], inDefaultPartition: true },
      { name: "n2", cpus: 2, partitions: ["debug"], inDefaultPartition: true },
      { name: "g1", cpus: 16, partitions: ["gpu", "long"], inDefaultPartition: false },
    ]);
    expect(concurrentSlots(nodes, undefined)).toBe(4);
    expect(concurrentSlots(nodes, undefined, 2)).toBe(2);
    expect(concurrentSlots(nodes, "gpu", 3)).toBe(5);
    expect(concurrentSlots(nodes, "debug,long")).toBe(20);
    expect(concurrentSlots(nodes, "nosuch")).toBeUndefined();
    expect(concurrentSlots([], undefined)).toBeUndefined();
  });

  test('"auto" makes as many elements as run at once: arrayParallelism, the partition\'s CPUs, MaxSubmitJobs', () => {
    const big: ClusterLimits = { maxArraySize: 1001, maxSubmitJobs: undefined, nodes: [] };
    expect(autoTasksPerElement(2000, {}, big)).toBe(32); // 64 elements by default
    expect(autoTasksPerElement(10, {}, big)).toBe(1);
    expect(autoTasksPerElement(2000, { arrayParallelism: 10 }, big)).toBe(200);
    expect(autoTasksPerElement(2000, {}, { ...big, maxSubmitJobs: 20 })).toBe(100);
    const small: ClusterLimits = { ...big, nodes: parseSinfoNodes("n1|2|debug*\nn2|2|debug*\n") };
    expect(autoTasksPerElement(2000, {}, small)).toBe(500);
    expect(autoTasksPerElement(2000, { cpusPerTask: 2 }, small)).toBe(1000);
    expect(autoTasksPerElement(3, {}, small)).toBe(1);
  });
});
