import { execa } from "execa";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type TestContext } from "vitest";
import { atRuntime, command, defineTask, JobEndedWithoutResultError, ParameterError, TaskFailedError, type Executor } from "../../src/index.js";
import { echo, explode, graceful, lingering, misbehave, square, stoppedBySigterm, usr1, whereAmI } from "../fixtures/tasks.js";
import { waitFor } from "./cluster.js";

const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

/** Builds an executor on a fresh folder; `nodeBinary` overrides the runner's node. */
export type MakeExecutor = (ctx: TestContext, options?: { nodeBinary?: string; maxParallel?: number; arrayParallelism?: number; bundle?: boolean; shortTime?: boolean }) => Promise<Executor>;

/**
 * The scheduler conformance suite: what every scheduler behind the engine
 * must do, through the Executor it serves (test/engine/conformance.test.ts
 * runs it against local processes and Slurm).
 */
export function schedulerConformance(make: MakeExecutor): void {
  test("the watcher follows the scheduler: a future is PENDING or RUNNING, then COMPLETED; stats() counts its polls and scheduler calls", async (ctx) => {
    const executor = await make(ctx);
    const job = await executor.submit(whereAmI.with(3000));
    const seen = new Set<string>();
    await waitFor("the task to run", async () => {
      seen.add(job.state);
      return job.state === "RUNNING" || job.done() ? true : undefined;
    });
    expect(await job.wait()).toBe("COMPLETED");
    expect([...seen].every((s) => ["PENDING", "RUNNING", "COMPLETED"].includes(s))).toBe(true);
    expect(seen.has("RUNNING")).toBe(true);
    const stats = executor.watcher.stats();
    expect(stats.polls).toBeGreaterThan(0);
    expect(Object.values(stats.calls as Record<string, number>).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  test("cancel() on a running task: it ends CANCELLED, without a result", async (ctx) => {
    const executor = await make(ctx);
    const job = await executor.submit(command("sleep", ["60"]));
    await waitFor("the task to run", async () => (job.state === "RUNNING" ? true : undefined));
    await job.cancel();
    expect(await job.wait()).toBe("CANCELLED");
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("CANCELLED");
  });

  test("a function task whose own SIGTERM handler calls process.exit, cancelled: it ends CANCELLED, not as a process that exited", async (ctx) => {
    const executor = await make(ctx);
    const started = join(await mkdtemp(join(tmpdir(), "slurmkit-graceful-")), "started");
    const job = await executor.submit(graceful.with(started));
    await waitFor("the task to start", async () => ((await readFile(started, "utf8").catch(() => "")) ? true : undefined));
    await job.cancel();
    expect(await job.wait()).toBe("CANCELLED");
    expect(await job.result().catch((e: unknown) => e)).toBeInstanceOf(JobEndedWithoutResultError);
  });

  test("a function task that fails from its own SIGTERM handler, cancelled: it ends CANCELLED, not FAILED with the task's error", async (ctx) => {
    const executor = await make(ctx);
    const started = join(await mkdtemp(join(tmpdir(), "slurmkit-stopped-")), "started");
    const job = await executor.submit(stoppedBySigterm.with(started));
    await waitFor("the task to start", async () => ((await readFile(started, "utf8").catch(() => "")) ? true : undefined));
    await job.cancel();
    expect(await job.wait()).toBe("CANCELLED");
    expect(await job.result().catch((e: unknown) => e)).toBeInstanceOf(JobEndedWithoutResultError);
  });

  test("command tasks return their exit code and keep their stdout", async (ctx) => {
    const executor = await make(ctx);
    const jobs = await executor.mapArray([
      command("printf", ["%s|", "a b", "it's", "$HOME", "`id`"]),
      command("sh", ["-c", 'echo "$GREETING from $PWD"'], { env: { GREETING: "hello" }, cwd: "/tmp" }),
    ]);
    expect(await Promise.all(jobs.map((j) => j.result()))).toEqual([{ exitCode: 0 }, { exitCode: 0 }]);
    expect(await jobs[0]!.stdout()).toBe("a b|it's|$HOME|`id`|");
    expect(await jobs[1]!.stdout()).toBe("hello from /tmp\n");
    expect(jobs.map((j) => j.state)).toEqual(["COMPLETED", "COMPLETED"]);
    expect(jobs.every((j) => j.done())).toBe(true);
  });

  test("function tasks from a TypeScript module return typed results", async (ctx) => {
    const executor = await make(ctx);
    const jobs = await executor.mapArray([1, 2, 3, 4, 5].map((x) => square.with(x)));
    const results = await Promise.all(jobs.map((j) => j.result()));
    expect(results.map(({ x, square }) => ({ x, square }))).toEqual([1, 2, 3, 4, 5].map((x) => ({ x, square: x * x })));
    expect(jobs.map((j) => j.taskIndex)).toEqual([0, 1, 2, 3, 4]);
  });

  test("a task that throws rejects with TaskFailedError carrying the remote stack", async (ctx) => {
    const executor = await make(ctx);
    const job = await executor.submit(explode.with("boom at 42"));
    const error = await job.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    const e = error as TaskFailedError;
    expect(e.remote.name).toBe("RangeError");
    expect(e.remote.message).toBe("boom at 42");
    expect(e.remote.stack).toContain("fixtures/tasks.ts");
    expect(e.jobId).toBe(job.id);
    expect(e.taskIndex).toBe(0);
    expect(e.logPath).toBe(job.paths.stderr);
    expect(e.host).not.toBe("");
    expect(e.shortMessage).toBe(`Task 0 of job ${job.id} failed on ${e.host}: boom at 42`);
    expect(e.message).toContain(`Logs: ${job.paths.stderr}`);
    expect(job.state).toBe("FAILED");
    expect(await job.stderr()).toContain("RangeError: boom at 42");
  });

  test("a failed command's message quotes its argv as a list and the last lines of its stderr (at most 20)", async (ctx) => {
    const executor = await make(ctx);
    const script = 'for i in $(seq 1 30); do echo "line $i" >&2; done; echo "disk full: /scratch" >&2; exit 4';
    const job = await executor.submit(command("sh", ["-c", script, "it's"]));
    const error = (await job.result().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.exitCode).toBe(4);
    const lines = error.remote.message.split("\n");
    expect(lines[0]).toBe(`Command failed with exit code 4: ["sh", "-c", ${JSON.stringify(script)}, "it's"]`);
    expect(lines[1]).toBe("The last lines of its stderr:");
    expect(lines.slice(2)).toEqual([...Array.from({ length: 19 }, (_, i) => `line ${i + 12}`), "disk full: /scratch"]);
    expect(error.message).toContain("disk full: /scratch");
  });

  test("a function task that calls process.exit(7) reports exit code 7, not only that it wrote no result", async (ctx) => {
    const executor = await make(ctx);
    const job = await executor.submit(misbehave.with({ exit: 7 }));
    const error = (await job.result().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.exitCode).toBe(7);
    expect(error.remote.name).toBe("ProcessExited");
    expect(error.remote.message).toContain("exited with code 7 before the task returned");
    expect(await job.wait()).toBe("FAILED");
  });

  test("a command that exits with 3 reports exit code 3", async (ctx) => {
    const executor = await make(ctx);
    const job = await executor.submit(command("sh", ["-c", "echo before exit; exit 3"]));
    const error = (await job.result().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.exitCode).toBe(3);
    expect(error.remote.message).toBe('Command failed with exit code 3: ["sh", "-c", "echo before exit; exit 3"]');
    expect(await job.wait()).toBe("FAILED");
    expect(await job.stdout()).toBe("before exit\n");
  });

  test("arguments travel as the README's table says: a Map, a Set, dates, bytes and big integers come back as themselves; a function is refused at submit, naming the task and key", async (ctx) => {
    const executor = await make(ctx);
    const arg = {
      m: new Map<unknown, unknown>([
        ["a", 1],
        [2, new Set(["x"])],
      ]),
      when: new Date(1_700_000_000_000),
      bytes: Buffer.from("hi"),
      big: 2n ** 70n,
    };
    const [whole, map] = await executor.mapArray([echo.with(arg), echo.with(arg.m)]);
    const back = (await whole!.result()) as { arg: typeof arg };
    expect(back.arg).toEqual(arg);
    expect(back.arg.m.get(2)).toEqual(new Set(["x"]));
    // A Map on the node is a Map, not an object with its entries.
    expect(await map!.result()).toEqual({ arg: arg.m, isMap: true });
    const before = (await readdir(executor.folder)).sort();
    const refused = await executor.mapArray([echo.with(1), echo.with({ f: () => 42 })]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ParameterError);
    expect((refused as ParameterError).problems).toEqual(["task 1: `arg.f` is a function, which cannot travel to a node: pass data, and do the work in the task"]);
    expect((await readdir(executor.folder)).sort()).toEqual(before);
  });

  test("a task that throws a string reports that string, with no stack into slurmkit; a result that cannot come back fails naming the key", async (ctx) => {
    const executor = await make(ctx);
    const [thrown, fn] = await executor.mapArray([misbehave.with({ throw: "out of cheese" }), misbehave.with({ returnFunction: true })]);
    const e = (await thrown!.result().catch((x: unknown) => x)) as TaskFailedError;
    expect(e).toBeInstanceOf(TaskFailedError);
    expect(e.remote).toMatchObject({ name: "thrown string", message: "out of cheese", stack: "thrown string: out of cheese" });
    expect(e.shortMessage).toBe(`Task 0 of job ${thrown!.id} failed on ${e.host}: out of cheese`);
    const f = (await fn!.result().catch((x: unknown) => x)) as TaskFailedError;
    expect(f).toBeInstanceOf(TaskFailedError);
    expect(f.remote.message).toBe("The task's result cannot come back: `result.callback` is a function, which cannot travel to a node: pass data, and do the work in the task");
  });

  test("a module that cannot be bundled is a ParameterError at submit naming the file and line, and nothing is written", async (ctx) => {
    const executor = await make(ctx);
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-broken-"));
    const broken = join(dir, "broken.ts");
    await writeFile(broken, 'import { helper } from "./no-such-helper.js";\nexport const x = helper;\n');
    const task = defineTask(broken, "train", (x: number) => x);
    const error = await executor.mapArray([task.with(1)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParameterError);
    expect((error as ParameterError).problems).toEqual([`Cannot bundle the task module: ${broken}:1:24: Could not resolve "./no-such-helper.js"`]);
    expect(await readdir(executor.folder).catch(() => [])).toEqual([]);
    const missing = defineTask("/nonexistent/tasks.ts", "train", (x: number) => x);
    await expect(executor.submit(missing.with(1))).rejects.toThrow(ParameterError);
    expect(await readdir(executor.folder).catch(() => [])).toEqual([]);
  });

  test("with bundle: false, a module that cannot be imported, or a task name it lacks, is a clear error in that task's result", async (ctx) => {
    const executor = await make(ctx, { bundle: false });
    const missing = defineTask("/nonexistent/tasks.ts", "train", (x: number) => x);
    const misnamed = defineTask(join(fixtures, "tasks.ts"), "nope", (x: number) => x);
    const [a, b] = await executor.mapArray([missing.with(1), misnamed.with(2)]);
    const ea = (await a!.result().catch((e: unknown) => e)) as TaskFailedError;
    expect(ea).toBeInstanceOf(TaskFailedError);
    expect(ea.remote.message).toMatch(/^Cannot import task module file:\/\/\/nonexistent\/tasks\.ts on \S+: /);
    const eb = (await b!.result().catch((e: unknown) => e)) as TaskFailedError;
    expect(eb.remote.message).toBe(
      `Task 'nope' not found in file://${join(fixtures, "tasks.ts")}: it exports the tasks echo, explode, graceful, hog, lingering, marked, misbehave, square, stoppedBySigterm, usr1, whereAmI. Export the value defineTask returns.`,
    );
  });

  test("runtime values expand on the node as one argv element; an unset variable fails the task naming it", async (ctx) => {
    const executor = await make(ctx);
    process.env.SLURMKIT_TEST_WORD = "a b $(touch /tmp/never) `x`";
    const [ok, unset] = await executor.mapArray([
      command("printf", ["%s|", atRuntime("[$SLURMKIT_TEST_WORD]"), atRuntime("${SLURMKIT_TEST_WORD}/x")]),
      command("echo", [atRuntime("$SLURMKIT_SURELY_UNSET/data")]),
    ]);
    await ok!.result();
    expect(await ok!.stdout()).toBe("[a b $(touch /tmp/never) `x`]|a b $(touch /tmp/never) `x`/x|");
    const error = (await unset!.result().catch((e: unknown) => e)) as TaskFailedError;
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.remote.message).toBe(`Runtime value \`$SLURMKIT_SURELY_UNSET/data\` needs $SLURMKIT_SURELY_UNSET, which is not set on ${error.host}`);
  });

  test("a runner that cannot start ends the job without a result, with the log tail", async (ctx) => {
    const executor = await make(ctx, { nodeBinary: "/nonexistent/node" });
    const job = await executor.submit(square.with(2));
    const error = (await job.result().catch((e: unknown) => e)) as JobEndedWithoutResultError;
    expect(error).toBeInstanceOf(JobEndedWithoutResultError);
    expect(error.state).toBe("FAILED");
    expect(error.logTail).toContain("/nonexistent/node");
    expect(error.message).toContain(`Last lines of ${job.paths.stderr}:`);
    expect(job.state).toBe("FAILED");
  });

  test("a task that leaves a timer running still finishes; SIGUSR1 does not open Node's inspector", async (ctx) => {
    const executor = await make(ctx);
    const [a, b] = await executor.mapArray([lingering.with(41), usr1.with(undefined)]);
    expect(await a!.result()).toBe(42);
    expect(await b!.result()).toEqual({ inspector: null });
  });

  test("`after`: tasks start once those jobs completed; after a failure they end CANCELLED without running", async (ctx) => {
    const executor = await make(ctx);
    const first = await executor.mapArray([command("sh", ["-c", "sleep 2"]), command("sh", ["-c", "sleep 1"])]);
    // Exits 0 only if both results of `first` exist when it starts.
    const check = command("sh", ["-c", 'test -e "$1" && test -e "$2" && echo ran', "sh", first[0]!.paths.result, first[1]!.paths.result]);
    const [then] = await executor.mapArray([check], { after: first });
    expect(await then!.result()).toEqual({ exitCode: 0 });
    expect(await then!.stdout()).toBe("ran\n");

    const failing = await executor.submit(command("sh", ["-c", "exit 3"]));
    const never = await executor.submit(command("sh", ["-c", "echo ran"]), { after: [first[0]!, failing] });
    expect(await never.wait()).toBe("CANCELLED");
    expect(await failing.wait()).toBe("FAILED");
    expect(await never.stdout()).toBe("");
    expect(await never.result().catch((e: unknown) => e)).toBeInstanceOf(JobEndedWithoutResultError);
  });

  test("a task over its time limit ends TIMEOUT, without a result (the scheduler's shortest limit: `shortTime`)", { timeout: 240_000 }, async (ctx) => {
    const executor = await make(ctx, { shortTime: true });
    const job = await executor.submit(command("sleep", ["600"]));
    expect(await job.wait()).toBe("TIMEOUT");
    expect(await job.result().catch((e: unknown) => e)).toBeInstanceOf(JobEndedWithoutResultError);
  });

  test("bad input is refused before the scheduler sees it, and nothing is written", async (ctx) => {
    const executor = await make(ctx);
    const attempts: Array<[() => Promise<unknown>, RegExp]> = [
      [() => executor.mapArray([square.with(1)], { tasksPerElment: 2 } as never), /did you mean `tasksPerElement`/],
      [() => executor.mapArray([square.with((() => 1) as never)]), /is a function, which cannot travel/],
      [() => executor.submit(square.with(1), { after: ["1234"] as never }), /Expected `after` to be an array of jobs/],
      [async () => executor.mapArray([command("", [])]), /Expected `program` to be a non-empty string/],
    ];
    for (const [attempt, message] of attempts) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ParameterError);
      expect([(error as ParameterError).message, ...(error as ParameterError).problems].join("\n")).toMatch(message);
    }
    const written = await readdir(executor.folder).catch(() => [] as string[]);
    expect(written.filter((name) => name !== "code")).toEqual([]);
  });

  test("futures rebuilt from the folder in a fresh process return the same results", async (ctx) => {
    const executor = await make(ctx);
    const jobs = await executor.mapArray([square.with(3), square.with(4), explode.with("no")]);
    const here = await Promise.all(
      jobs.map((j) =>
        j.result().then(
          (value) => ({ value }),
          (e: Error) => ({ error: e.name }),
        ),
      ),
    );
    const submission = dirname(dirname(jobs[0]!.paths.result));
    const { stdout } = await execa(tsx, [join(fixtures, "reload.mts"), executor.folder]);
    const rebuilt = JSON.parse(stdout) as Array<{ id: string; state: string }>;
    expect(rebuilt).toEqual(jobs.map((j, i) => ({ id: j.id, state: j.state, ...here[i] })));
    expect(await readdir(submission)).toEqual(expect.arrayContaining(["manifest.json", "tasks.spec", "logs", "results", "state"]));
  });
}
