// What `slurmkit report` draws, gathered from a run folder's futures and (for
// packed tasks that completed) straight from their workers' streams: one row
// per task in columns of numbers, so that 100,000 tasks stay a few MB.
import { JobEndedWithoutResultError, TaskFailedError } from "../base/errors.js";
import type { JobState } from "../base/job-state.js";
import { outcomeOf, readJobLog, runOf, type Job } from "../core/job.js";
import { tail } from "../core/outcome.js";
import { originSourceOf } from "../engine/origin.js";
import type { RunPart } from "../engine/run-part.js";
import { decodeAttempt, type TaskRequest } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";
import { figuresBySubmission } from "./figures.js";
import { suggest, type Suggestion } from "./right-size.js";
import { usageOf, viewer } from "./views.js";

/** Failed tasks whose stderr's last lines the report shows; those beyond are listed without. */
export const FAILURES_WITH_LOGS = 200;
/** Lines of stderr shown per failed task. */
export const LOG_TAIL_LINES = 12;

/** One failed task, as the report's table lists it. */
export interface FailureRow {
  readonly row: number;
  readonly submission: string;
  readonly task: number;
  readonly id: string;
  readonly state: JobState;
  readonly node: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly message: string;
  readonly tail: string | null;
}

/** Everything the page draws: tasks by column (times in ms from `t0`; -1 where unknown), lanes, failures, totals and suggestions. */
export interface ReportData {
  readonly title: string;
  readonly generatedAt: string;
  /** ms since epoch of the first start; every time below counts from it. */
  readonly t0: number;
  readonly states: JobState[];
  readonly submissions: ReadonlyArray<{ readonly id: string; readonly tasks: number; readonly requested: TaskRequest | null; readonly suggestion: Suggestion }>;
  /** Lane labels: a node, and a worker's slot or a track of the node's one-per-element jobs. */
  readonly lanes: string[];
  readonly nodes: string[];
  /**
   * One entry per run of a task: submission, task index, state, lane, node,
   * start, end, CPU ms, peak KiB, and `attempt`: 0 for a task's last run (one
   * per task that ran), n > 0 for its attempt n - 1 that ended in a requeue.
   */
  readonly tasks: {
    readonly attempt: number[];
    readonly sub: number[];
    readonly task: number[];
    readonly state: number[];
    readonly lane: number[];
    readonly node: number[];
    readonly start: number[];
    readonly end: number[];
    readonly cpu: number[];
    readonly mem: number[];
  };
  /** Tasks with no bar, by what they are: "PENDING (not ended)", "CANCELLED (never ran)", ... */
  readonly notRun: Record<string, number>;
  readonly failures: FailureRow[];
}

interface Row {
  /** 0: the task's last run; n: its attempt n - 1, which was requeued. */
  attempt: number;
  sub: number;
  task: number;
  state: JobState;
  node: string;
  /** The worker's slot (packed), or undefined: the node's tracks place it. */
  worker: string | undefined;
  start: number;
  end: number;
  cpu: number;
  mem: number;
}

/** Places bars on lanes: a packed task on its worker's slot; other tasks on the first track of their node that is free by their start. */
function laneOf(rows: Row[]): { lanes: string[]; lane: Int32Array } {
  const order = rows.map((_, i) => i).sort((a, b) => rows[a]!.start - rows[b]!.start);
  const keys = new Map<string, number>();
  const tracks = new Map<string, number[]>();
  const laneKey = new Array<string>(rows.length);
  for (const i of order) {
    const r = rows[i]!;
    if (r.worker !== undefined) {
      laneKey[i] = `${r.node} · ${r.worker}`;
      continue;
    }
    const free = tracks.get(r.node) ?? [];
    tracks.set(r.node, free);
    let t = free.findIndex((end) => end <= r.start);
    if (t < 0) t = free.push(0) - 1;
    free[t] = r.end;
    laneKey[i] = `${r.node} · track ${t}`;
  }
  const labels = [...new Set(laneKey)].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  for (const [k, l] of labels.entries()) keys.set(l, k);
  return { lanes: labels, lane: Int32Array.from(laneKey, (k) => keys.get(k)!) };
}

/** What a failed task's error says: its exit code or signal, and its message. */
function failureOf(job: Job<unknown>): { exitCode: number | null; signal: string | null; message: string; tail: string | null } {
  const outcome = outcomeOf(job);
  const error = outcome && "error" in outcome ? outcome.error : undefined;
  if (error instanceof TaskFailedError) return { exitCode: error.exitCode ?? null, signal: error.signal ?? null, message: error.remote.message, tail: null };
  if (error instanceof JobEndedWithoutResultError) return { exitCode: null, signal: null, message: error.shortMessage, tail: error.logTail || null };
  return { exitCode: null, signal: null, message: error?.message ?? job.state, tail: null };
}

/**
 * Gathers a run's report: every task that ran as a bar, those that failed
 * with the last lines of their stderr (the first FAILURES_WITH_LOGS), and
 * per submission what to ask for next time.
 */
export async function reportData(jobs: readonly Job<unknown>[], parts: readonly RunPart[] | undefined, transport: Transport | undefined, title: string): Promise<ReportData> {
  const states: JobState[] = [];
  const stateIndex = (s: JobState) => {
    const k = states.indexOf(s);
    return k >= 0 ? k : states.push(s) - 1;
  };
  const subs = figuresBySubmission(jobs, parts);
  const subIndex = new Map(subs.map((s, k) => [s.id, k]));
  const rows: Row[] = [];
  const notRun: Record<string, number> = {};
  const failed: Array<{ job: Job<unknown>; row: number; submission: string; task: number }> = [];
  const view = viewer();
  const addJob = (job: Job<unknown>, i: number) => {
    const v = view(job, i);
    const ran = runOf(job);
    if (!ran || ran.host === "" || !job.done()) {
      const key = `${job.state} (${job.done() ? "never ran" : "not ended"})`;
      notRun[key] = (notRun[key] ?? 0) + 1;
      return;
    }
    const usage = usageOf(job, ran);
    const packed = originSourceOf(job) !== undefined && usage?.slot !== undefined;
    rows.push({
      attempt: 0,
      sub: subIndex.get(v.submission) ?? 0,
      task: v.task,
      state: job.state,
      node: ran.host,
      worker: packed ? `${ran.jobId ?? job.id} slot ${usage!.slot}` : undefined,
      start: ran.startedAt,
      end: ran.endedAt,
      cpu: usage ? usage.cpuMs : -1,
      mem: usage?.memKb ?? -1,
    });
    if (job.state !== "COMPLETED") failed.push({ job, row: rows.length - 1, submission: v.submission, task: v.task });
  };
  jobs.forEach(addJob);
  for (const part of parts ?? []) {
    if (!part.streamed) continue;
    const { settled, records } = part.streamed;
    const sub = subIndex.get(part.submission) ?? 0;
    for (let i = 0; i < settled.length; i++) {
      if (settled[i] === 0) continue;
      const slot = records.usageSlot(i);
      const cpu = records.usageCpuMs(i);
      const mem = records.usageMemKb(i);
      rows.push({
        attempt: 0,
        sub,
        task: i,
        state: "COMPLETED",
        node: records.resultHost(i),
        worker: `${records.resultJobId(i)} slot ${Math.max(0, slot)}`,
        start: records.resultStartedAt(i),
        end: records.resultEndedAt(i),
        cpu: Number.isNaN(cpu) ? -1 : cpu,
        mem: Number.isNaN(mem) ? -1 : mem,
      });
    }
  }
  // Attempts that ended in a requeue: one listing of each submission's attempts folder.
  const folders = new Map<string, { folder: RunFolder; transport: Transport; sub: number; root: (index: number) => number }>();
  for (const job of jobs) {
    const source = originSourceOf(job);
    if (!source || folders.has(source.folder.dir)) continue;
    const tasks = source.rerun?.tasks;
    folders.set(source.folder.dir, { folder: source.folder, transport: source.transport, sub: subIndex.get(view(job, 0).submission) ?? 0, root: (i) => tasks?.[i] ?? i });
  }
  for (const part of parts ?? []) {
    const records = part.streamed?.records;
    if (records && transport && !folders.has(records.folder.dir)) folders.set(records.folder.dir, { folder: records.folder, transport, sub: subIndex.get(part.submission) ?? 0, root: (i) => i });
  }
  for (const { folder, transport: files, sub, root } of folders.values()) {
    const names = await files.list(folder.attemptsDir).catch(unlessUnreachable([] as string[]));
    for (const name of names) {
      const parsed = RunFolder.parseAttemptName(name);
      if (!parsed) continue;
      const path = `${folder.attemptsDir}/${name}`;
      const a = await files
        .readFile(path)
        .then((bytes) => decodeAttempt(bytes, path))
        .catch(() => undefined);
      if (!a) continue;
      rows.push({ attempt: a.attempt + 1, sub, task: root(parsed.index), state: a.ended, node: a.host, worker: undefined, start: a.startedAt, end: a.endedAt, cpu: -1, mem: -1 });
    }
  }
  const counts = new Array<number>(subs.length).fill(0);
  for (const r of rows) if (r.attempt === 0) counts[r.sub]!++;
  const t0 = rows.reduce((m, r) => Math.min(m, r.start), Number.POSITIVE_INFINITY);
  const { lanes, lane } = laneOf(rows);
  const nodes = [...new Set(rows.map((r) => r.node))].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const nodeIndex = new Map(nodes.map((n, k) => [n, k]));
  const failures: FailureRow[] = [];
  for (const [k, f] of failed.entries()) {
    const { exitCode, signal, message, tail: known } = failureOf(f.job);
    let logTail = known;
    if (logTail === null && k < FAILURES_WITH_LOGS) logTail = tail(String(await readJobLog(f.job, "err").catch(() => "")), LOG_TAIL_LINES) || null;
    failures.push({ row: f.row, submission: f.submission, task: f.task, id: f.job.id, state: f.job.state, node: rows[f.row]!.node, exitCode, signal, message, tail: logTail });
  }
  return {
    title,
    generatedAt: new Date().toISOString(),
    t0: Number.isFinite(t0) ? t0 : Date.now(),
    states,
    submissions: subs.map((s, k) => ({ id: s.id, tasks: counts[k]!, requested: s.requested ?? null, suggestion: suggest(s.figures, s.requested) })),
    lanes,
    nodes,
    tasks: {
      attempt: rows.map((r) => r.attempt),
      sub: rows.map((r) => r.sub),
      task: rows.map((r) => r.task),
      state: rows.map((r) => stateIndex(r.state)),
      lane: Array.from(lane),
      node: rows.map((r) => nodeIndex.get(r.node)!),
      start: rows.map((r) => r.start - t0),
      end: rows.map((r) => r.end - t0),
      cpu: rows.map((r) => r.cpu),
      mem: rows.map((r) => r.mem),
    },
    notRun,
    failures,
  };
}
