// Planning is pure: these run without a cluster.
import { describe, expect, test } from "vitest";
import { ParameterError } from "../../src/base/errors.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import { parseParameters } from "../../src/slurm/parameters.js";
import { checkSubmission } from "../../src/slurm/packing.js";
import { planSubmission, warningOf, type PlanInput } from "../../src/slurm/plan.js";
import type { ClusterLimits } from "../../src/slurm/scheduler.js";

const limits: ClusterLimits = {
  maxArraySize: 1001,
  maxSubmitJobs: undefined,
  nodes: [
    { name: "n1", cpus: 2, partitions: ["debug"], inDefaultPartition: true },
    { name: "n2", cpus: 2, partitions: ["debug"], inDefaultPartition: true },
  ],
};
const folder = new RunFolder("/runs/s");

function plan(over: Partial<PlanInput> & { taskCount: number }) {
  return planSubmission({
    array: true,
    parameters: parseParameters({}),
    limits,
    packing: { workers: undefined },
    dependency: undefined,
    folder,
    runner: ["/bin/node", "/pkg/dist/runner/runner.js"],
    ...over,
  });
}

const sbatchLines = (text: string) => text.split("\n").filter((l) => l.startsWith("#SBATCH"));
const runLine = (text: string) => text.split("\n").find((l) => l.startsWith("exec "));

describe("planSubmission", () => {
  test("N tasks, one per element: one array job with per-task logs, not packed", () => {
    const p = plan({ taskCount: 10, parameters: parseParameters({ time: 5, arrayParallelism: 3 }) });
    expect(p.packed).toBe(false);
    expect(p.scripts.map((s) => [s.path, s.firstElement, s.count])).toEqual([["/runs/s/job.sbatch", 0, 10]]);
    // Slurm's warning (USR2, 90 s before the limit) goes to the batch shell; Slurm never reruns a task by itself; logs are appended to.
    expect(sbatchLines(p.scripts[0]!.text)).toEqual([
      "#SBATCH --array=0-9%3",
      "#SBATCH --output=/runs/s/logs/%a.out",
      "#SBATCH --error=/runs/s/logs/%a.err",
      "#SBATCH --signal=B:USR2@90",
      "#SBATCH --time=00:05:00",
      "#SBATCH --no-requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --comment=slurmkit:s:0",
    ]);
    expect(runLine(p.scripts[0]!.text)).toBe("exec /bin/node /pkg/dist/runner/runner.js /runs/s --warning USR2 --max-requeues 3");
    expect(p.manifest).toMatchObject({ version: 4, kind: "slurm", taskCount: 10, jobId: null, array: true, ranks: 1 });
    // What one task asked for, for usage reports and right-sizing.
    expect(p.manifest.request).toEqual({ cpus: 1, timeSeconds: 300 });
    expect(p.manifest.tasksPerElement).toBeUndefined();
    expect(p.dirs).toEqual(["/runs/s/logs", "/runs/s/results", "/runs/s/state"]);
  });

  test("more elements than MaxArraySize split into several array jobs, each with its element offset", () => {
    const p = plan({ taskCount: 2500 });
    expect(p.packed).toBe(true);
    expect(p.scripts.map((s) => [s.path, s.firstElement, s.count])).toEqual([
      ["/runs/s/job.sbatch", 0, 1001],
      ["/runs/s/job-1.sbatch", 1001, 1001],
      ["/runs/s/job-2.sbatch", 2002, 498],
    ]);
    expect(sbatchLines(p.scripts[2]!.text)).toEqual([
      "#SBATCH --array=0-497",
      "#SBATCH --output=/runs/s/logs/elements/%A_%a.out",
      "#SBATCH --error=/runs/s/logs/elements/%A_%a.err",
      "#SBATCH --signal=B:USR2@90",
      "#SBATCH --no-requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --comment=slurmkit:s:2",
    ]);
    // Each element runs one task, its index offset by the array's first element; every rank of it too.
    expect(runLine(p.scripts[1]!.text)).toBe("exec /bin/node /pkg/dist/runner/runner.js /runs/s --element-offset 1001 --warning USR2 --max-requeues 3");
    expect(p.manifest.tasksPerElement).toBe(1);
    expect(p.dirs).toContain("/runs/s/logs/elements");
  });

  test('"auto" makes as many workers as the partition runs tasks at once, or one task per element when that is enough', () => {
    const auto = { workers: "auto", slots: undefined } as const;
    const time = parseParameters({ time: 5 });
    expect(plan({ taskCount: 2000, packing: auto, parameters: time }).manifest.workers).toEqual({ count: 4, slots: 1, taskTimeSeconds: 300, walltimeSeconds: 300 * 500 + 60 });
    expect(plan({ taskCount: 2000, packing: auto, parameters: parseParameters({ time: 5, cpusPerTask: 2 }) }).manifest.workers).toMatchObject({ count: 2, slots: 1 });
    const few = plan({ taskCount: 3, packing: auto, parameters: time });
    expect([few.perElement, few.packed, few.manifest.workers]).toEqual([1, false, undefined]);
    // Without a time limit a worker could not keep each task to its own: "auto" does not pack, explicit workers are refused.
    expect(plan({ taskCount: 2000, packing: auto }).manifest.workers).toBeUndefined();
    expect(() => plan({ taskCount: 2000, packing: { workers: 4, slots: undefined } })).toThrow(
      "Invalid mapArray options: Expected the `time` parameter with `workers` or `slots`: a worker runs each task within its own time limit, and needs to know it",
    );
  });

  test("workers ask for slots times one task's resources plus the worker's own memory, and a walltime of the tasks' time limits they may run", () => {
    const p = plan({
      taskCount: 12,
      limits: { ...limits, nodes: [{ name: "g1", cpus: 8, partitions: ["debug"], inDefaultPartition: true, memoryMb: 16000, gpus: 4 }] },
      packing: { workers: 3, slots: 2 },
      parameters: parseParameters({ time: 1, cpusPerTask: 2, mem: "1G", gres: "gpu:t4:1", arrayParallelism: 2 }),
    });
    expect(p.manifest.workers).toEqual({ count: 3, slots: 2, taskTimeSeconds: 60, walltimeSeconds: 60 * 2 + 60, taskMemMb: 1024, memMb: 2 * (1024 + 32) + 96, parallelism: 2 });
    expect(p.manifest.tasksPerElement).toBeUndefined();
    expect(sbatchLines(p.scripts[0]!.text)).toEqual([
      "#SBATCH --array=0-2%2",
      "#SBATCH --output=/runs/s/logs/elements/%A_%a.out",
      "#SBATCH --error=/runs/s/logs/elements/%A_%a.err",
      "#SBATCH --cpus-per-task=4",
      "#SBATCH --gres=gpu:t4:2",
      "#SBATCH --signal=B:USR2@90",
      "#SBATCH --time=00:03:00",
      "#SBATCH --mem=2208M",
      "#SBATCH --no-requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --comment=slurmkit:s:0",
    ]);
    expect(p.scripts[0]!.text).toContain("\nSLURMKIT_ELEMENT_START=$(date +%s)\nexport SLURMKIT_ELEMENT_START\n");
    expect(runLine(p.scripts[0]!.text)).toBe(
      "exec /bin/node '--max-semi-space-size=1' /pkg/dist/runner/runner.js /runs/s --worker 0 --workers 3 --slots 2 --cpus-per-task 2 --task-time 60 --walltime 180 --task-mem 1024 --warning USR2 --warn-seconds 30 --max-requeues 3",
    ); // a 60 s task is warned 30 s in, not at its start
    expect(p.dirs).toEqual([
      "/runs/s/logs",
      "/runs/s/results",
      "/runs/s/state",
      "/runs/s/logs/elements",
      "/runs/s/streams",
      "/runs/s/claims",
      "/runs/s/cancels",
      "/runs/s/releases",
      "/runs/s/wants",
      "/runs/s/rounds",
    ]);
  });

  test("a worker bigger than any node is refused", () => {
    expect(() => plan({ taskCount: 8, packing: { workers: 2, slots: 3 }, parameters: parseParameters({ time: 5 }) })).toThrow(
      "Invalid mapArray options: Expected `slots` to be at most 2: a worker asks for slots × one task's CPUs, memory and GPUs, and no node of the partition holds 3 tasks",
    );
    // Two 1960 MiB tasks fit a 4000 MiB node alone, but not in one worker, which needs 96 MiB of its own.
    const withMemory: ClusterLimits = { ...limits, nodes: limits.nodes.map((n) => ({ ...n, memoryMb: 4000 })) };
    expect(() => plan({ taskCount: 8, limits: withMemory, packing: { workers: 2, slots: 2 }, parameters: parseParameters({ time: 5, mem: "1960M" }) })).toThrow(
      "Invalid mapArray options: Expected `slots` to be at most 1: a worker asks for slots × one task's CPUs, memory and GPUs (and 32 MiB more per slot), plus 96 MiB for its own processes, and no node of the partition holds 2 tasks",
    );
  });

  test("a worker's memory is one task's and a slot's margin, times its slots, plus its own: from mem, memPerCpu, raw options, or the defaults", () => {
    const workers = { workers: 2, slots: 2 } as const;
    const memLines = (p: ReturnType<typeof plan>) => sbatchLines(p.scripts[0]!.text).filter((l) => /--mem/.test(l));
    // memPerCpu × a task's CPUs is one task's memory; the element asks for it as --mem, with 32 MiB per slot and the worker's own 96.
    const perCpu = plan({ taskCount: 8, packing: workers, parameters: parseParameters({ time: 5, memPerCpu: "100M" }) });
    expect(perCpu.manifest.workers).toMatchObject({ taskMemMb: 100, memMb: 2 * 132 + 96 });
    expect(memLines(perCpu)).toEqual(["#SBATCH --mem=360M"]);
    // memPerCpu × CPUs with raw options: the element asks for its own --mem instead, and keeps the raw options.
    const wide: ClusterLimits = { ...limits, nodes: [{ name: "c1", cpus: 8, partitions: ["debug"], inDefaultPartition: true }] };
    const raw = plan({ taskCount: 8, packing: workers, limits: wide, parameters: parseParameters({ time: 5, cpusPerTask: 2, memPerCpu: "1G", sbatch: { "mail-type": "END" } }) });
    expect(raw.manifest.workers).toMatchObject({ taskMemMb: 2048, memMb: 2 * 2080 + 96 });
    expect(memLines(raw)).toEqual(["#SBATCH --mem=4256M"]);
    expect(sbatchLines(raw.scripts[0]!.text)).toContain("#SBATCH --mail-type=END");
    expect(plan({ taskCount: 8, packing: workers, parameters: parseParameters({ time: 5, gres: "gpu:1", sbatch: { "mem-per-gpu": "3G" } }) }).manifest.workers).toMatchObject({ taskMemMb: 3072 });
    // --mem=0 (a node's whole memory) cannot be shared out: the plan leaves it as it is (checkSubmission refuses workers with it).
    const whole = plan({ taskCount: 8, packing: workers, parameters: parseParameters({ time: 5, mem: 0 }) });
    expect(whole.manifest.workers).not.toHaveProperty("taskMemMb");
    expect(memLines(whole)).toEqual(["#SBATCH --mem=0"]);
    // A task that asks for no memory gets its partition's default, else the cluster's, in its own element, and so in a slot.
    const defaults: ClusterLimits = {
      ...limits,
      defaultMemory: { perCpuMb: 500 },
      partitionMemory: new Map([
        ["big", { perCpuMb: 4000 }],
        ["debug", undefined],
        ["*", undefined],
      ]),
    };
    const byDefault = plan({ taskCount: 8, packing: workers, limits: defaults, parameters: parseParameters({ time: 5 }) });
    expect(byDefault.manifest.workers).toMatchObject({ taskMemMb: 500, memMb: 2 * 532 + 96 });
    expect(memLines(byDefault)).toEqual(["#SBATCH --mem=1160M"]);
    expect(runLine(byDefault.scripts[0]!.text)).toContain(" --task-mem 500 ");
    const bigNodes: ClusterLimits = { ...defaults, nodes: [{ name: "b1", cpus: 8, partitions: ["big"], inDefaultPartition: false }] };
    expect(plan({ taskCount: 8, packing: workers, limits: bigNodes, parameters: parseParameters({ time: 5, partition: "big" }) }).manifest.workers).toMatchObject({ taskMemMb: 4000 });
    // DefMemPerNode is what one task's element gets.
    expect(plan({ taskCount: 8, packing: workers, limits: { ...limits, defaultMemory: { perNodeMb: 2000 } }, parameters: parseParameters({ time: 5 }) }).manifest.workers).toMatchObject({
      taskMemMb: 2000,
      memMb: 4160,
    });
    // A cluster that counts proportional set sizes (UsePss): the worker counts them too.
    expect(runLine(plan({ taskCount: 8, packing: workers, limits: { ...defaults, usesPss: true }, parameters: parseParameters({ time: 5 }) }).scripts[0]!.text)).toContain(
      " --task-mem 500 --task-mem-pss ",
    );
    // Nothing limits memory: nothing is added, and nothing is enforced.
    const unlimited = plan({ taskCount: 8, packing: workers, parameters: parseParameters({ time: 5 }) });
    expect(unlimited.manifest.workers).not.toHaveProperty("taskMemMb");
    expect(memLines(unlimited)).toEqual([]);
    expect(runLine(unlimited.scripts[0]!.text)).not.toContain("--task-mem");
    // A worker of one slot carries its own process too.
    expect(plan({ taskCount: 8, packing: { workers: 2, slots: 1 }, parameters: parseParameters({ time: 5, mem: "100M" }) }).manifest.workers).toMatchObject({ taskMemMb: 100, memMb: 228 });
  });

  test("a worker's walltime never exceeds the partition's MaxTime; a task longer than MaxTime is refused", () => {
    const short: ClusterLimits = { ...limits, maxTimes: new Map([["short", 120]]) };
    const p = plan({ taskCount: 40, limits: short, packing: { workers: 2, slots: undefined }, parameters: parseParameters({ partition: "short", time: 1 }) });
    expect(p.manifest.workers?.walltimeSeconds).toBe(120);
    expect(() => plan({ taskCount: 40, limits: short, packing: { workers: 2, slots: undefined }, parameters: parseParameters({ partition: "short", time: 3 }) })).toThrow(
      "Invalid Slurm parameters: Expected `time` (00:03:00) to be at most the partition's MaxTime (00:02:00): Slurm would leave the job pending for ever (PartitionTimeLimit)",
    );
    // One task per element too; a task may run on the longest of its partitions; unknown or unlimited ones check nothing.
    const two: ClusterLimits = {
      ...limits,
      maxTimes: new Map<string, number | undefined>([
        ["short", 120],
        ["long", 600],
        ["open", undefined],
      ]),
    };
    expect(() => plan({ taskCount: 4, limits: two, parameters: parseParameters({ partition: "short", time: 3 }) })).toThrow("PartitionTimeLimit");
    expect(plan({ taskCount: 4, limits: two, parameters: parseParameters({ partition: "short,long", time: 3 }) }).scripts).toHaveLength(1);
    expect(plan({ taskCount: 4, limits: two, parameters: parseParameters({ partition: "open", time: 3000 }) }).scripts).toHaveLength(1);
    expect(plan({ taskCount: 4, limits: two, parameters: parseParameters({ partition: "elsewhere", time: 3000 }) }).scripts).toHaveLength(1);
    // A mem larger than any node of the partition.
    const sized: ClusterLimits = { ...limits, nodes: limits.nodes.map((n) => ({ ...n, memoryMb: 4000 })) };
    expect(() => plan({ taskCount: 4, limits: sized, parameters: parseParameters({ mem: "8G" }) })).toThrow(
      "Invalid Slurm parameters: Expected `mem` (8192 MiB) to be at most the largest node's memory in the partition (4000 MiB): no node could run a task",
    );
    expect(plan({ taskCount: 4, limits: sized, parameters: parseParameters({ mem: "3G" }) }).scripts).toHaveLength(1);
    // Two minutes of MaxTime leave a worker no room for its start on top of a two-minute task.
    expect(() => plan({ taskCount: 40, limits: short, packing: { workers: 2, slots: undefined }, parameters: parseParameters({ partition: "short", time: 2 }) })).toThrow(
      "Invalid mapArray options: Expected `time` (00:02:00) plus 60 s for a worker's start to fit the partition's MaxTime (00:02:00); run these tasks one per element",
    );
    expect(plan({ taskCount: 40, limits: short, packing: { workers: "auto", slots: undefined }, parameters: parseParameters({ partition: "short", time: 2 }) }).manifest.workers).toBeUndefined();
  });

  test("more elements than MaxSubmitJobs is refused before anything is written", () => {
    expect(() => plan({ taskCount: 50, limits: { ...limits, maxSubmitJobs: 20 } })).toThrow(
      'Invalid mapArray options: 50 tasks make 50 array elements, more than this cluster\'s MaxSubmitJobs (20); use workers: 20 or fewer, or "auto"',
    );
  });

  test("a dependency comes with --kill-on-invalid-dep; submit() makes a job that is not an array", () => {
    const p = plan({ taskCount: 1, array: false, limits: undefined, dependency: "afterok:5_1:6" });
    expect(sbatchLines(p.scripts[0]!.text)).toEqual([
      "#SBATCH --output=/runs/s/logs/0.out",
      "#SBATCH --error=/runs/s/logs/0.err",
      "#SBATCH --signal=B:USR2@90",
      "#SBATCH --no-requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --dependency=afterok:5_1:6",
      "#SBATCH --kill-on-invalid-dep=yes",
      "#SBATCH --comment=slurmkit:s:0",
    ]);
    expect(p.manifest.array).toBe(false);
  });

  test("the warning signal is the user's, always sent to the batch shell; raw sbatch options and maxRequeues win", () => {
    const p = plan({ taskCount: 2, parameters: parseParameters({ signal: "SIGUSR1@120", maxRequeues: 0, sbatch: { requeue: true, "open-mode": "truncate", comment: "lr sweep" } }) });
    expect(sbatchLines(p.scripts[0]!.text)).toEqual([
      "#SBATCH --array=0-1",
      "#SBATCH --output=/runs/s/logs/%a.out",
      "#SBATCH --error=/runs/s/logs/%a.err",
      "#SBATCH --signal=B:USR1@120",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=truncate",
      "#SBATCH --comment='slurmkit:s:0 lr sweep'", // the tag first, then the user's own comment
    ]);
    expect(runLine(p.scripts[0]!.text)).toBe("exec /bin/node /pkg/dist/runner/runner.js /runs/s --warning USR1 --max-requeues 0 --forward-warning");
    expect(warningOf("R:USR2@60")).toEqual({ name: "USR2", option: "R:USR2@60", seconds: 60 });
    expect(warningOf(undefined)).toEqual({ name: "USR2", option: "B:USR2@90", seconds: 90 });
  });

  test("the default warning never comes in a job's first 30 s, though Slurm sends it up to 60 s early; a limit too short gets none", () => {
    const option = (time: number) => sbatchLines(plan({ taskCount: 2, parameters: parseParameters({ time }) }).scripts[0]!.text).find((l) => l.includes("--signal"));
    expect(option(60)).toBe("#SBATCH --signal=B:USR2@90"); // minutes: an hour
    expect(option(3)).toBe("#SBATCH --signal=B:USR2@90");
    expect(option(2)).toBe("#SBATCH --signal=B:USR2@30");
    expect(option(1)).toBeUndefined();
    const one = plan({ taskCount: 2, parameters: parseParameters({ time: 1 }) }).scripts[0]!.text;
    expect(runLine(one)).toBe("exec /bin/node /pkg/dist/runner/runner.js /runs/s");
    expect(one).not.toContain("trap");
    expect(warningOf(undefined, 150)).toEqual({ name: "USR2", option: "B:USR2@60", seconds: 60 });
    expect(warningOf(undefined, 91)).toEqual({ name: "USR2", option: "B:USR2@1", seconds: 1 });
    expect(warningOf(undefined, 90)).toBeUndefined();
    // A time limit of 90 s gets no warning; one of 2 minutes a warning 30 s before.
    expect(sbatchLines(plan({ taskCount: 2, parameters: parseParameters({ time: "0:01:30" }) }).scripts[0]!.text).find((l) => l.includes("--signal"))).toBeUndefined();
    expect(sbatchLines(plan({ taskCount: 2, parameters: parseParameters({ time: "2" }) }).scripts[0]!.text)).toContain("#SBATCH --signal=B:USR2@30");
    // A worker: Slurm's lead from its walltime; its own warning to each task, which is exact, from the task's time (0: none).
    expect(warningOf(undefined, 3600, 20)).toEqual({ name: "USR2", option: "B:USR2@90", seconds: 0 });
    expect(warningOf(undefined, 3600, 45)).toEqual({ name: "USR2", option: "B:USR2@90", seconds: 15 });
    // One the user asked for is theirs, short limit or not.
    expect(sbatchLines(plan({ taskCount: 2, parameters: parseParameters({ time: 1, signal: "USR2@30" }) }).scripts[0]!.text)).toContain("#SBATCH --signal=B:USR2@30");
  });

  test("workers get the warning too, and pass it on to each task before its own time limit", () => {
    const p = plan({ taskCount: 20, packing: { workers: 2, slots: undefined }, parameters: parseParameters({ time: 5, signal: "USR1@45" }) });
    expect(sbatchLines(p.scripts[0]!.text)).toEqual(expect.arrayContaining(["#SBATCH --signal=B:USR1@45", "#SBATCH --no-requeue", "#SBATCH --open-mode=append"]));
    expect(runLine(p.scripts[0]!.text)).toMatch(/ --walltime \d+ --warning USR1 --warn-seconds 45 --max-requeues 3 --forward-warning$/);
    // Slurm's default lead time, when the signal names none.
    expect(warningOf("USR2")).toEqual({ name: "USR2", option: "B:USR2", seconds: 60 });
  });

  test("tasks that want no warning (commands without requeue, no signal set) get none, as before", () => {
    const p = plan({ taskCount: 2, warned: false });
    expect(p.scripts[0]!.text).not.toContain("--signal");
    expect(runLine(p.scripts[0]!.text)).toBe("exec /bin/node /pkg/dist/runner/runner.js /runs/s");
    expect(sbatchLines(p.scripts[0]!.text)).toContain("#SBATCH --no-requeue");
  });
});

describe("checkSubmission", () => {
  const problem = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      expect(error).toBeInstanceOf(ParameterError);
      return (error as ParameterError).problems;
    }
    return [];
  };

  test("after and the dependency parameter together, a bad tasksPerElement, packing several ranks", () => {
    expect(problem(() => checkSubmission(parseParameters({ dependency: "afterok:1" }), { dependency: "afterok:2" }))).toEqual([
      "Expected either `after` or the `dependency` parameter, not both (dependency is `afterok:1`)",
    ]);
    expect(problem(() => checkSubmission(parseParameters({}), { tasksPerElement: 0, dependency: undefined }))).toEqual(['Expected `tasksPerElement` to be a positive integer or "auto", got `0`']);
    expect(problem(() => checkSubmission(parseParameters({ nodes: 2 }), { tasksPerElement: 4, dependency: undefined }))).toEqual([
      "Expected `tasksPerElement` to be 1 for jobs with several ranks (nodes × ntasksPerNode = 2), got `4`",
    ]);
    expect(checkSubmission(parseParameters({}), { tasksPerElement: "auto", dependency: undefined })).toEqual({ workers: "auto", slots: undefined });
    expect(checkSubmission(parseParameters({}), { tasksPerElement: 3, dependency: undefined, taskCount: 10 })).toEqual({ workers: 4, slots: undefined });
    expect(checkSubmission(parseParameters({}), { tasksPerElement: 1, dependency: undefined })).toEqual({ workers: undefined });
    // Several ranks are never packed: "auto" falls back to one task per element.
    expect(checkSubmission(parseParameters({ nodes: 2 }), { workers: "auto", dependency: undefined })).toEqual({ workers: undefined });
    expect(problem(() => checkSubmission(parseParameters({}), { workers: 2, tasksPerElement: 2, dependency: undefined }))).toEqual(["Expected either `workers` or `tasksPerElement`, not both"]);
  });
});
