import { describe, expect, test } from "vitest";
import { packr } from "../../src/protocol/codec.js";
import { atRuntime } from "../../src/protocol/runtime-value.js";
import { decodeRunnerArgs, encodeRunnerArgs, RUNNER_DEFAULTS, type RunnerArgs } from "../../src/protocol/runner-args.js";

const warning = { signal: "SIGUSR2", warnSeconds: 90, maxRequeues: 3, forwardAll: false } as const;

describe("the runner's arguments", () => {
  test("every shape comes back as it was written", () => {
    const shapes: RunnerArgs[] = [
      { mode: "task", elementOffset: undefined, warning: undefined },
      { mode: "task", elementOffset: 1001, warning: { ...warning, warnSeconds: RUNNER_DEFAULTS.warnSeconds } },
      { mode: "slot", warning: { ...warning, signal: "SIGUSR1", forwardAll: true } },
      { mode: "slot", warning: undefined },
      {
        mode: "worker",
        worker: { firstWorker: 8, workers: 3, slots: 2, cpusPerTask: 2, taskTimeSeconds: 60, walltimeSeconds: 180, taskMemMb: 1024, taskMemPss: true },
        warning,
      },
      {
        mode: "worker",
        worker: { firstWorker: 0, workers: 1, slots: 1, cpusPerTask: 1, taskTimeSeconds: undefined, walltimeSeconds: undefined, taskMemMb: undefined, taskMemPss: false },
        warning: undefined,
      },
    ];
    for (const args of shapes) expect(decodeRunnerArgs(encodeRunnerArgs(args))).toEqual(args);
    expect(encodeRunnerArgs(shapes[1]!)).toEqual(["--element-offset", "1001", "--warning", "USR2", "--max-requeues", "3"]);
  });

  test("what a command line leaves out is a default, written once", () => {
    expect(decodeRunnerArgs(["--worker", "0"])).toEqual({
      mode: "worker",
      worker: { firstWorker: 0, workers: 1, slots: 1, cpusPerTask: 1, taskTimeSeconds: undefined, walltimeSeconds: undefined, taskMemMb: undefined, taskMemPss: false },
      warning: undefined,
    });
    expect(decodeRunnerArgs(["--warning", "USR2"])).toEqual({ mode: "task", elementOffset: undefined, warning: { signal: "SIGUSR2", warnSeconds: 60, maxRequeues: 3, forwardAll: false } });
  });

  test("the submission's container travels as one shell-safe word, runtime values included; a corrupt one is refused", () => {
    const container = { runtime: "apptainer", image: atRuntime("$SLURM_TMPDIR/env.sif"), binds: ["/project", "/data:/data:ro"], passEnv: ["HF_*"], options: ["--no-home"] } as const;
    for (const args of [
      { mode: "slot", warning: undefined, container },
      { mode: "task", elementOffset: 3, warning: { ...warning, warnSeconds: RUNNER_DEFAULTS.warnSeconds }, container },
    ] as RunnerArgs[]) {
      const line = encodeRunnerArgs(args);
      const word = line[line.indexOf("--container") + 1]!;
      expect(word).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeRunnerArgs(line)).toEqual(args);
    }
    expect(() => decodeRunnerArgs(["--container", "not-msgpack"])).toThrow(/^--container is not (a|a valid) container record/);
    const docker = packr.pack({ runtime: "docker", image: "x" }).toString("base64url");
    expect(() => decodeRunnerArgs(["--container", docker])).toThrow("--container is not a valid container record: Expected `runtime` to be one of");
  });

  test("a bad value or an unknown option is an error that names it", () => {
    expect(() => decodeRunnerArgs(["--worker", "0", "--slots", "two"])).toThrow("Bad --slots 'two': expected a non-negative integer");
    expect(() => decodeRunnerArgs(["--element-offset", "-1"])).toThrow("Bad --element-offset '-1'");
    expect(() => decodeRunnerArgs(["--slots", "2"])).toThrow("Bad runner options: --slots only go with --worker");
    expect(() => decodeRunnerArgs(["--warning", "NOPE"])).toThrow("Bad --warning 'NOPE': expected a signal name such as USR2");
    expect(() => decodeRunnerArgs(["--walltime"])).toThrow("Bad runner option --walltime: expected a value after it");
    expect(() => decodeRunnerArgs(["--bogus"])).toThrow("Unknown runner option '--bogus'");
  });
});
