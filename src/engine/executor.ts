// What every executor offers, whatever scheduler runs its tasks.
import { z } from "zod";
import { accepts, type OptionShape } from "../base/options.js";
import { plural } from "../base/words.js";
import type { TaskRequest, WorkersRecord } from "../protocol/records.js";
import type { TaskRecord } from "../protocol/task-record.js";
import { Job } from "../core/job.js";
import type { ResultOf, TaskSpec } from "../core/tasks.js";
import type { SchedulerCalls } from "./scheduler.js";
import type { JobWatcher } from "./watcher.js";

/** Options of mapArray(). */
export interface MapArrayOptions extends SubmitOptions {
  /**
   * Pack the tasks into this many array elements that work as workers: each
   * claims tasks one at a time and runs each with exactly one task's
   * resources and time limit, so a task gets what it would get in its own
   * element. "auto" picks workers and slots from the task count, the
   * partition's free capacity, `arrayParallelism`, MaxSubmitJobs and
   * MaxTime, and falls back to one task per element when packing cannot help.
   * @default one task per element
   */
  readonly workers?: number | "auto";
  /**
   * Task slots per worker: the worker asks for `slots` times one task's CPUs,
   * memory and GPUs (and memory of its own, see the README's "Memory in a
   * worker"), and runs up to `slots` tasks at once, each with its own
   * share (its own GPUs in CUDA_VISIBLE_DEVICES, its own CPUs where the node
   * allows pinning). @default 1, or what "auto" picks
   */
  readonly slots?: number;
  /**
   * The older way to ask for workers: `k` makes ceil(N / k) workers, "auto"
   * is `workers: "auto"`. Submissions with more elements than MaxArraySize
   * are split into several array jobs either way. Kept, not deprecated: it
   * maps exactly onto `workers`, and users who think in tasks per element
   * (submitit's habit) would otherwise do that division themselves.
   * @default 1
   */
  readonly tasksPerElement?: number | "auto";
}

/** Options of submit() and mapArray(). */
export interface SubmitOptions {
  /**
   * Jobs that must all complete successfully before these tasks start
   * (Slurm's `afterok`). If one of them fails, these jobs end CANCELLED
   * without running (`--kill-on-invalid-dep=yes`), rather than pending forever.
   */
  readonly after?: readonly Job<unknown>[];
}

const countOrAuto = accepts.or(z.union([z.number().int().positive(), z.literal("auto")]), 'a positive integer or "auto"');

/** What submit()'s options accept, checked at run time (`checkOptions`). */
export const SUBMIT_OPTIONS: OptionShape<SubmitOptions> = {
  after: accepts.or(z.array(z.custom((v) => v instanceof Job)), "an array of jobs (futures from submit, mapArray or loadJobs)"),
};

/** What mapArray()'s options accept. */
export const MAP_ARRAY_OPTIONS: OptionShape<MapArrayOptions> = { ...SUBMIT_OPTIONS, workers: countOrAuto, slots: accepts.positiveInteger, tasksPerElement: countOrAuto };

/** What a submission would be, from `executor.plan()`: nothing is written or submitted. */
export interface SubmissionPreview {
  /** The folder the submission would get (not created). */
  readonly folder: string;
  readonly taskCount: number;
  /** How many tasks run each function (`<module file>#<name>`) or program. */
  readonly tasks: Readonly<Record<string, number>>;
  /** The scripts the scheduler would be given, in order (none for local processes). */
  readonly scripts: readonly { readonly path: string; readonly text: string; readonly elements: number }[];
  /** Packed: the workers, their slots, and each worker's memory and walltime; undefined for one task per element. */
  readonly workers: WorkersRecord | undefined;
  /** What one task asks for. */
  readonly request: TaskRequest | undefined;
}

/** A preview as lines to read: the tasks, the packing, then each script. */
export function formatPreview(p: SubmissionPreview): string {
  const lines = [`${plural(p.taskCount, "task")} into ${p.folder}`];
  for (const [what, n] of Object.entries(p.tasks)) lines.push(`  ${n} × ${what}`);
  const w = p.workers;
  if (w) lines.push(`packed: ${plural(w.count, "worker")} × ${plural(w.slots, "slot")}${w.memMb ? `, ${w.memMb} MiB each` : ""}${w.walltimeSeconds ? `, walltime ${w.walltimeSeconds} s` : ""}`);
  else if (p.scripts.length) lines.push("one task per array element");
  for (const s of p.scripts) lines.push("", `# ${s.path} (${plural(s.elements, "element")})`, s.text.trimEnd());
  return `${lines.join("\n")}\n`;
}

/**
 * An executor: it submits tasks and returns one future per task. SlurmExecutor
 * and LocalExecutor implement it, and `autoExecutor` and `executorFromFlags`
 * return it.
 */
export interface Executor {
  /** The folder of its submissions (a path on the cluster for SSH). */
  readonly folder: string;
  /** The watcher that settles its futures: `stats()` counts scheduler calls and polls. */
  readonly watcher: JobWatcher<SchedulerCalls>;
  /** Submits one task. */
  submit<T extends TaskSpec<unknown>>(task: T, options?: SubmitOptions): Promise<Job<ResultOf<T>>>;
  /** What `mapArray(tasks, options)` would submit: its scripts, tasks and packing. Nothing is written or submitted. */
  plan(tasks: readonly TaskSpec<unknown>[], options?: MapArrayOptions): Promise<SubmissionPreview>;
  /** Submits tasks; one future per task, in order. */
  mapArray<T extends TaskSpec<unknown>>(tasks: readonly T[], options?: MapArrayOptions): Promise<Job<ResultOf<T>>[]>;
  /** Lets go of what it holds (an SSH connection, its watcher once its jobs settled). */
  close(): void;
}

/** The tasks of a preview, counted by function (`<module file>#<name>`) or program. */
export function countTasks(records: readonly TaskRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    const what = r.kind === "function" ? `${(r.source ?? r.moduleUrl).split("/").at(-1)}#${r.name}` : typeof r.program === "string" ? r.program : r.program.template;
    out[what] = (out[what] ?? 0) + 1;
  }
  return out;
}
