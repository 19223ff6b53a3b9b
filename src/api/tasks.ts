import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { ParameterError } from "../errors.js";
import { isTask as isTaskExport, TASK, type CommandRecord, type TaskRecord } from "../protocol/task-record.js";
import { isRuntimeValue, type Late, type LateString } from "./runtime-value.js";

export type { CommandRecord, FunctionRecord, TaskRecord } from "../protocol/task-record.js";

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
}

const isLateString = (v: unknown, nonEmpty = false): v is LateString =>
  isRuntimeValue(v) || (typeof v === "string" && !v.includes("\0") && (!nonEmpty || v !== ""));

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
  else args.forEach((a, i) => !isLateString(a) && problems.push(`Expected \`args[${i}]\` to be a string or runtime value, got \`${String(a)}\``));
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.push(`Expected env name \`${key}\` to match [A-Za-z_][A-Za-z0-9_]*`);
    if (!isLateString(value)) problems.push(`Expected \`env.${key}\` to be a string or runtime value, got \`${String(value)}\``);
  }
  if (options.cwd !== undefined && !isLateString(options.cwd, true)) {
    problems.push(`Expected \`cwd\` to be a non-empty string or runtime value, got \`${String(options.cwd)}\``);
  }
  if (problems.length) throw new ParameterError("command task", problems);
  const record: CommandRecord = {
    kind: "command",
    program,
    args: [...args],
    ...(options.env ? { env: { ...options.env } } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
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
  readonly fn: (arg: A) => R | Promise<R>;
  /** A task spec that calls the function with `arg` on the node; strings in `arg` may be runtime values. */
  with(arg: Late<A>): TaskSpec<R>;
}


/** Whether a value is a Task made by defineTask (from any copy of slurmkit). */
export function isTask(value: unknown): value is Task<unknown, unknown> {
  return isTaskExport(value);
}

/**
 * Defines a function task. On the node, the runner imports `moduleUrl`
 * (TypeScript through tsx), finds the task by `name` among its exports, and
 * calls it with the argument. Arguments and results travel through msgpack.
 *
 * @example
 * // tasks.ts
 * export const square = defineTask(import.meta.url, "square", (x: number) => x * x);
 * // sweep.ts
 * const jobs = await executor.mapArray([1, 2, 3].map((x) => square.with(x)));
 */
export function defineTask<A, R>(moduleUrl: string, name: string, fn: (arg: A) => R | Promise<R>): Task<A, Awaited<R>> {
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
  if (problems.length) throw new ParameterError("function task", problems);
  return {
    [TASK]: true,
    moduleUrl: url,
    name,
    fn: fn as (arg: A) => Awaited<R>,
    with(arg: Late<A>): TaskSpec<Awaited<R>> {
      return { record: { kind: "function", moduleUrl: url, name, arg } };
    },
  };
}
