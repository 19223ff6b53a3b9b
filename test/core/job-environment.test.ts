import { describe, expect, test } from "vitest";
import { expandHostlist, jobEnvironment, masterPort } from "../../src/index.js";
import { expandTasksPerNode } from "../../src/core/job-environment.js";

describe("expandHostlist", () => {
  test("expands ranges, lists, zero padding, several brackets and several entries", () => {
    expect(expandHostlist("n[1-3,5]")).toEqual(["n1", "n2", "n3", "n5"]);
    expect(expandHostlist("gpu[08-10]")).toEqual(["gpu08", "gpu09", "gpu10"]);
    expect(expandHostlist("r[1-2]-n[1-2]")).toEqual(["r1-n1", "r1-n2", "r2-n1", "r2-n2"]);
    expect(expandHostlist("login,n[1-2],big7")).toEqual(["login", "n1", "n2", "big7"]);
    expect(expandHostlist("n1")).toEqual(["n1"]);
  });

  test("a malformed list is an error that names it", () => {
    expect(() => expandHostlist("n[1-3")).toThrow("Bad host list entry 'n[1-3': a '[' without ']'");
    expect(() => expandHostlist("n[a-b]")).toThrow("Bad host list range 'a-b' in 'n[a-b]'");
  });
});

describe("jobEnvironment", () => {
  test("srun's rank 3 of 4 on the second of two nodes", () => {
    const env = jobEnvironment({
      SLURM_JOB_ID: "812",
      SLURM_ARRAY_JOB_ID: "811",
      SLURM_ARRAY_TASK_ID: "1",
      SLURM_STEP_ID: "0",
      SLURM_PROCID: "3",
      SLURM_LOCALID: "1",
      SLURM_NODEID: "1",
      SLURM_STEP_NUM_TASKS: "4",
      SLURM_STEP_NUM_NODES: "2",
      SLURM_STEP_NODELIST: "n[1-2]",
      SLURM_STEP_TASKS_PER_NODE: "2(x2)",
      SLURMD_NODENAME: "n2",
      SLURM_RESTART_COUNT: "2",
      CUDA_VISIBLE_DEVICES: "0,1",
    });
    expect(env).toMatchObject({
      slurm: true,
      jobId: "812",
      arrayJobId: "811",
      arrayIndex: 1,
      restarts: 2,
      rank: 3,
      localRank: 1,
      nodeRank: 1,
      worldSize: 4,
      localWorldSize: 2,
      nodeCount: 2,
      hostname: "n2",
      hosts: ["n1", "n2"],
      gpus: ["0", "1"],
    });
  });

  test("a single-rank task started by the batch script is rank 0 of 1 on its node", () => {
    const env = jobEnvironment({ SLURM_JOB_ID: "9", SLURM_NTASKS: "4", SLURM_JOB_NODELIST: "n[1-2]", SLURMD_NODENAME: "n1" });
    expect(env).toMatchObject({ slurm: true, rank: 0, worldSize: 1, localWorldSize: 1, nodeCount: 1, hosts: ["n1"], gpus: [], arrayIndex: undefined });
  });

  test("outside Slurm it describes this process", () => {
    const env = jobEnvironment({});
    expect(env).toMatchObject({ slurm: false, rank: 0, worldSize: 1, jobId: `local-${process.pid}` });
    expect(env.cpus.length).toBeGreaterThan(0);
  });

  test("tasks per node and the rendezvous port", () => {
    expect(expandTasksPerNode("2(x3),1")).toEqual([2, 2, 2, 1]);
    expect(masterPort("812")).toBe(20812);
    expect(masterPort("123456")).toBe(23456);
    expect(masterPort("812")).toBe(masterPort("812"));
  });
});
