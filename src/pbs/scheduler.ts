// qsub, qstat and qdel through a transport, as the batch machinery's
// scheduler: ids in slurmkit's form (`12`, `12_3`), PBS's (`12[]`, `12[3]`)
// only on the command line.
import { SchedulerError, SlurmkitError, SubmissionError } from "../base/errors.js";
import type { QueueEntry } from "../engine/scheduler.js";
import type { BatchScheduler } from "../slurm/batch.js";
import { DEFAULT_PARTITION, type NodeCpus, type SacctUsage } from "../slurm/parse.js";
import type { ClusterLimits } from "../slurm/scheduler.js";
import { LocalTransport } from "../transport/local.js";
import { isUnreachable, type RunResult, type Transport } from "../transport/transport.js";
import { parsePbsId, parseQstatJson, parseQstatText, pbsQueueEntries, type PbsJobStatus, toPbsId } from "./parse.js";
import { pbsDependency } from "./script.js";

/** How many PBS calls a process has made; tests read it. */
export interface PbsCallCounts {
  qsub: number;
  qstat: number;
  qdel: number;
  /** `qstat -B`, `qstat -Q` and `pbsnodes` calls that read the server's limits. */
  limits: number;
}

/** PBS's walltime (`[[HH:]MM:]SS`) in seconds; undefined for anything else. */
export function parseWalltime(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^(?:(?:(\d+):)?(\d+):)?(\d+)$/.exec(text.trim());
  return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3]) : undefined;
}

/** PBS's size (`102400kb`, `4gb`, `100mb`, bytes without a unit) in megabytes; undefined for anything else. */
export function parsePbsSize(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^(\d+)(b|kb|mb|gb|tb|pb|w|kw|mw|gw)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "b").toLowerCase().replace("w", "b");
  const power = ["b", "kb", "mb", "gb", "tb", "pb"].indexOf(unit);
  return (Number(m[1]) * 1024 ** power) / 1024 ** 2;
}

/** Whether `stderr` has at least one line, and every line says what `expected` matches. */
function onlyLines(stderr: string, expected: RegExp): boolean {
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  return lines.length > 0 && lines.every((l) => expected.test(l));
}

/**
 * The options of the batch machinery's submit (sbatch-style) as qsub's. A
 * `-v` on qsub's command line replaces the script's `#PBS -v`, so the
 * submission's tag goes into it too.
 */
export function qsubArgs(args: readonly string[], tag: string | undefined): string[] {
  const out: string[] = [];
  const vars: string[] = [];
  for (const arg of args) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    const [name, value] = m ? [m[1]!, m[2]!] : [arg, ""];
    if (name === "array") {
      const range = /^0-(\d+)(?:%(\d+))?$/.exec(value);
      if (!range) throw new SlurmkitError(`qsub cannot take --array=${value}`);
      out.push("-J", Number(range[1]) > 0 ? `0-${range[1]}` : "0-1:2");
      if (range[2] !== undefined) out.push("-W", `max_run_subjobs=${range[2]}`);
    } else if (name === "export") {
      vars.push(...value.split(",").filter((v) => v !== "ALL"));
    } else if (name === "dependency") out.push("-W", `depend=${pbsDependency(value)}`);
    else throw new SlurmkitError(`qsub has no form of the option ${arg}`);
  }
  if (vars.length) out.push("-v", [...(tag ? [`SLURMKIT_TAG=${tag}`] : []), ...vars].join(","));
  return out;
}

/** qsub, qstat and qdel through a transport, with a count of every call. */
export class PbsScheduler implements BatchScheduler {
  readonly calls: PbsCallCounts = { qsub: 0, qstat: 0, qdel: 0, limits: 0 };
  timeoutMs = 120_000;
  /** Which ids are arrays (`12[]` to PBS), learned from qsub's and qstat's answers. */
  readonly #arrays = new Set<string>();
  readonly #plain = new Set<string>();
  /** The server keeps finished jobs (`job_history_enable`); undefined until asked. */
  #history: Promise<boolean> | undefined;
  /** Called once when the server keeps no finished jobs. @default a line on stderr */
  onNoHistory: (message: string) => void = (message) => process.stderr.write(`${message}\n`);

  constructor(readonly transport: Transport) {}

  #run(program: string, args: readonly string[]): Promise<RunResult> {
    return this.transport.run(program, args, { timeoutMs: this.timeoutMs }).catch((error: unknown) => {
      if (isUnreachable(error) || error instanceof SlurmkitError) throw error;
      throw new SchedulerError([program, ...args], -1, `could not run ${program}: ${(error as Error).message}`, { cause: error });
    });
  }

  #learn(jobs: readonly PbsJobStatus[]): void {
    for (const job of jobs) {
      const id = parsePbsId(job.id);
      if (!id) continue;
      if (id.array) this.#arrays.add(id.jobId);
      else this.#plain.add(id.jobId);
    }
  }

  /** The PBS ids to ask for slurmkit's `id`: its known form, or both while unknown. */
  #pbsIds(id: string): string[] {
    if (id.includes("_")) return [toPbsId(id, true)];
    if (this.#arrays.has(id)) return [toPbsId(id, true)];
    if (this.#plain.has(id)) return [id];
    return [id, toPbsId(id, true)];
  }

  /** Runs `qsub [args] script`: its job id in slurmkit's form (`12` for a job or an array). */
  async submit(script: string, args: readonly string[] = [], tag?: string): Promise<string> {
    const argv = [...qsubArgs(args, tag), script];
    this.calls.qsub++;
    let result: RunResult;
    try {
      result = await this.transport.run("qsub", argv, { timeoutMs: this.timeoutMs });
    } catch (error) {
      throw new SubmissionError(["qsub", ...argv], -1, `could not run qsub: ${(error as Error).message}`, { cause: error });
    }
    const id = result.exitCode === 0 ? parsePbsId(result.stdout.trim().split("\n").pop() ?? "") : undefined;
    if (id === undefined || id.index !== undefined) throw new SubmissionError(["qsub", ...argv], result.exitCode, result.stderr || `unexpected output: ${result.stdout}`);
    (id.array ? this.#arrays : this.#plain).add(id.jobId);
    return id.jobId;
  }

  /**
   * The jobs' and their subjobs' states, finished ones included while the
   * server keeps them (`job_history_enable`): one qstat call, `-F json` for
   * one id, else text, since qstat 23.06 writes only the first id's jobs as
   * JSON. Ids PBS no longer knows are left out.
   */
  async queue(jobIds: readonly string[]): Promise<QueueEntry[]> {
    if (jobIds.length === 0) return [];
    await this.#checkHistory();
    const ids = [...new Set(jobIds.flatMap((id) => this.#pbsIds(id)))];
    const json = ids.length === 1;
    const argv = ["-x", "-f", ...(json ? ["-F", "json"] : []), "-t", ...ids];
    this.calls.qstat++;
    const result = await this.#run("qstat", argv);
    let jobs: PbsJobStatus[];
    try {
      jobs = json ? (result.stdout.trim() ? parseQstatJson(result.stdout) : []) : parseQstatText(result.stdout);
    } catch {
      throw new SchedulerError(["qstat", ...argv], result.exitCode, result.stderr || `output that is not qstat's JSON: ${result.stdout.slice(0, 200)}`);
    }
    // Unknown ids (153) and finished jobs asked without history (35) are answers; anything else is a failure.
    if (result.exitCode !== 0 && !onlyLines(result.stderr, /Unknown Job Id|Job has finished/i)) throw new SchedulerError(["qstat", ...argv], result.exitCode, result.stderr || "no output");
    this.#learn(jobs);
    return pbsQueueEntries(jobs);
  }

  /** qstat -x answers for finished jobs too: nothing more to ask. */
  async accounting(): Promise<undefined> {
    return undefined;
  }

  /** Whether the server keeps finished jobs; says once, through onNoHistory, what is lost when it does not. */
  #checkHistory(): Promise<boolean> {
    this.#history ??= (async () => {
      this.calls.limits++;
      const [server = {}] = Object.values(await this.#json("qstat", ["-B", "-f", "-F", "json"], "Server"));
      const kept = String(server.job_history_enable ?? "False") === "True";
      if (!kept) {
        this.onNoHistory(
          "slurmkit: this PBS server keeps no finished jobs (job_history_enable is False): a task that ends without a result (killed, over its walltime or memory) is reported from its run folder, without PBS's exit status or the reason, and job.usage() has no figures from PBS",
        );
      }
      return kept;
    })().catch((error: unknown) => {
      this.#history = undefined;
      throw error;
    });
    return this.#history;
  }

  /** What PBS says the jobs used (`resources_used`), by slurmkit id; undefined when qstat cannot say. */
  async usage(jobIds: readonly string[]): Promise<Map<string, SacctUsage> | undefined> {
    const out = new Map<string, SacctUsage>();
    for (const id of jobIds) {
      const ids = this.#pbsIds(id);
      this.calls.qstat++;
      const r = await this.#run("qstat", ["-x", "-f", "-t", ...ids]);
      if (r.exitCode !== 0 && !onlyLines(r.stderr, /Unknown Job Id|Job has finished/i)) return undefined;
      const jobs = parseQstatText(r.stdout);
      this.#learn(jobs);
      for (const job of jobs) {
        const parts = parsePbsId(job.id);
        const walltime = parseWalltime(job.attributes.get("resources_used.walltime"));
        const cput = parseWalltime(job.attributes.get("resources_used.cput"));
        if (!parts || walltime === undefined || cput === undefined || (parts.array && parts.index === undefined)) continue;
        const mem = parsePbsSize(job.attributes.get("resources_used.mem"));
        out.set(parts.index === undefined ? parts.jobId : `${parts.jobId}_${parts.index}`, { elapsedSeconds: walltime, cpuSeconds: cput, maxRssMb: mem === undefined ? undefined : Math.ceil(mem) });
      }
    }
    return out;
  }

  /** The ids of this user's jobs that carry `tag` (`-v SLURMKIT_TAG=...`): qselect of the user's jobs, finished ones too, then one qstat of those. */
  async tagged(tag: string): Promise<string[]> {
    const user = await this.#run("id", ["-un"]);
    const name = user.stdout.trim();
    if (user.exitCode !== 0 || !/^[\w.@-]+$/.test(name)) throw new SchedulerError(["id", "-un"], user.exitCode, user.stderr || `unexpected output: ${user.stdout}`);
    this.calls.qstat++;
    const select = ["-x", "-u", name];
    const listed = await this.#run("qselect", select);
    if (listed.exitCode !== 0) throw new SchedulerError(["qselect", ...select], listed.exitCode, listed.stderr);
    const mine = listed.stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && parsePbsId(l)?.index === undefined);
    if (mine.length === 0) return [];
    this.calls.qstat++;
    const argv = ["-x", "-f", ...mine];
    const r = await this.#run("qstat", argv);
    if (r.exitCode !== 0 && !onlyLines(r.stderr, /Unknown Job Id|Job has finished/i)) throw new SchedulerError(["qstat", ...argv], r.exitCode, r.stderr);
    const jobs = parseQstatText(r.stdout);
    this.#learn(jobs);
    const ids = jobs.flatMap((j) => {
      const parts = parsePbsId(j.id);
      return parts && parts.index === undefined && j.attributes.get("Variable_List.SLURMKIT_TAG") === tag ? [parts.jobId] : [];
    });
    return [...new Set(ids)];
  }

  /** qdel of a job, an array or a subjob; one that already finished counts as cancelled. */
  async cancel(jobId: string): Promise<void> {
    const ids = this.#pbsIds(jobId);
    this.calls.qdel++;
    const r = await this.#run("qdel", ids);
    if (r.exitCode === 0) return;
    // Asked both forms of an id: one of them is unknown. A finished job: nothing to cancel.
    const unknown = r.stderr.split("\n").filter((l) => /Unknown Job Id/i.test(l)).length;
    if (onlyLines(r.stderr, /Unknown Job Id|Job has finished|Request invalid for state of job/i) && unknown < ids.length) return;
    throw new SchedulerError(["qdel", ...ids], r.exitCode, r.stderr || "no output");
  }

  /**
   * The server's limits: `max_array_size` (`qstat -B`), each queue's
   * `resources_max.walltime` (`qstat -Q`, the default queue also under "*"),
   * and the nodes' CPUs, memory and GPUs (`pbsnodes -a`).
   */
  async limits(): Promise<ClusterLimits> {
    this.calls.limits++;
    const server = await this.#json("qstat", ["-B", "-f", "-F", "json"], "Server");
    const [info] = Object.values(server);
    const maxArraySize = Number(info?.max_array_size ?? 10000);
    const defaultQueue = typeof info?.default_queue === "string" ? info.default_queue : undefined;
    this.calls.limits++;
    const queues = await this.#json("qstat", ["-Q", "-f", "-F", "json"], "Queue").catch(() => ({}));
    const maxTimes = new Map<string, number | undefined>();
    for (const [name, q] of Object.entries(queues)) {
      const max = parseWalltime(String((q.resources_max as Record<string, unknown> | undefined)?.walltime ?? ""));
      maxTimes.set(name, max);
      if (name === defaultQueue) maxTimes.set(DEFAULT_PARTITION, max);
    }
    this.calls.limits++;
    const nodes = await this.#json("pbsnodes", ["-a", "-F", "json"], "nodes").catch(() => ({}));
    const list: NodeCpus[] = Object.entries(nodes).map(([name, n]) => {
      const available = (n.resources_available ?? {}) as Record<string, unknown>;
      const memoryMb = parsePbsSize(String(available.mem ?? ""));
      const gpus = Number(available.ngpus ?? 0);
      const state = String(n.state ?? "");
      return {
        name,
        cpus: Number(available.ncpus ?? n.pcpus ?? 1),
        partitions: [],
        inDefaultPartition: true,
        ...(memoryMb !== undefined ? { memoryMb: Math.floor(memoryMb) } : {}),
        ...(gpus > 0 ? { gpus } : {}),
        usable: !/down|offline|unknown|unresolvable|stale/.test(state),
      };
    });
    return { maxArraySize: Number.isInteger(maxArraySize) && maxArraySize > 0 ? maxArraySize : 10000, maxSubmitJobs: undefined, nodes: list, maxTimes };
  }

  async #json(program: string, args: readonly string[], key: string): Promise<Record<string, Record<string, unknown>>> {
    const r = await this.#run(program, args);
    if (r.exitCode !== 0) throw new SchedulerError([program, ...args], r.exitCode, r.stderr);
    try {
      return ((JSON.parse(r.stdout) as Record<string, unknown>)[key] ?? {}) as Record<string, Record<string, unknown>>;
    } catch {
      throw new SchedulerError([program, ...args], r.exitCode, `output that is not JSON (PBS older than 18 has no -F json): ${r.stdout.slice(0, 200)}`);
    }
  }
}

const schedulers = new Map<string, PbsScheduler>();

/** The one PbsScheduler per transport key, so that executors and the watcher count calls together. */
export function sharedPbsScheduler(transport: Transport): PbsScheduler {
  let s = schedulers.get(transport.key);
  if (!s) {
    s = new PbsScheduler(transport);
    schedulers.set(transport.key, s);
  }
  return s;
}

/** Lets go of the scheduler of a transport key (its watcher was let go). */
export function forgetPbsScheduler(key: string): void {
  schedulers.delete(key);
}

/** Whether a PBS server answers here: `qstat -B` runs and succeeds within `timeoutMs`. */
export async function pbsAvailable(transport: Transport = new LocalTransport(), timeoutMs = 15_000): Promise<boolean> {
  try {
    return (await transport.run("qstat", ["-B"], { timeoutMs })).exitCode === 0;
  } catch {
    return false;
  }
}
