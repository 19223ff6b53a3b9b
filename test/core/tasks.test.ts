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
});
