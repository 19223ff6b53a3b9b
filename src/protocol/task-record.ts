import type { RuntimeValue } from "../api/runtime-value.js";

/** A string, or a runtime value expanded on the node. */
type LateString = string | RuntimeValue;

/** A command task as stored in the spec file. */
export interface CommandRecord {
  readonly kind: "command";
  readonly program: LateString;
  readonly args: readonly LateString[];
  readonly env?: Readonly<Record<string, LateString>>;
  readonly cwd?: LateString;
}

/** A function task as stored in the spec file. */
export interface FunctionRecord {
  readonly kind: "function";
  /** A file: URL of the module the runner imports: the task's code snapshot (`code/<hash>.mjs`), or its module itself with `bundle: false`. */
  readonly moduleUrl: string;
  /** Snapshots: the file: URL of the module as the user wrote it, for messages. */
  readonly source?: string;
  /** The task's name, as given to defineTask. */
  readonly name: string;
  /** The argument, sent through msgpack; runtime values in it are expanded on the node. */
  readonly arg: unknown;
}

/** One task as the runner reads it. */
export type TaskRecord = CommandRecord | FunctionRecord;

/** The mark defineTask puts on a task, shared by every copy of slurmkit (the runner finds tasks by it). */
export const TASK = Symbol.for("slurmkit.task");

/** What the runner needs of a task found among a module's exports. */
export interface TaskExport {
  readonly [TASK]: true;
  readonly name: string;
  readonly fn: (arg: unknown) => unknown;
}

/** Whether a value is a Task made by defineTask (from any copy of slurmkit). */
export function isTask(value: unknown): value is TaskExport {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[TASK] === true;
}
