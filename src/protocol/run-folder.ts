import { join } from "node:path";
import { taskStreamName, type TaskStreamKind } from "./task-stream.js";

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
  /** The folder of attempt records: `<index>.<attempt>`, one per attempt that ended in a requeue. */
  readonly attemptsDir: string;
}

/**
 * Every path and file name of one submission's folder, the contract between
 * the client and the runner:
 *
 *     <dir>/job.sbatch, job-<j>.sbatch   the sbatch scripts (Slurm; one per array job)
 *     <dir>/workers.sbatch               packed: the script of workers added later
 *     <dir>/tasks.spec                   every task, readable by index
 *     <dir>/manifest.json                enough to rebuild the futures
 *     <dir>/request                      Slurm: the parameters and options it was submitted with (msgpack), for reruns
 *     <dir>/logs/<i>.out|.err            stdout and stderr per task
 *     <dir>/logs/elements/<A>_<a>.out|.err   a packed element's own logs (setup output)
 *     <dir>/results/<i>.result           result per task (rank 0; rank r > 0 writes <i>.r<r>.result)
 *     <dir>/results/<e>.exited           array element e's exit steps (stage-out) are done
 *     <dir>/state/<i>.state              started/ended per task
 *     <dir>/streams/<A>_<a>.<n>.rec      packed (manifest version 2): worker A_a's task states and results, attempt n (record-stream.ts, task-stream.ts)
 *     <dir>/streams/<A>_<a>.<n>.out|.err packed: its tasks' stdout and stderr, in chunks framed by task index
 *     <dir>/claims/b<b>                  packed (version 3): the worker that took block b of the tasks (blocks.ts; created exclusively, never removed)
 *     <dir>/claims/r<release>            packed: the worker that took the tasks of releases/<release>
 *     <dir>/claims/<i>                   packed, version 2: the worker that took task i
 *     <dir>/releases/<c>.end             packed: the tasks of claim c (b<b>, or r<release>) that its holder never started (msgpack, written atomically)
 *     <dir>/releases/<c>.s<k>            packed: the k-th part of claim c's tasks its holder gave to an idle worker
 *     <dir>/wants/<A>_<a>                packed: worker A_a has nothing to run and waits for a part of another's claim (removed after)
 *     <dir>/cancels/<i>                  packed: the client asks the worker running task i to stop it
 *     <dir>/rounds/<n>                   packed: round n (1, 2, ...) of workers, submitted by whoever created the file (msgpack; rounds.ts)
 *     <dir>/rounds/no-sbatch             packed: sbatch failed on a node; workers leave the rounds to the client
 *     <dir>/after                        the packed tasks this submission runs after (msgpack), checked on the node
 *     <dir>/attempts/<i>.<n>             attempt n of task i ended and the task was requeued (msgpack)
 *     <dir>/checkpoints/<i>              the arguments task i resumes with (msgpack), written before a requeue
 */
export class RunFolder {
  constructor(
    /** The submission's folder. */
    readonly dir: string,
  ) {}

  /** The sbatch script of the submission's `j`-th array job. */
  script(j = 0): string {
    return join(this.dir, j === 0 ? "job.sbatch" : `job-${j}.sbatch`);
  }
  /** Packed: the script of workers submitted later, when tasks are left. */
  get workersScript(): string {
    return join(this.dir, "workers.sbatch");
  }
  get spec(): string {
    return join(this.dir, "tasks.spec");
  }
  /** The packed tasks this submission's tasks run after. */
  get after(): string {
    return join(this.dir, "after");
  }
  get manifest(): string {
    return join(this.dir, "manifest.json");
  }
  /** Written by the first element that found no usable Node.js on its node: that line of its log. */
  get nodeUnusable(): string {
    return join(this.dir, "node-unusable");
  }
  /** Slurm: what the submission was asked with (parameters, packing, runner), so that its tasks can be run again. */
  get request(): string {
    return join(this.dir, "request");
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
  /** Packed: one record stream per worker attempt, with its tasks' states and results. */
  get streamsDir(): string {
    return join(this.dir, "streams");
  }
  /** A worker's stream of records (or of its tasks' stdout or stderr) for its attempt `attempt`. */
  taskStream(worker: string, attempt: number, kind: TaskStreamKind = "rec"): string {
    return join(this.streamsDir, taskStreamName(worker, attempt, kind));
  }
  /** Packed: one file per task a worker has taken. */
  get claimsDir(): string {
    return join(this.dir, "claims");
  }
  /** Packed: one file per running task the client cancelled. */
  get cancelsDir(): string {
    return join(this.dir, "cancels");
  }
  /** The claim file of a task (manifest version 2). */
  claim(index: number): string {
    return join(this.claimsDir, String(index));
  }
  /** A claim by name: `b<b>` for a block, `r<release>` for a release's tasks (blocks.ts). */
  claimFile(name: string): string {
    return join(this.claimsDir, name);
  }
  /** Packed: one file per claim whose holder stopped with tasks it never started. */
  get releasesDir(): string {
    return join(this.dir, "releases");
  }
  /** Packed: one file per round of workers after the first. */
  get roundsDir(): string {
    return join(this.dir, "rounds");
  }
  /** Round n of workers. */
  round(n: number): string {
    return join(this.roundsDir, String(n));
  }
  /** Written when sbatch failed on a node: workers then leave the next rounds to the client. */
  get noSbatch(): string {
    return join(this.roundsDir, "no-sbatch");
  }
  /** Packed: one file per worker that waits for tasks, while it waits. */
  get wantsDir(): string {
    return join(this.dir, "wants");
  }
  /** Worker `worker`'s request for tasks. */
  want(worker: string): string {
    return join(this.wantsDir, worker);
  }
  /** A release by name: claim c's unstarted tasks (`c.end`), or a part its holder gave away (`c.s<k>`). */
  release(name: string): string {
    return join(this.releasesDir, name);
  }
  /** The cancel request of a task. */
  cancel(index: number): string {
    return join(this.cancelsDir, String(index));
  }
  /** One file per attempt that ended in a requeue. */
  get attemptsDir(): string {
    return join(this.dir, "attempts");
  }
  /** The record of task `index`'s attempt `attempt` (from 0), written when it was requeued. */
  attempt(index: number, attempt: number): string {
    return join(this.attemptsDir, RunFolder.attemptName(index, attempt));
  }
  /** The arguments task `index` resumes with after a requeue. */
  checkpoint(index: number): string {
    return join(this.dir, "checkpoints", String(index));
  }
  /** Where packed array elements' own (batch script) logs go. */
  get elementLogsDir(): string {
    return join(this.logsDir, "elements");
  }

  /** A packed element's own log, by its array job id and index. */
  elementLog(arrayJobId: string, arrayIndex: number, stream: "out" | "err"): string {
    return join(this.elementLogsDir, `${arrayJobId}_${arrayIndex}.${stream}`);
  }

  /** The result file's name for a task and rank. */
  static resultName(index: number, rank = 0): string {
    return rank === 0 ? `${index}.result` : `${index}.r${rank}.result`;
  }

  /** An attempt record's name: `<index>.<attempt>`. */
  static attemptName(index: number, attempt: number): string {
    return `${index}.${attempt}`;
  }

  /** An attempt record's task and attempt, from its name; undefined for any other name (a temporary file, say). */
  static parseAttemptName(name: string): { index: number; attempt: number } | undefined {
    const m = /^(\d+)\.(\d+)$/.exec(name);
    return m ? { index: Number(m[1]), attempt: Number(m[2]) } : undefined;
  }

  /** The state file's name for a task. */
  static stateName(index: number): string {
    return `${index}.state`;
  }

  /** The marker an array element's script writes after its exit steps (stage-out) ran. */
  static exitedName(element: number): string {
    return `${element}.exited`;
  }

  /** The result file of a task's rank. */
  result(index: number, rank = 0): string {
    return join(this.resultsDir, RunFolder.resultName(index, rank));
  }

  task(index: number): TaskPaths {
    return {
      stdout: join(this.logsDir, `${index}.out`),
      stderr: join(this.logsDir, `${index}.err`),
      result: this.result(index),
      state: join(this.stateDir, RunFolder.stateName(index)),
      attemptsDir: this.attemptsDir,
    };
  }
}
