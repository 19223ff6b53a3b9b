import { describe, expect, test } from "vitest";
import { parseSlurmState } from "../../src/slurm/states.js";
import { indexEntries } from "../../src/engine/scheduler.js";
import {
  parseDefaultMemory,
  parseJobId,
  parsePartitionMemory,
  parseQueueLines,
  parseSacctMb,
  parseSacctSeconds,
  parseSacctUsage,
  parseSbatchOutput,
  parseSinfoNodes,
  parseUsesPss,
} from "../../src/slurm/parse.js";
import { autoPacking, concurrentSlots } from "../../src/slurm/packing.js";
import { parseParameters } from "../../src/slurm/parameters.js";
import type { ClusterLimits } from "../../src/slurm/scheduler.js";

describe("parsing scheduler output", () => {
  test("sacct's usage: Elapsed and TotalCPU per element, the largest MaxRSS of its steps", () => {
    // Recorded on the test cluster (Slurm 22.05): sacct -n -P -j 2605,2606 -o JobID,Elapsed,TotalCPU,MaxRSS.
    const out = [
      "2605_0|00:00:04|00:02.164|",
      "2605_0.batch|00:00:04|00:02.164|138792K",
      "2605_1|00:00:02|00:00.111|",
      "2605_1.batch|00:00:02|00:00.111|49440K",
      "2606_0|00:00:13|00:03.220|",
      "2606_0.batch|00:00:13|00:03.220|205668K",
      "2606_0.extern|00:00:13|00:00:00|1.5G",
      "2607|1-02:03:04|10:01:02|",
      "",
    ].join("\n");
    const usage = parseSacctUsage(out);
    expect(usage.get("2605_0")).toEqual({ elapsedSeconds: 4, cpuSeconds: 2.164, maxRssMb: 138792 / 1024 });
    expect(usage.get("2605_1")).toEqual({ elapsedSeconds: 2, cpuSeconds: 0.111, maxRssMb: 49440 / 1024 });
    expect(usage.get("2606_0")?.maxRssMb).toBe(1.5 * 1024);
    expect(usage.get("2607")).toEqual({ elapsedSeconds: 86_400 + 2 * 3600 + 3 * 60 + 4, cpuSeconds: 10 * 3600 + 60 + 2, maxRssMb: undefined });
    expect(parseSacctSeconds("00:02.164")).toBe(2.164);
    expect(parseSacctSeconds("garbage")).toBeUndefined();
    expect(parseSacctMb("512M")).toBe(512);
    expect(parseSacctMb("2048")).toBe(2048 / 1024 ** 2);
    expect(parseSacctMb("")).toBeUndefined();
  });

  test("the memory a job gets when it asks for none, from scontrol show config", () => {
    expect(parseDefaultMemory("AuthType                = auth/munge\nDefMemPerCPU            = 500\nMaxMemPerNode           = UNLIMITED\n")).toEqual({ perCpuMb: 500 });
    expect(parseDefaultMemory("DefMemPerNode           = 64000\n")).toEqual({ perNodeMb: 64000 });
    expect(parseDefaultMemory("DefMemPerNode           = UNLIMITED\n")).toBeUndefined();
    expect(parseDefaultMemory("")).toBeUndefined();
    expect(parseUsesPss("JobAcctGatherParams     = UsePss,OverMemoryKill\n")).toBe(true);
    expect(parseUsesPss("JobAcctGatherParams     = OverMemoryKill\n")).toBe(false);
    // A partition's own default, where it sets one; the default partition also under "*".
    const partitions = parsePartitionMemory(
      "PartitionName=debug AllowGroups=ALL Default=YES DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED State=UP\nPartitionName=big Default=NO DefMemPerCPU=4000 MaxMemPerCPU=8000\nPartitionName=fat Default=NO DefMemPerNode=512000\n",
    );
    expect([...partitions]).toEqual([
      ["debug", undefined],
      ["*", undefined],
      ["big", { perCpuMb: 4000 }],
      ["fat", { perNodeMb: 512000 }],
    ]);
  });

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
    expect(parseSlurmState("COMPLETING")).toBe("RUNNING");
    expect(parseSlurmState("CONFIGURING")).toBe("RUNNING");
    expect(parseSlurmState("NODE_FAIL")).toBe("NODE_FAIL");
    expect(parseSlurmState("PREEMPTED")).toBe("PREEMPTED");
    expect(parseSlurmState("TIMEOUT")).toBe("TIMEOUT");
    expect(parseSlurmState("DEADLINE")).toBe("TIMEOUT");
    expect(parseSlurmState("BOOT_FAIL")).toBe("FAILED");
    expect(parseSlurmState("REQUEUED")).toBe("PENDING");
    expect(parseSlurmState("SOMETHING_NEW")).toBe("UNKNOWN");
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

  test("sinfo's memory, GPUs and partition time limits", () => {
    const maxTimes = new Map<string, number | undefined>();
    const nodes = parseSinfoNodes("n1|2|debug*|4000|gpu:2|infinite\nn1|2|short|4000|gpu:2|2:00\ng1|64|gpu|512000|gpu:a100:4(S:0-1),shard:8|2-00:00:00\nc1|8|debug*|1000|(null)|infinite\n", maxTimes);
    expect(nodes).toEqual([
      { name: "n1", cpus: 2, partitions: ["debug", "short"], inDefaultPartition: true, memoryMb: 4000, gpus: 2 },
      { name: "g1", cpus: 64, partitions: ["gpu"], inDefaultPartition: false, memoryMb: 512000, gpus: 4 },
      { name: "c1", cpus: 8, partitions: ["debug"], inDefaultPartition: true, memoryMb: 1000, gpus: 0 },
    ]);
    expect([...maxTimes]).toEqual([
      ["debug", undefined],
      ["*", undefined],
      ["short", 120],
      ["gpu", 172800],
    ]);
  });

  test('"auto" runs as many tasks at once as the partition holds, in as many workers as may be queued, each no bigger than a node', () => {
    const p = (input: Parameters<typeof parseParameters>[0]) => parseParameters(input);
    const big: ClusterLimits = { maxArraySize: 1001, maxSubmitJobs: undefined, nodes: [] };
    expect(autoPacking(2000, p({}), big)).toEqual({ workers: 64, slots: 1 }); // 64 at once by default
    expect(autoPacking(10, p({}), big)).toBeUndefined(); // every task gets its own element at once
    expect(autoPacking(2000, p({ arrayParallelism: 10 }), big)).toEqual({ workers: 10, slots: 1 });
    expect(autoPacking(2000, p({}), { ...big, maxSubmitJobs: 20 })).toEqual({ workers: 20, slots: 4 });
    const small: ClusterLimits = { ...big, nodes: parseSinfoNodes("n1|2|debug*|4000|gpu:2|infinite\nn2|2|debug*|4000|gpu:2|infinite\n") };
    expect(autoPacking(2000, p({}), small)).toEqual({ workers: 4, slots: 1 });
    expect(autoPacking(2000, p({}), { ...small, maxSubmitJobs: 2 })).toEqual({ workers: 2, slots: 2 });
    expect(autoPacking(2000, p({ cpusPerTask: 2 }), small)).toEqual({ workers: 2, slots: 1 });
    expect(autoPacking(2000, p({ gres: "gpu:2" }), small)).toEqual({ workers: 2, slots: 1 });
    expect(autoPacking(2000, p({ mem: "3G" }), small)).toEqual({ workers: 2, slots: 1 });
    // Each worker's own 96 MiB (and 16 per slot) counts: two 1950 MiB tasks fit a 4000 MiB node alone, one fits beside a worker.
    expect(autoPacking(2000, p({ mem: "1950M" }), small)).toEqual({ workers: 2, slots: 1 });
    // A task that fits a node alone but not beside a worker: one per element.
    expect(autoPacking(2000, p({ mem: "3950M" }), small)).toBeUndefined();
    expect(autoPacking(2000, p({ mem: "1000M" }), small)).toEqual({ workers: 4, slots: 1 });
    expect(autoPacking(2000, p({ mem: "1000M" }), { ...small, maxSubmitJobs: 2 })).toEqual({ workers: 2, slots: 2 });
    // Four tasks fit at once in elements of their own: no packing, whatever the workers would need.
    expect(autoPacking(4, p({ mem: "1950M" }), small)).toBeUndefined();
    // The cluster's default memory is a task's when it asks for none.
    expect(autoPacking(2000, p({}), { ...small, defaultMemory: { perCpuMb: 1950 } })).toEqual({ workers: 2, slots: 1 });
    expect(autoPacking(3, p({}), small)).toBeUndefined();
    // A drained or down node takes no jobs: it adds no capacity.
    const drained: ClusterLimits = { ...big, nodes: parseSinfoNodes("n1|2|debug*|4000|gpu:2|infinite|drain\nn2|2|debug*|4000|gpu:2|infinite|idle\nn3|2|debug*|4000|(null)|infinite|down*\n") };
    expect(drained.nodes.map((n) => n.usable)).toEqual([false, true, false]);
    expect(autoPacking(2000, p({}), drained)).toEqual({ workers: 2, slots: 1 });
  });
});
