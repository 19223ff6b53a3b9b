import { UnsetVariableError } from "../../src/base/errors.js";
import { describe, expect, expectTypeOf, test } from "vitest";
import { atRuntime, command, concatRuntime, isRuntimeValue, defineTask, ParameterError, SlurmkitError, type RuntimeValue, type TaskSpec } from "../../src/index.js";
import { expandDeep, expandRuntime, shellWord } from "../../src/protocol/runtime-value.js";
import { packr } from "../../src/protocol/codec.js";
import { execa } from "execa";

describe("atRuntime", () => {
  test("splits literal text and $VAR / ${VAR} references; ~ is $HOME", () => {
    expect(atRuntime("$SLURM_TMPDIR/data").parts).toEqual([{ variable: "SLURM_TMPDIR" }, { text: "/data" }]);
    expect(atRuntime("${A}x${B_2}").parts).toEqual([{ variable: "A" }, { text: "x" }, { variable: "B_2" }]);
    expect(atRuntime("~/runs").parts).toEqual([{ variable: "HOME" }, { text: "/runs" }]);
    expect(atRuntime("a~b").parts).toEqual([{ text: "a~b" }]);
  });

  test("backticks, globs, ; and a $ without a name are literal text", () => {
    expect(atRuntime("`id`;*.txt $ $1 a$").parts).toEqual([{ text: "`id`;*.txt $ $1 a$" }]);
  });

  test("command substitution and ${...} expansions other than ${NAME} are errors at construction", () => {
    expect(() => atRuntime("$(touch /tmp/x)")).toThrow(
      new ParameterError("runtime value", ["`$(touch /tmp/x)` has a command substitution `$(` at offset 0; runtime values expand only $VAR and ${VAR}, never commands"]),
    );
    expect(() => atRuntime("a/${HOME:-/tmp}")).toThrow("has `${HOME:-/tmp}` at offset 2; only ${NAME} is accepted (no defaults, substrings or other expansions)");
    expect(() => atRuntime("${HOME")).toThrow("has `${HOME` at offset 0; only ${NAME} is accepted");
  });

  test("expands from the environment; an unset variable is an error naming it", () => {
    const v = atRuntime("$SLURM_TMPDIR/$NAME.txt");
    expect(expandRuntime(v, { SLURM_TMPDIR: "/scratch/1", NAME: "a b$(x)" })).toBe("/scratch/1/a b$(x).txt");
    expect(() => expandRuntime(v, { NAME: "x" }, "n1")).toThrow(new UnsetVariableError("SLURM_TMPDIR", "$SLURM_TMPDIR/$NAME.txt", "n1"));
    expect(() => expandRuntime(v, { NAME: "x" }, "n1")).toThrow("Runtime value `$SLURM_TMPDIR/$NAME.txt` needs $SLURM_TMPDIR, which is not set on n1");
    expect(() => expandRuntime(v, { NAME: "x" }, "n1")).toThrow(SlurmkitError); // as every slurmkit error is
  });

  test("survives msgpack, and expands deep inside function arguments", () => {
    const arg = { paths: [atRuntime("$D/a"), "plain"], nested: { p: atRuntime("${D}") }, n: 3 };
    const back = packr.unpack(packr.pack(arg)) as typeof arg;
    expect(expandDeep(back, { D: "/d" })).toEqual({ paths: ["/d/a", "plain"], nested: { p: "/d" }, n: 3 });
  });

  test("renders in shell as double-quoted ${VAR:?} pieces with single-quoted literals", async () => {
    const v = atRuntime("$D/it's $ (x) `y` *");
    expect(shellWord(v)).toBe(`"\${D?is not set (needed by a slurmkit runtime value)}"'/it'\\''s $ (x) \`y\` *'`);
    const { stdout } = await execa("bash", ["-c", `printf '%s' ${shellWord(v)}`], { env: { D: "/x y" } });
    expect(stdout).toBe("/x y/it's $ (x) `y` *");
    const unset = await execa("bash", ["-c", `printf '%s' ${shellWord(v)}`], { env: { PATH: "/usr/bin:/bin" }, extendEnv: false, reject: false });
    expect(unset.exitCode).not.toBe(0);
    expect(unset.stderr).toContain("D: is not set (needed by a slurmkit runtime value)");
  });

  test("NUL bytes, empty templates and forged runtime values are refused", () => {
    expect(() => atRuntime("")).toThrow("Expected a non-empty template string without NUL");
    expect(() => atRuntime("$HOME/\0x")).toThrow("Expected a non-empty template string without NUL");
    expect(() => concatRuntime(atRuntime("$HOME/"), "\0venv")).toThrow("Expected strings without NUL bytes to join");
    const forged = { __slurmkit_runtime__: 1, template: "x", parts: [{ variable: "X:-$(touch f)" }] };
    expect(isRuntimeValue(forged)).toBe(false);
    expect(() => shellWord(forged as never)).toThrow("Expected a runtime value made by atRuntime()");
    expect(() => command("echo", [forged as never])).toThrow("Expected `args[0]` to be a string or runtime value");
  });

  test("concatRuntime keeps strings literal, even with $ in them", () => {
    const v = concatRuntime(atRuntime("$D/in/"), "$HOME $(x)");
    expect(expandRuntime(v, { D: "/d", HOME: "/root" })).toBe("/d/in/$HOME $(x)");
    expect(v.template).toBe("$D/in/$HOME $(x)");
  });

  test("fits wherever tasks take strings, typed", () => {
    const spec = command(atRuntime("$HOME/bin/tool"), ["--in", atRuntime("$SLURM_TMPDIR/in")], { env: { OUT: atRuntime("$SLURM_TMPDIR/out") }, cwd: atRuntime("$SLURM_TMPDIR") });
    expect(spec.record.kind).toBe("command");
    const t = defineTask(import.meta.url, "t", (a: { path: string; n: number }) => a.n);
    expectTypeOf(t.with({ path: atRuntime("$X"), n: 1 })).toEqualTypeOf<TaskSpec<number>>();
    expectTypeOf(atRuntime("$X")).toEqualTypeOf<RuntimeValue>();
  });
});
