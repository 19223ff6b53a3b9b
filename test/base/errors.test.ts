// Every error slurmkit throws lives in src/base/errors.ts, and every one is a SlurmkitError.
import { describe, expect, test } from "vitest";
import * as errors from "../../src/base/errors.js";
import * as publicSurface from "../../src/index.js";

const classes = Object.entries(errors as Record<string, unknown>).filter((entry): entry is [string, new (...args: never[]) => Error] => typeof entry[1] === "function" && /Error$/.test(entry[0]));

describe("errors", () => {
  test("every error class is a SlurmkitError, and names itself", () => {
    expect(classes.map(([name]) => name).sort()).toEqual([
      "AmbiguousSubmissionError",
      "CommandError",
      "ContainerError",
      "JobEndedWithoutResultError",
      "NodeUnusableError",
      "ParameterError",
      "RunFolderError",
      "SchedulerError",
      "SlurmkitError",
      "SubmissionError",
      "TaskFailedError",
      "TaskInterruptedError",
      "TransportError",
      "UnsetVariableError",
      "UsageError",
      "WaitTimeoutError",
    ]);
    for (const [name, ErrorClass] of classes) {
      expect(ErrorClass.prototype instanceof errors.SlurmkitError || ErrorClass === errors.SlurmkitError, name).toBe(true);
    }
    const sbatch = new errors.SubmissionError(["sbatch", "job.sbatch"], 1, "error: invalid partition\n");
    const squeue = new errors.SchedulerError(["squeue"], 1, "timed out");
    for (const e of [sbatch, squeue]) expect(e).toBeInstanceOf(errors.CommandError);
    expect([sbatch.name, sbatch.shortMessage, sbatch.message]).toEqual([
      "SubmissionError",
      "Command failed with exit code 1: sbatch job.sbatch",
      "Command failed with exit code 1: sbatch job.sbatch\n\nerror: invalid partition",
    ]);
    expect(new errors.UsageError("no such option --x").name).toBe("UsageError");
  });

  test("the public surface exports every error but the bin's UsageError", () => {
    for (const [name] of classes) expect(name in publicSurface, name).toBe(name !== "UsageError");
  });
});
