import type { RuntimeValue } from "./runtime-value.js";
import type { ContainerRecord } from "./container.js";

/** A string, or a runtime value expanded on the node. */
type LateString = string | RuntimeValue;

/** A command task as stored in the spec file. */
export interface CommandRecord {
  readonly kind: "command";
  readonly program: LateString;
  readonly args: readonly LateString[];
  readonly env?: Readonly<Record<string, LateString>>;
  readonly cwd?: LateString;
  /** Requeue the command when Slurm warns of its time limit or preempts it (the program saves its own state on the signal). */
  readonly requeue?: { readonly onTimeout?: boolean; readonly onPreempt?: boolean };
  /** Export PyTorch's rendezvous variables (MASTER_ADDR, RANK, ...) to the command. */
  readonly torchDistributed?: boolean;
  /** The container this command runs in, instead of the submission's. */
  readonly container?: ContainerRecord;
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
  /** The task has a checkpoint function: it can be requeued. */
  readonly checkpoint?: boolean;
}

/** One task as the runner reads it. */
export type TaskRecord = CommandRecord | FunctionRecord;

/** The mark defineTask puts on a task, shared by every copy of slurmkit (the runner finds tasks by it). */
export const TASK = Symbol.for("slurmkit.task");

/** What a function task gets besides its argument. */
export interface TaskContext {
  /**
   * Aborts when Slurm warns that this attempt is about to end: its time limit
   * is near, or it is being preempted. The reason is a TaskInterruptedError
   * that says which (`ending`). Stop work and return, or let `checkpoint` save it.
   */
  readonly signal: AbortSignal;
  /** This attempt's number: 0, then 1 after the first requeue, and so on. */
  readonly attempt: number;
  /**
   * The submission's container (its container() step), where the task's
   * JavaScript, which runs outside it, starts commands; undefined without one.
   */
  readonly container?: TaskContainer | undefined;
}

/** What a function task gets of its submission's container. */
export interface TaskContainer {
  readonly runtime: string;
  /** The image, with runtime values expanded. */
  readonly image: string;
  /**
   * Runs a command in the container, as a command task would run (binds,
   * variables, GPUs; Slurm's end and warning reach it), its output in this
   * task's logs. Resolves with exit code 0; a failure rejects with the exit
   * code or signal in the error.
   */
  exec(program: string, args?: readonly string[], options?: { readonly env?: Readonly<Record<string, string>>; readonly cwd?: string }): Promise<{ exitCode: number }>;
}

/** What the runner needs of a task found among a module's exports. */
export interface TaskExport {
  readonly [TASK]: true;
  readonly name: string;
  readonly fn: (arg: unknown, ctx: TaskContext) => unknown;
  /** Returns the arguments of the next attempt, or undefined to end the task here. */
  readonly checkpoint?: (arg: unknown, ctx: TaskContext) => unknown;
}

/** Whether a value is a Task made by defineTask (from any copy of slurmkit). */
export function isTask(value: unknown): value is TaskExport {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[TASK] === true;
}

/** Requeues of one task after a timeout, at most, unless `maxRequeues` says otherwise. */
export const DEFAULT_MAX_REQUEUES = 3;

/** Whether a task wants Slurm's warning: a function task (`ctx.signal`, a checkpoint) or a command with `requeue`. */
export function wantsWarning(record: TaskRecord): boolean {
  return record.kind === "function" || record.requeue !== undefined;
}
