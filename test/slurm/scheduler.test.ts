// The scheduler commands on the real cluster: a command that cannot run, or
// runs past its time limit, is a SchedulerError, never a raw process error.
import { describe, expect, test } from "vitest";
import { LocalExecutor, LocalTransport, ParameterError, SchedulerError, SlurmExecutor, SlurmkitError } from "../../src/index.js";
import { Scheduler } from "../../src/slurm/scheduler.js";
import { needCluster } from "../helpers/cluster.js";
import { FaultyTransport } from "../helpers/faults.js";

describe("scheduler commands fail as SlurmkitErrors", () => {
  test("squeue and scancel that time out are SchedulerErrors naming the command", async (ctx) => {
    needCluster(ctx);
    // squeue and scancel hang (as with a controller that accepts connections and never answers): a sleep runs in their place, with their time limit.
    const inner = new LocalTransport();
    const hanging = new FaultyTransport(inner, { run: (program, _args, real, options) => (program === "squeue" || program === "scancel" ? inner.run("sleep", ["30"], options) : real()) });
    const scheduler = new Scheduler(hanging);
    scheduler.timeoutMs = 300;
    for (const call of [() => scheduler.queue(["1"]), () => scheduler.cancel("1")]) {
      const error = (await call().catch((e: unknown) => e)) as SchedulerError;
      expect(error).toBeInstanceOf(SchedulerError);
      expect(error).toBeInstanceOf(SlurmkitError);
      expect(error.message).toMatch(/^Command failed with exit code -1: (squeue|scancel) /);
      expect(error.stderr).toMatch(/^could not run (squeue|scancel): /);
    }
  });

  test("executors without options are ParameterErrors, not TypeErrors", () => {
    for (const make of [() => new (LocalExecutor as unknown as new (o?: unknown) => unknown)(), () => new (SlurmExecutor as unknown as new (o?: unknown) => unknown)(null)]) {
      expect(make).toThrow(ParameterError);
      expect(make).toThrow("Expected an options object with at least `folder`, got ");
    }
  });
});
