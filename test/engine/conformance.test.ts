// One suite, every scheduler behind the engine: local processes
// (LocalExecutor), Slurm (SlurmExecutor on the test cluster) and PBS
// (PbsExecutor on the OpenPBS test server), as
// test/transport/conformance.test.ts does for transports.
import { beforeAll, describe } from "vitest";
import { LocalExecutor, LocalTransport, PbsExecutor, SlurmExecutor } from "../../src/index.js";
import { pbsWatcher } from "../../src/pbs/watch.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { needCluster } from "../helpers/cluster.js";
import { needPbs } from "../helpers/pbs.js";
import { type MakeExecutor, schedulerConformance } from "../helpers/conformance.js";
import { runsFolder } from "../helpers/runs-folder.js";

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
  pbsWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

const schedulers: Array<{ name: string; make: MakeExecutor }> = [
  {
    name: "local processes (LocalExecutor)",
    make: async (_ctx, options = {}) =>
      new LocalExecutor({
        folder: await runsFolder(),
        maxParallel: options.maxParallel ?? 2,
        ...(options.shortTime ? { time: "00:00:05" } : {}),
        ...(options.nodeBinary ? { nodeBinary: options.nodeBinary } : {}),
        ...(options.bundle !== undefined ? { bundle: options.bundle } : {}),
      }),
  },
  {
    name: "Slurm (SlurmExecutor)",
    make: async (ctx, options = {}) => {
      needCluster(ctx);
      return new SlurmExecutor({
        folder: await runsFolder(),
        // Slurm's limits are whole minutes.
        time: options.shortTime ? 1 : 5,
        ...(options.nodeBinary ? { nodeBinary: options.nodeBinary } : {}),
        ...(options.arrayParallelism ? { arrayParallelism: options.arrayParallelism } : {}),
        ...(options.bundle !== undefined ? { bundle: options.bundle } : {}),
      });
    },
  },
  {
    name: "PBS (PbsExecutor)",
    make: async (ctx, options = {}) => {
      needPbs(ctx);
      return new PbsExecutor({
        folder: await runsFolder(),
        time: options.shortTime ? "00:00:15" : 5,
        ...(options.nodeBinary ? { nodeBinary: options.nodeBinary } : {}),
        ...(options.arrayParallelism ? { arrayParallelism: options.arrayParallelism } : {}),
        ...(options.bundle !== undefined ? { bundle: options.bundle } : {}),
      });
    },
  },
];

describe.each(schedulers)("$name", ({ make }) => schedulerConformance(make));
