import { describe, expect, test } from "vitest";
import { recordJobId } from "../../src/core/node-side.js";
import { localNode } from "../../src/local/node.js";
import { slurmNode } from "../../src/slurm/node.js";
import { jobIdOf, taskIndex, useNodeSide } from "../../runner/node.js";
import { jobEnvironment } from "../../src/index.js";

// The node sides are pure readers of the environment (their commands, squeue
// and scontrol, run on the real cluster in the requeue and preemption tests).
describe("Slurm's node side", () => {
  const element = { SLURM_JOB_ID: "812", SLURM_ARRAY_JOB_ID: "811", SLURM_ARRAY_TASK_ID: "1", SLURMD_NODENAME: "n2" };

  test("reads the element's index, the id its records carry and the job it can requeue", () => {
    expect(slurmNode.detects(element)).toBe(true);
    expect(slurmNode.detects({})).toBe(false);
    expect(slurmNode.elementIndex(element)).toEqual({ text: "1", from: "SLURM_ARRAY_TASK_ID" });
    expect(slurmNode.elementIndex({ SLURM_JOB_ID: "9" })).toEqual({ text: "0", from: "SLURM_ARRAY_TASK_ID" });
    expect(recordJobId(slurmNode.environment(element))).toBe("811_1");
    expect(recordJobId(slurmNode.environment({ SLURM_JOB_ID: "9" }))).toBe("9");
    expect(slurmNode.requeueableJob(element)).toBe("812");
    expect(slurmNode.inStep({ ...element, SLURM_STEP_ID: "batch" })).toBe(false);
    expect(slurmNode.inStep({ ...element, SLURM_STEP_ID: "0" })).toBe(true);
    expect(slurmNode.environment(element)).toMatchObject({ slurm: true, hostname: "n2", rank: 0, restarts: 0 });
  });

  test("a packed task sees its own share: one task's CPUs and memory, not the element's", () => {
    expect(slurmNode.taskShare(2, 512)).toEqual({ SLURM_CPUS_PER_TASK: "2", SLURM_MEM_PER_NODE: "512", SLURM_MEM_PER_CPU: undefined });
    expect(slurmNode.taskShare(1, undefined)).toEqual({ SLURM_CPUS_PER_TASK: "1" });
  });

  test("jobEnvironment() reads the node side of the scheduler it finds, and this process outside one", () => {
    expect(jobEnvironment(element)).toEqual(slurmNode.environment(element));
    expect(jobEnvironment({ SLURMKIT_JOB_ID: "local-x_3" })).toMatchObject({ slurm: false, jobId: "local-x_3", rank: 0 });
    // A local task whose client runs inside an allocation inherits Slurm's variables: it is still a local process.
    expect(jobEnvironment({ ...element, SLURMKIT_TASK_INDEX: "3", SLURMKIT_JOB_ID: "local-x_3" })).toMatchObject({ slurm: false, jobId: "local-x_3", worldSize: 1 });
  });
});

describe("local processes' node side", () => {
  test("LocalScheduler's variables give the task and its job id; nothing can requeue it", async () => {
    const env = { SLURMKIT_TASK_INDEX: "3", SLURMKIT_JOB_ID: "local-x_3" };
    expect(localNode.detects(env)).toBe(true);
    expect(localNode.elementIndex(env)).toEqual({ text: "3", from: "SLURMKIT_TASK_INDEX" });
    expect(recordJobId(localNode.environment(env))).toBe("local-x_3");
    expect(localNode.requeueableJob(env)).toBeUndefined();
    expect(localNode.taskShare(2, 512)).toEqual({});
    expect(await localNode.requeue("local-x_3")).toBe("local processes are not requeued");
    expect(await localNode.ending("local-x_3", () => undefined)).toEqual({ ending: "TIMEOUT", deadline: undefined });
  });
});

describe("the runner's view of its node", () => {
  test("the task index is the element's index plus the offset; a bad one names the variable it came from", () => {
    useNodeSide(slurmNode);
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { SLURM_JOB_ID: "812", SLURM_ARRAY_JOB_ID: "811", SLURM_ARRAY_TASK_ID: "1" });
      expect(taskIndex(process.env, 1000)).toBe(1001);
      expect(jobIdOf(process.env)).toBe("811_1");
      expect(() => taskIndex({ SLURM_ARRAY_TASK_ID: "x1" })).toThrow("Bad task index 'x1' (from SLURM_ARRAY_TASK_ID)");
      useNodeSide(localNode);
      expect(() => taskIndex({ SLURMKIT_TASK_INDEX: "-1" })).toThrow("Bad task index '-1' (from SLURMKIT_TASK_INDEX)");
    } finally {
      process.env = saved;
    }
  });
});
