import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { describe, expect, test } from "vitest";
import { parseNodefile, pbsEnvironment, pbsNode } from "../../src/pbs/node.js";

// A two-node nodefile of the shape Polaris writes for `select=2:ncpus=64:mpiprocs=4` (one line per rank, fully qualified names).
const nodefile = readFileSync(new URL("../fixtures/pbs/nodefile-2x4.txt", import.meta.url), "utf8");
const me = hostname().split(".")[0]!;

describe("PBS's node side", () => {
  test("the nodefile's hosts, once each in its order, and the ranks each holds", () => {
    expect(parseNodefile(nodefile)).toEqual({ hosts: ["x3005c0s13b0n0.hsn.cm.polaris.alcf.anl.gov", "x3005c0s13b1n0.hsn.cm.polaris.alcf.anl.gov"], ranksPerHost: [4, 4] });
    expect(parseNodefile("\n")).toEqual({ hosts: [], ranksPerHost: [] });
    // Recorded on the test server for select=1:ncpus=2:mpiprocs=2.
    expect(parseNodefile(readFileSync(new URL("../fixtures/pbs/nodefile-test-server.txt", import.meta.url), "utf8"))).toEqual({ hosts: ["pbshost"], ranksPerHost: [2] });
  });

  test("a rank that an MPI launcher started reads its rank, and the world from the nodefile, as ezpz does", () => {
    const host = "x3005c0s13b1n0";
    const lines = nodefile.replaceAll(host, me);
    const env = {
      PBS_JOBID: "123[4].polaris-pbs-01",
      PBS_ARRAY_ID: "123[].polaris-pbs-01",
      PBS_ARRAY_INDEX: "4",
      PBS_ENVIRONMENT: "PBS_BATCH",
      PBS_NODEFILE: "/var/spool/pbs/aux/123[4]",
      PALS_RANKID: "6",
      PALS_LOCAL_RANKID: "2",
    };
    const e = pbsEnvironment(env, () => lines);
    expect([e.jobId, e.arrayJobId, e.arrayIndex]).toEqual(["123_4", "123", 4]);
    expect([e.rank, e.localRank, e.nodeRank, e.worldSize, e.localWorldSize, e.nodeCount]).toEqual([6, 2, 1, 8, 4, 2]);
    expect(e.hosts).toEqual(["x3005c0s13b0n0.hsn.cm.polaris.alcf.anl.gov", `${me}.hsn.cm.polaris.alcf.anl.gov`]);
    // Open MPI's and MPICH's words, and their own world size over the nodefile's.
    expect(pbsEnvironment({ ...env, PALS_RANKID: undefined, PALS_LOCAL_RANKID: undefined, OMPI_COMM_WORLD_RANK: "3", OMPI_COMM_WORLD_SIZE: "4" }, () => lines)).toMatchObject({
      rank: 3,
      worldSize: 4,
    });
    expect(pbsEnvironment({ ...env, PALS_RANKID: undefined, PMI_RANK: "5" }, () => lines)).toMatchObject({ rank: 5, worldSize: 8 });
  });

  test("a rank that slurmkit's launch started reads where it was placed from the launch's variables, which name their job", () => {
    const env = {
      PBS_JOBID: "123.polaris-pbs-01",
      PBS_ENVIRONMENT: "PBS_BATCH",
      PBS_NODEFILE: "/var/spool/pbs/aux/123",
      SLURMKIT_RANK_JOB: "123.polaris-pbs-01",
      SLURMKIT_RANK: "5",
      SLURMKIT_LOCAL_RANK: "1",
      SLURMKIT_LOCAL_WORLD_SIZE: "4",
      SLURMKIT_NODE_RANK: "1",
      SLURMKIT_WORLD_SIZE: "8",
      SLURMKIT_HOSTS: "x3005c0s13b0n0.hsn x3005c0s13b1n0.hsn",
    };
    // The nodefile is not read: a rank on another host may not have it.
    const e = pbsEnvironment(env, () => {
      throw new Error("not read");
    });
    expect([e.jobId, e.rank, e.localRank, e.localWorldSize, e.nodeRank, e.worldSize, e.nodeCount]).toEqual(["123", 5, 1, 4, 1, 8, 2]);
    expect(e.hosts).toEqual(["x3005c0s13b0n0.hsn", "x3005c0s13b1n0.hsn"]);
    expect(pbsNode.inStep(env)).toBe(true);
    // Carried by qsub -V into a job that this rank submitted: that job's batch shell is rank 0 of 1.
    const carried = { ...env, PBS_JOBID: "124.polaris-pbs-01" };
    expect(pbsNode.inStep(carried)).toBe(false);
    expect(pbsEnvironment(carried, () => nodefile)).toMatchObject({ jobId: "124", rank: 0, worldSize: 1 });
  });

  test("the batch script's own process is rank 0 of 1 on its node, as on Slurm; outside PBS, this machine", () => {
    const e = pbsEnvironment({ PBS_JOBID: "77.server", PBS_ENVIRONMENT: "PBS_BATCH", PBS_NODEFILE: "/nope" }, () => nodefile);
    expect([e.jobId, e.arrayJobId, e.rank, e.worldSize, e.nodeCount, e.hosts]).toEqual(["77", undefined, 0, 1, 1, [me]]);
    expect(pbsEnvironment({}).jobId).toMatch(/^local-/);
    expect(pbsNode.detects({ PBS_JOBID: "1.s", PBS_ENVIRONMENT: "PBS_BATCH" })).toBe(true);
    expect(pbsNode.detects({ PBS_JOBID: "1.s" })).toBe(false);
    expect(pbsNode.elementIndex({ PBS_JOBID: "12[3].server", PBS_ARRAY_INDEX: "3" })).toEqual({ text: "3", from: "PBS_JOBID" });
    // A plain job submitted from inside a subjob, with -V: PBS_ARRAY_* are the parent's, not this job's.
    const leaked = { PBS_JOBID: "40.server", PBS_ENVIRONMENT: "PBS_BATCH", PBS_ARRAY_ID: "12[].server", PBS_ARRAY_INDEX: "3" };
    expect(pbsNode.elementIndex(leaked)).toEqual({ text: "0", from: "PBS_JOBID" });
    expect(pbsEnvironment(leaked)).toMatchObject({ jobId: "40", arrayJobId: undefined, arrayIndex: undefined });
    expect(pbsNode.taskShare(2, 100)).toEqual({ NCPUS: "2", OMP_NUM_THREADS: "2" });
  });
});
