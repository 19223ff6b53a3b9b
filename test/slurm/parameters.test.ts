import { describe, expect, expectTypeOf, test } from "vitest";
import { executorFromFlags, ParameterError, parseParameters, parseSlurmFlags, SlurmExecutor, type SetupStep, type SignalSpec, type SlurmParametersInput } from "../../src/index.js";
import { liftCoveredOptions, toSbatchOptions } from "../../src/slurm/parameters.js";
import { formatSlurmTime, parseDurationSeconds, parseMemoryMegabytes } from "../../src/slurm/units.js";

function problemsOf(input: unknown): readonly string[] {
  try {
    parseParameters(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ParameterError);
    return (error as ParameterError).problems;
  }
  throw new Error("expected a ParameterError");
}

describe("durations and memory", () => {
  test.each([
    [90, 5400],
    ["90", 5400],
    ["5:30", 330],
    ["01:00:00", 3600],
    ["1-00:00:00", 86400],
    ["2-12", 216000],
    ["1-02:03", 93780],
  ])("time %j is %i seconds", (input, seconds) => {
    expect(parseDurationSeconds(input)).toBe(seconds);
  });

  test.each(["abc", "1:2:3:4", "-5", "", "1-", 0, -3])("time %j is rejected", (input) => {
    expect(parseDurationSeconds(input)).toBeUndefined();
  });

  // Slurm reads a zero time limit as no limit at all.
  test.each(["0", "0-0", "0-00:00:00", "00:00:00", "0:0", 0.001, 0.008])("a zero time limit %j is rejected, with a message saying what is accepted", (input) => {
    expect(parseDurationSeconds(input)).toBeUndefined();
    expect(() => parseParameters({ time: input })).toThrow("Expected `time` to be minutes or a Slurm duration such as `90`, `01:30:00` or `1-00:00:00`");
  });

  test("durations render as Slurm reads them", () => {
    expect(formatSlurmTime(5400)).toBe("01:30:00");
    expect(formatSlurmTime(93784)).toBe("1-02:03:04");
  });

  test.each([
    [500, 500],
    ["500M", 500],
    ["32G", 32768],
    ["32GB", 32768],
    ["1.5GiB", 1536],
    ["2048K", 2],
    ["1T", 1048576],
  ])("memory %j is %i MB", (input, mb) => {
    expect(parseMemoryMegabytes(input)).toBe(mb);
  });

  test.each(["lots", "32 X", "-1G", 0])("memory %j is rejected", (input) => {
    expect(parseMemoryMegabytes(input)).toBeUndefined();
  });
});

describe("parseParameters", () => {
  test("normalises units and renders only what was asked for", () => {
    const p = parseParameters({ time: "1-00:00:00", mem: "32GB", cpusPerTask: 4, gres: "gpu:t4:1", signal: { name: "USR1", secondsBefore: 90 } });
    expect(p.time).toBe(86400);
    expect(p.mem).toBe(32768);
    expect(toSbatchOptions(p)).toEqual([
      ["cpus-per-task", "4"],
      ["gres", "gpu:t4:1"],
      ["signal", "USR1@90"],
      ["time", "1-00:00:00"],
      ["mem", "32G"],
    ]);
  });

  test("no parameters, no options: nothing like --wckey is added", () => {
    expect(toSbatchOptions(parseParameters({}))).toEqual([]);
  });

  test("raw sbatch options pass through; managed ones are refused", () => {
    expect(toSbatchOptions(parseParameters({ sbatch: { "mail-type": "END", exclusive: true, "gpus-per-task": 2 } }))).toEqual([
      ["mail-type", "END"],
      ["exclusive", true],
      ["gpus-per-task", "2"],
    ]);
    expect(problemsOf({ sbatch: { arr: "0-3" } })).toHaveLength(1); // sbatch would take "arr" for --array
    expect(problemsOf({ sbatch: { array: "0-3" } })[0]).toBe(
      'Expected `sbatch` to be an object of sbatch long options (lower-case, without dashes) to string, number or true; not array, output, error, wrap or signal (use the signal parameter), got `{"array":"0-3"}`',
    );
  });

  test("an unknown key names close matches and every accepted key", () => {
    expect(problemsOf({ cpus_per_task: 4 })).toEqual([
      "Unknown parameter `cpus_per_task` (did you mean `cpusPerTask`?); accepted: account, arrayParallelism, constraint, cpusPerTask, dependency, exclude, gpusPerNode, gres, jobName, maxRequeues, mem, memPerCpu, nodelist, nodes, ntasksPerNode, partition, qos, sbatch, setup, signal, time",
    ]);
  });

  test("bad values name the key, what is accepted, and what was given", () => {
    expect(problemsOf({ cpusPerTask: -1, time: "soon", mem: "lots", nodes: 0, signal: "USR1@x", arrayParallelism: 1.5 })).toEqual([
      "Expected `nodes` to be a positive integer or a range such as `2-4`, got `0`",
      "Expected `cpusPerTask` to be a positive integer, got `-1`",
      "Expected `time` to be minutes or a Slurm duration such as `90`, `01:30:00` or `1-00:00:00`, got `soon`",
      "Expected `mem` to be megabytes or a size with a unit such as `500M`, `32G` or `32GB`, or 0 for all of each node's memory, got `lots`",
      "Expected `arrayParallelism` to be a positive integer, got `1.5`",
      'Expected `signal` to be a signal name such as `USR2@90` or `{ name: "USR2", secondsBefore: 90 }` (not KILL, STOP, TERM, INT or CONT, which end or pause the job), got `USR1@x`',
    ]);
  });

  test("a signal that would end or pause the job, or a number, is refused; one given in the raw sbatch map too", () => {
    // batchOnly, deprecated at 0.1.0, is refused rather than ignored: the signal always goes to the batch shell.
    for (const signal of ["TERM@60", "KILL", "10@90", { name: "SIGSTOP" }, { name: "USR1", batchOnly: true }]) {
      expect(problemsOf({ signal })[0]).toMatch(/^Expected `signal` to be a signal name such as `USR2@90`/);
    }
    expect(parseParameters({ signal: "SIGUSR1@120" }).signal).toBe("USR1@120");
    expect(problemsOf({ sbatch: { signal: "USR1@60" } })).toEqual(["`sbatch.signal` sets --signal: use the parameter `signal` instead, which slurmkit checks (as `--slurm` flags do)"]);
  });

  test("the error message starts with the first problem", () => {
    expect(() => parseParameters({ partition: "a\nb" })).toThrow("Invalid Slurm parameters: Expected `partition` to be a non-empty string on one line, got `a\nb`");
  });
});

describe("the parameter table", () => {
  test("the input type is inferred from the schema: what users may write for each key", () => {
    expectTypeOf<SlurmParametersInput["time"]>().toEqualTypeOf<number | string | undefined>();
    expectTypeOf<SlurmParametersInput["cpusPerTask"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<SlurmParametersInput["nodes"]>().toEqualTypeOf<number | string | undefined>();
    expectTypeOf<SlurmParametersInput["signal"]>().toEqualTypeOf<string | SignalSpec | undefined>();
    expectTypeOf<SlurmParametersInput["sbatch"]>().toEqualTypeOf<Readonly<Record<string, string | number | true>> | undefined>();
    expectTypeOf<SlurmParametersInput["setup"]>().toEqualTypeOf<readonly (string | SetupStep)[] | undefined>();
    expectTypeOf<SlurmParametersInput>().toHaveProperty("arrayParallelism");
    // @ts-expect-error: not a parameter
    expectTypeOf<SlurmParametersInput>().toHaveProperty("cpus");
  });

  test("update() and executorFromFlags merge sbatch options key by key; every other key is replaced", () => {
    const executor = new SlurmExecutor({ folder: "/tmp/slurmkit-merge", time: 10, sbatch: { "mail-type": "END", exclusive: true } });
    executor.update({ time: 20, sbatch: { "mail-type": "FAIL", "mail-user": "ada@example.org" } });
    expect(executor.parameters.time).toBe(1200);
    expect(executor.parameters.sbatch).toEqual({ "mail-type": "FAIL", exclusive: true, "mail-user": "ada@example.org" });
    const fromFlags = executorFromFlags(parseSlurmFlags(["--slurm", "time=30", "sbatch.mail-type=FAIL", "sbatch.mail-user=ada@example.org"]), {
      folder: "/tmp/slurmkit-merge",
      time: 10,
      sbatch: { "mail-type": "END", exclusive: true },
    }) as SlurmExecutor;
    expect(fromFlags.parameters.time).toBe(1800);
    expect(fromFlags.parameters.sbatch).toEqual(executor.parameters.sbatch);
  });
});

describe("parameters set twice, and requests stored before that was refused", () => {
  const problemsOf = (input: unknown) => {
    try {
      parseParameters(input);
      return [];
    } catch (error) {
      return (error as ParameterError).problems;
    }
  };

  test("an sbatch key a parameter covers is refused in every spelling; alone it points to the parameter", () => {
    for (const key of ["job-name", "job_name", "jobName"]) {
      expect(problemsOf({ jobName: "a", sbatch: { [key]: "b" } })).toEqual([`\`sbatch.${key}\` sets --job-name, which the parameter \`jobName\` sets too: use \`jobName\` alone`]);
      expect(problemsOf({ sbatch: { [key]: "b" } })).toEqual([`\`sbatch.${key}\` sets --job-name: use the parameter \`jobName\` instead, which slurmkit checks (as \`--slurm\` flags do)`]);
    }
    expect(problemsOf({ sbatch: { mailType: "END" } })).toEqual(["Expected `sbatch` keys to be sbatch's long option names, got `mailType`: write `mail-type`"]);
    expect(problemsOf({ sbatch: { "mail-type": "END", exclusive: true, "mem-per-gpu": "2G" } })).toEqual([]);
  });

  test("a stored request's raw options become the parameters they set, the raw one winning as sbatch's later line did", () => {
    const stored = { time: 5, sbatch: { "mem-per-cpu": "1G", time: "0:10:00", "mail-type": "END", exclusive: true as const } };
    const lifted = liftCoveredOptions(stored as unknown as SlurmParametersInput);
    expect(lifted).toEqual({ time: "0:10:00", memPerCpu: "1G", sbatch: { "mail-type": "END", exclusive: true } });
    expect(parseParameters(lifted)).toMatchObject({ time: 600, memPerCpu: 1024 });
    expect(liftCoveredOptions({ time: 5 })).toEqual({ time: 5 });
  });
});
