import { describe, expect, expectTypeOf, test } from "vitest";
import { command, defineTask, ParameterError, type CommandResult, type Job, type ResultOf, type SlurmExecutor, type TaskSpec } from "../../src/index.js";

describe("tasks", () => {
  test("command keeps args as an array, never a shell string", () => {
    const spec = command("python3", ["train.py", "--name", "a b; rm -rf /"], { env: { SEED: "1" }, cwd: "/work" });
    expect(spec.record).toEqual({ kind: "command", program: "python3", args: ["train.py", "--name", "a b; rm -rf /"], env: { SEED: "1" }, cwd: "/work" });
    expectTypeOf(spec).toEqualTypeOf<TaskSpec<CommandResult>>();
  });

  test("bad commands are refused with what was wrong", () => {
    expect(() => command("")).toThrow(new ParameterError("command task", ["Expected `program` to be a non-empty string or runtime value, got ``"]));
    expect(() => command("echo", ["ok", 3 as unknown as string])).toThrow("Invalid command task: Expected `args[1]` to be a string or runtime value, got `3`");
    expect(() => command("echo", [], { env: { "BAD-NAME": "x" } })).toThrow("Invalid command task: Expected env name `BAD-NAME` to match [A-Za-z_][A-Za-z0-9_]*");
  });

  test("defineTask infers argument and result types", () => {
    const t = defineTask(import.meta.url, "double", async (x: number) => ({ doubled: x * 2 }));
    const spec = t.with(21);
    expect(spec.record).toEqual({ kind: "function", moduleUrl: import.meta.url, name: "double", arg: 21 });
    expectTypeOf(spec).toEqualTypeOf<TaskSpec<{ doubled: number }>>();
    expectTypeOf<ResultOf<typeof spec>>().toEqualTypeOf<{ doubled: number }>();
    const submit = (executor: SlurmExecutor) => executor.mapArray([spec, t.with(2)]);
    expectTypeOf(submit).returns.resolves.toEqualTypeOf<Job<{ doubled: number }>[]>();
    // @ts-expect-error the argument type is checked
    t.with("21");
  });

  test("defineTask needs a file URL (or absolute path) and an identifier", () => {
    expect(defineTask("/abs/tasks.js", "f", () => 1).moduleUrl).toBe("file:///abs/tasks.js");
    expect(() => defineTask("tasks.js", "f", () => 1)).toThrow("Invalid function task: Expected `moduleUrl` to be a file: URL or an absolute path (pass import.meta.url), got `tasks.js`");
    expect(() => defineTask(import.meta.url, "not valid", () => 1)).toThrow("Expected `name` to be an identifier such as `train`, got `not valid`");
  });

  test("a command's own container is checked where it is given, and kept in its record", () => {
    const spec = command("python", ["train.py"], { container: { runtime: "podman", image: "localhost/pytorch:2.3", binds: ["/project"] } });
    expect(spec.record).toMatchObject({ container: { runtime: "podman", image: "localhost/pytorch:2.3", binds: ["/project"] } });
    const refused = (container: unknown) => () => command("python", [], { container: container as never });
    expect(refused({ runtime: "docker", image: "x" })).toThrow(
      'Invalid command task: Expected `container.runtime` to be one of "apptainer", "singularity", "podman", "podman-hpc", "enroot", "pyxis", got `docker`',
    );
    expect(refused({ runtime: "podman", image: "-v" })).toThrow("Expected `container.image` to be a .sif or .sqsh path");
    expect(refused({ runtime: "podman", image: "x", binds: ["/a:b"] })).toThrow("`container.binds[0]` has a destination that is not absolute: `b`");
    expect(refused({ runtime: "podman", image: "x", binds: ["/a:/b:rx"] })).toThrow("`container.binds[0]` ends in `:rx`; accepted: :ro or :rw");
    expect(refused({ runtime: "podman", image: "x", passEnv: ["A B"] })).toThrow("Expected `container.passEnv[0]` to be a variable name, or a prefix ending in *");
    expect(refused({ runtime: "podman", image: "x", nv: true })).toThrow("Unknown `container.nv` (did you mean `gpus`?); accepted: runtime, image");
    expect(refused({ runtime: "apptainer", image: "/x.sif", runnerInside: true })).toThrow("`container.runnerInside` belongs to the container() setup step");
    expect(refused("podman")).toThrow("Expected `container` to be an object such as");
  });
});
