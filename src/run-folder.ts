import { join } from "node:path";

/** Where one task's files live. */
export interface TaskPaths {
  /** The task's stdout log. */
  readonly stdout: string;
  /** The task's stderr log. */
  readonly stderr: string;
  /** The result file (msgpack), written atomically by the runner. */
  readonly result: string;
  /** The state file (msgpack): written when the task starts and when it ends. */
  readonly state: string;
}

/**
 * The layout of one submission's folder:
 *
 *     <dir>/job.sbatch          the sbatch script (Slurm only)
 *     <dir>/tasks.spec          every task, readable by index
 *     <dir>/manifest.json       enough to rebuild the futures
 *     <dir>/logs/<i>.out|.err   stdout and stderr per task
 *     <dir>/results/<i>.result  result per task (rank 0; rank r > 0 writes <i>.r<r>.result)
 *     <dir>/state/<i>.state     started/ended per task
 */
export class RunFolder {
  constructor(
    /** The submission's folder. */
    readonly dir: string,
  ) {}

  get script(): string {
    return join(this.dir, "job.sbatch");
  }
  get spec(): string {
    return join(this.dir, "tasks.spec");
  }
  get manifest(): string {
    return join(this.dir, "manifest.json");
  }
  get logsDir(): string {
    return join(this.dir, "logs");
  }
  get resultsDir(): string {
    return join(this.dir, "results");
  }
  get stateDir(): string {
    return join(this.dir, "state");
  }

  /** The result file's name for a task and rank. */
  static resultName(index: number, rank = 0): string {
    return rank === 0 ? `${index}.result` : `${index}.r${rank}.result`;
  }

  /** Where packed array elements' own (batch script) logs go. */
  get elementLogsDir(): string {
    return join(this.logsDir, "elements");
  }

  /** The marker an array element's script writes after its exit steps (stage-out) ran. */
  static exitedName(element: number): string {
    return `${element}.exited`;
  }

  task(index: number): TaskPaths {
    return {
      stdout: join(this.logsDir, `${index}.out`),
      stderr: join(this.logsDir, `${index}.err`),
      result: join(this.resultsDir, RunFolder.resultName(index)),
      state: join(this.stateDir, `${index}.state`),
    };
  }
}

/** What the runner writes to a result file. */
export type ResultFile =
  | { readonly ok: true; readonly value: unknown; readonly host: string; readonly jobId: string; readonly startedAt: number; readonly endedAt: number }
  | {
      readonly ok: false;
      readonly error: { readonly name: string; readonly message: string; readonly stack: string; readonly exitCode?: number; readonly signal?: string };
      readonly host: string;
      readonly jobId: string;
      readonly startedAt: number;
      readonly endedAt: number;
    };

/** What the runner writes to a state file. */
export interface StateFile {
  readonly state: "RUNNING" | "COMPLETED" | "FAILED";
  readonly host: string;
  readonly jobId: string;
  readonly pid: number;
  readonly at: number;
}

/** What the client writes to manifest.json. */
export interface Manifest {
  readonly version: 1;
  readonly kind: "slurm" | "local";
  readonly createdAt: string;
  readonly taskCount: number;
  /** Slurm: the job id sbatch printed; null until sbatch returns. */
  readonly jobId: string | null;
  /** Slurm: whether the job is an array (every mapArray is; submit is not). */
  readonly array: boolean;
  /** Ranks per array element (nodes × ntasksPerNode). */
  readonly ranks: number;
  /**
   * Slurm: the script stages out on exit and then writes `results/<element>.exited`;
   * a task's future settles only after that, so staged files are in place.
   */
  readonly exitMarkers?: boolean;
  /** Slurm, packed or split: tasks per array element (the runner writes each task's logs). */
  readonly tasksPerElement?: number;
  /** Slurm, packed or split: the array jobs, in order; element e of the submission is in the one whose range holds it. */
  readonly arrays?: readonly SubmittedArray[];
}

/** One array job of a packed or split submission. */
export interface SubmittedArray {
  readonly jobId: string;
  /** The submission's element that is this array's index 0. */
  readonly firstElement: number;
  readonly elements: number;
}
