import { showValue, unknownKeyProblems } from "../base/option-words.js";
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { ParameterError } from "../base/errors.js";
import { isTask as isTaskExport, TASK, type CommandRecord, type TaskContext, type TaskRecord } from "../protocol/task-record.js";
import { isRuntimeValue, type Late, type LateString } from "../protocol/runtime-value.js";
import { containerProblems, containerRecord, type ContainerRecord } from "../protocol/container.js";

export type { CommandRecord, FunctionRecord, TaskContainer, TaskContext, TaskRecord } from "../protocol/task-record.js";

/** What a command task's future resolves to; a non-zero exit is a TaskFailedError instead. */
export interface CommandResult {
  /** Always 0 here: other exit codes fail the task. */
  readonly exitCode: number;
}

declare const resultType: unique symbol;

/** A task ready to submit; `R` is what its job's `result()` resolves to. */
export interface TaskSpec<R> {
  readonly record: TaskRecord;
  /** Type-level only: the result type. */
  readonly [resultType]?: R;
}

/** The result type of a TaskSpec. */
export type ResultOf<T> = T extends TaskSpec<infer R> ? R : never;

/** Options of a command task. */
export interface CommandOptions {
  /** Extra environment variables for the command; values may be runtime values. */
  readonly env?: Readonly<Record<string, LateString>>;
  /** Working directory on the node, or a runtime value. @default the runner's (the directory sbatch was run from) */
  readonly cwd?: LateString;
  /**
   * Requeue the command (same job id, same future) when Slurm warns that its
   * time limit is near (`onTimeout`) or preempts it (`onPreempt`). The
   * program gets the warning signal (`signal`, USR2 by default) and saves its
   * own state; when it exits (or just before Slurm would kill it) the runner
   * requeues it, and the next attempt runs the same command. An exit code of
   * 0 after the warning means it finished: no requeue. Timeouts count
   * against `maxRequeues`; preemptions do not.
   */
  readonly requeue?: { readonly onTimeout?: boolean; readonly onPreempt?: boolean };
  /**
   * Export PyTorch's env:// rendezvous variables to the command: MASTER_ADDR
   * (rank 0's node), MASTER_PORT (from the job id), RANK, LOCAL_RANK,
   * WORLD_SIZE, LOCAL_WORLD_SIZE and NODE_RANK, as torchDistributedEnv() gives them.
   */
  readonly torchDistributed?: boolean;
  /**
   * Run this command in a container (see container()), instead of the
   * submission's container step, if any: a sweep can mix images. The runner
   * stays outside and starts the command through the runtime.
   */
  readonly container?: ContainerRecord;
}

const isLateString = (v: unknown, nonEmpty = false): v is LateString => isRuntimeValue(v) || (typeof v === "string" && !v.includes("\0") && (!nonEmpty || v !== ""));

/**
 * A task that runs `program` with `args` on the node, as an argv array:
 * nothing is ever joined into a shell string. Any of them may be a runtime
 * value (`atRuntime("$SLURM_TMPDIR/data")`), expanded on the node and passed
 * as one argv element.
 *
 * @example
 * const job = await executor.submit(command("python3", ["train.py", "--data", atRuntime("$SLURM_TMPDIR/data")]));
 */
export function command(program: LateString, args: readonly LateString[] = [], options: CommandOptions = {}): TaskSpec<CommandResult> {
  const problems: string[] = [];
  if (!isLateString(program, true)) {
    problems.push(`Expected \`program\` to be a non-empty string or runtime value, got \`${String(program)}\``);
  }
  if (!Array.isArray(args)) problems.push(`Expected \`args\` to be an array of strings, got \`${String(args)}\``);
  else {
    for (const [i, a] of args.entries()) if (!isLateString(a)) problems.push(`Expected \`args[${i}]\` to be a string or runtime value, got \`${String(a)}\``);
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new ParameterError("command task", [`Expected options to be an object, got ${showValue(options)}`]);
  problems.push(...unknownKeyProblems(options, ["env", "cwd", "requeue", "torchDistributed", "container"] satisfies (keyof CommandOptions)[]));
  if (options.env !== undefined && (typeof options.env !== "object" || options.env === null || Array.isArray(options.env)))
    problems.push(`Expected \`env\` to be an object of variable names and values, got ${showValue(options.env)}`);
  else
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.push(`Expected env name \`${key}\` to match [A-Za-z_][A-Za-z0-9_]*`);
      if (!isLateString(value)) problems.push(`Expected \`env.${key}\` to be a string or runtime value, got \`${String(value)}\``);
    }
  if (options.cwd !== undefined && !isLateString(options.cwd, true)) {
    problems.push(`Expected \`cwd\` to be a non-empty string or runtime value, got \`${String(options.cwd)}\``);
  }
  const { requeue } = options;
  if (requeue !== undefined) {
    if (typeof requeue !== "object" || requeue === null || Array.isArray(requeue))
      problems.push(`Expected \`requeue\` to be an object such as { onTimeout: true, onPreempt: true }, got \`${String(requeue)}\``);
    else {
      for (const [key, value] of Object.entries(requeue)) {
        if (key !== "onTimeout" && key !== "onPreempt") problems.push(`Unknown \`requeue.${key}\`; accepted: onTimeout, onPreempt`);
        else if (typeof value !== "boolean") problems.push(`Expected \`requeue.${key}\` to be true or false, got \`${String(value)}\``);
      }
    }
  }
  if (options.torchDistributed !== undefined && typeof options.torchDistributed !== "boolean") {
    problems.push(`Expected \`torchDistributed\` to be true or false, got \`${String(options.torchDistributed)}\``);
  }
  if (options.container !== undefined) {
    problems.push(...containerProblems(options.container, "container."));
    if ((options.container as { runnerInside?: unknown } | null)?.runnerInside !== undefined) problems.push("`container.runnerInside` belongs to the container() setup step, not to one command");
  }
  if (problems.length) throw new ParameterError("command task", problems);
  const record: CommandRecord = {
    kind: "command",
    program,
    args: [...args],
    ...(options.env ? { env: { ...options.env } } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(requeue && (requeue.onTimeout || requeue.onPreempt) ? { requeue: { ...requeue } } : {}),
    ...(options.torchDistributed ? { torchDistributed: true } : {}),
    ...(options.container ? { container: containerRecord(options.container) } : {}),
  };
  return { record };
}

/** A function that runs on the node; define it at the top level of a module and export it. */
export interface Task<A, R> {
  readonly [TASK]: true;
  /** The file: URL of the defining module. */
  readonly moduleUrl: string;
  readonly name: string;
  /** The function itself, for calling it locally. */
  readonly fn: (arg: A, ctx: TaskContext) => R | Promise<R>;
  /** Returns the arguments to resume with after a warning, or undefined for no requeue (see TaskOptions). */
  // biome-ignore lint/suspicious/noConfusingVoidType: a checkpoint written without a return statement returns void, and means "stop here".
  readonly checkpoint?: (arg: A, ctx: TaskContext) => A | undefined | void | Promise<A | undefined | void>;
  /** A task spec that calls the function with `arg` on the node; strings in `arg` may be runtime values. */
  with(arg: Late<A>): TaskSpec<R>;
}

/** Options of a function task. */
export interface TaskOptions<A> {
  /**
   * Called on the node when Slurm warns that the attempt ends soon (the
   * `signal` before the time limit, or preemption), with the attempt's
   * argument and context (`ctx.signal` has aborted by then). Return the
   * argument the next attempt starts from: the runner stores it, requeues
   * the job with `scontrol requeue` (same job id, same future) and calls the
   * task with it. Return undefined to let the attempt end: the task then
   * ends TIMEOUT or PREEMPTED. Timeouts count against `maxRequeues`;
   * preemptions do not. In a multi-rank job only rank 0's is called.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a checkpoint written without a return statement returns void, and means "stop here".
  readonly checkpoint?: (arg: A, ctx: TaskContext) => A | undefined | void | Promise<A | undefined | void>;
}

/** Whether a value is a Task made by defineTask (from any copy of slurmkit). */
export function isTask(value: unknown): value is Task<unknown, unknown> {
  return isTaskExport(value);
}

/**
 * Defines a function task. On the node, the runner imports `moduleUrl`
 * (TypeScript through tsx), finds the task by `name` among its exports, and
 * calls it with the argument and a TaskContext (`ctx.signal`, `ctx.attempt`).
 * Arguments and results travel through msgpack. With `checkpoint`, a task
 * that Slurm warns about (time limit, preemption) is requeued and resumes.
 *
 * @example
 * // tasks.ts
 * export const square = defineTask(import.meta.url, "square", (x: number) => x * x);
 * export const train = defineTask(import.meta.url, "train", trainFrom, { checkpoint: (arg) => ({ ...arg, resume: latestCheckpoint() }) });
 * // sweep.ts
 * const jobs = await executor.mapArray([1, 2, 3].map((x) => square.with(x)));
 */
export function defineTask<A, R>(moduleUrl: string, name: string, fn: (arg: A, ctx: TaskContext) => R | Promise<R>, options: TaskOptions<A> = {}): Task<A, Awaited<R>> {
  const problems: string[] = [];
  let url = moduleUrl;
  if (typeof url === "string" && isAbsolute(url)) url = pathToFileURL(url).href;
  if (typeof url !== "string" || !url.startsWith("file:")) {
    problems.push(`Expected \`moduleUrl\` to be a file: URL or an absolute path (pass import.meta.url), got \`${String(moduleUrl)}\``);
  }
  if (typeof name !== "string" || !/^[A-Za-z_$][\w$]*$/.test(name)) {
    problems.push(`Expected \`name\` to be an identifier such as \`train\`, got \`${String(name)}\``);
  }
  if (typeof fn !== "function") problems.push(`Expected \`fn\` to be a function, got \`${typeof fn}\``);
  if (typeof options !== "object" || options === null) throw new ParameterError("function task", [`Expected options to be an object, got ${showValue(options)}`]);
  problems.push(...unknownKeyProblems(options, ["checkpoint"] satisfies (keyof TaskOptions<A>)[]));
  const { checkpoint } = options;
  if (checkpoint !== undefined && typeof checkpoint !== "function") problems.push(`Expected \`checkpoint\` to be a function, got \`${typeof checkpoint}\``);
  if (problems.length) throw new ParameterError("function task", problems);
  return {
    [TASK]: true,
    moduleUrl: url,
    name,
    fn: fn as (arg: A, ctx: TaskContext) => Awaited<R>,
    ...(checkpoint ? { checkpoint } : {}),
    with(arg: Late<A>): TaskSpec<Awaited<R>> {
      return { record: { kind: "function", moduleUrl: url, name, arg, ...(checkpoint ? { checkpoint: true } : {}) } };
    },
  };
}
