import { JOB_STATES, type JobState } from "../base/job-state.js";
import type { TaskRequest } from "../protocol/records.js";
import { UsageCounter, type UsageTotals } from "./usage-totals.js";

/** One task as the reports show it: its latest run. */
export interface TaskView {
  /** Its place in the listing (loadJobs order). */
  readonly index: number;
  /** The submission it belongs to (the original one, for a rerun task). */
  readonly submission: string;
  /** Its index in that submission. */
  readonly task: number;
  readonly id: string;
  readonly state: JobState;
  /** Its latest run is a rerun. */
  readonly rerun: boolean;
  readonly host?: string;
  /** ms since epoch. */
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** What it used, when it ended and was measured: CPU seconds, CPU efficiency (of the CPUs it asked for), peak MiB, and its slot when packed. */
  readonly cpuSeconds?: number;
  readonly cpuEfficiency?: number;
  readonly memPeakMb?: number;
  readonly slot?: number;
}

/** One submission's counts. */
export interface SubmissionSummary {
  readonly id: string;
  readonly tasks: number;
  /** Tasks per state (only states with at least one task). */
  readonly states: Partial<Record<JobState, number>>;
  /** Tasks whose latest run is a rerun. */
  readonly reruns: number;
  readonly done: number;
  readonly running: number;
  readonly pending: number;
  readonly failed: number;
  /** Estimated ms until every task ended, from completed task durations; undefined without one. */
  readonly etaMs: number | undefined;
  /** What its measured tasks used; undefined when none was measured. */
  readonly usage: UsageTotals | undefined;
}

/** The exit code of `status` and `watch`, from the submissions' counts: 3 while any task is pending or running, else 1 if any failed, else 0. */
export function exitCodeOfSummaries(summaries: readonly SubmissionSummary[]): 0 | 1 | 3 {
  if (summaries.some((s) => s.running + s.pending > 0)) return 3;
  return summaries.some((s) => s.failed > 0) ? 1 : 0;
}

/** One submission's counts so far. */
interface Counts {
  tasks: number;
  reruns: number;
  readonly states: Partial<Record<JobState, number>>;
  durations: number;
  durationSum: number;
  usage: UsageCounter | undefined;
}

/** Counts tasks per submission as they are added: summarize, without a view object per task. */
export class SummaryCounter {
  readonly #groups = new Map<string, Counts>();

  #group(submission: string): Counts {
    let g = this.#groups.get(submission);
    if (!g) {
      g = { tasks: 0, reruns: 0, states: {}, durations: 0, durationSum: 0, usage: undefined };
      this.#groups.set(submission, g);
    }
    return g;
  }

  /** Adds one task; `cpuMs` and `memKb` (NaN when unknown) are what it used, when it was measured. */
  add(submission: string, state: JobState, rerun: boolean, startedAt: number | undefined, endedAt: number | undefined, cpuMs = Number.NaN, memKb = Number.NaN, request?: TaskRequest): void {
    const g = this.#group(submission);
    if (!Number.isNaN(cpuMs) && startedAt !== undefined && endedAt !== undefined) this.usage(submission, request).add(endedAt - startedAt, cpuMs, memKb, request);
    g.tasks++;
    if (rerun) g.reruns++;
    g.states[state] = (g.states[state] ?? 0) + 1;
    if (state === "COMPLETED" && startedAt !== undefined && endedAt !== undefined) {
      g.durations++;
      g.durationSum += endedAt - startedAt;
    }
  }

  /** Adds `count` tasks that completed, whose durations (end minus start) add up to `durationSum`. */
  addCompleted(submission: string, count: number, durationSum: number): void {
    if (count === 0) return;
    const g = this.#group(submission);
    g.tasks += count;
    g.states.COMPLETED = (g.states.COMPLETED ?? 0) + count;
    g.durations += count;
    g.durationSum += durationSum;
  }

  /** The submission's usage counter, made with what one of its tasks asked for: tasks counted elsewhere add their figures to it. */
  usage(submission: string, request: TaskRequest | undefined): UsageCounter {
    const g = this.#group(submission);
    g.usage ??= new UsageCounter(request);
    return g.usage;
  }

  /**
   * Counts per submission, in order of first appearance. The ETA is the mean
   * duration of the completed tasks times the rounds the unfinished tasks still
   * need, with as many at once as run now (at least one).
   */
  summaries(): SubmissionSummary[] {
    return [...this.#groups].map(([id, g]) => {
      const running = g.states.RUNNING ?? 0;
      const pending = g.states.PENDING ?? 0;
      const done = g.tasks - running - pending;
      const mean = g.durations ? g.durationSum / g.durations : undefined;
      const left = running + pending;
      const etaMs = left === 0 ? 0 : mean === undefined ? undefined : Math.ceil(left / Math.max(running, 1)) * mean;
      const usage = g.usage?.measured ? g.usage.totals() : undefined;
      return { id, tasks: g.tasks, states: { ...g.states }, reruns: g.reruns, done, running, pending, failed: done - (g.states.COMPLETED ?? 0), etaMs, usage };
    });
  }
}

/** Counts per submission (SummaryCounter.summaries) of these tasks; `requests`: what one task of each submission asked for. */
export function summarize(tasks: readonly TaskView[], requests?: ReadonlyMap<string, TaskRequest>): SubmissionSummary[] {
  const counter = new SummaryCounter();
  for (const t of tasks) {
    const cpuMs = t.cpuSeconds === undefined ? Number.NaN : t.cpuSeconds * 1000;
    const memKb = t.memPeakMb === undefined ? Number.NaN : t.memPeakMb * 1024;
    counter.add(t.submission, t.state, t.rerun, t.startedAt, t.endedAt, cpuMs, memKb, requests?.get(t.submission));
  }
  return counter.summaries();
}

/** Memory as people read it: 85 MiB, 12.5 GiB. */
export function formatMb(mb: number): string {
  return mb >= 10 * 1024 ? `${(mb / 1024).toFixed(1)} GiB` : `${Math.round(mb)} MiB`;
}

/** A share as a percentage: 73%. */
const percent = (x: number | undefined) => (x === undefined ? "" : `${Math.round(x * 100)}%`);

/**
 * The usage table under `status`: per submission, the tasks measured, CPU
 * time used against the CPU time they held (wall × CPUs asked for), and
 * the largest peak memory against the `mem` one task asked for, as seff
 * counts efficiency. Empty when no task was measured.
 */
export function usageTable(summaries: readonly SubmissionSummary[], style: Style): string {
  const measured = summaries.filter((s) => s.usage);
  if (measured.length === 0) return "";
  const gpus = measured.some((s) => s.usage!.heldGpuSeconds > 0);
  const head = ["SUBMISSION", "MEASURED", "CPU USED", "CPU HELD", "CPU EFF", "MEM PEAK", "MEM MEAN", "MEM ASKED", "MEM EFF", "LONGEST", ...(gpus ? ["GPU HELD"] : [])];
  const rows = measured.map(({ id, usage: u }) => [
    id,
    String(u!.measured),
    formatElapsed(u!.cpuSeconds * 1000),
    formatElapsed(u!.heldCpuSeconds * 1000),
    percent(u!.cpuEfficiency),
    u!.memPeakMb === undefined ? "" : formatMb(u!.memPeakMb),
    u!.memMeanPeakMb === undefined ? "" : formatMb(u!.memMeanPeakMb),
    u!.requested?.memMb === undefined ? "" : formatMb(u!.requested.memMb),
    percent(u!.memEfficiency),
    formatElapsed(u!.maxWallSeconds * 1000),
    ...(gpus ? [formatElapsed(u!.heldGpuSeconds * 1000)] : []),
  ]);
  const low = (x: number | undefined, under: number) => (x !== undefined && x < under ? "33" : undefined);
  const colors = [[], ...measured.map(({ usage: u }) => [undefined, undefined, undefined, undefined, low(u!.cpuEfficiency, 0.5), undefined, undefined, undefined, low(u!.memEfficiency, 0.25)])];
  return table([head, ...rows], style, colors);
}

/** A duration as people read it: 45s, 3m 05s, 2h 10m. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Whether to draw for a terminal (aligned, coloured) or plainly (tab-separated, no escapes). */
export interface Style {
  readonly tty: boolean;
  /** Colour is used only on a TTY, and never with NO_COLOR set. */
  readonly color: boolean;
}

const COLORS: Partial<Record<JobState, string>> = { COMPLETED: "32", RUNNING: "36", PENDING: "33" };
const paint = (style: Style, code: string | undefined, text: string) => (style.color && code ? `\x1b[${code}m${text}\x1b[0m` : text);
const stateColor = (s: JobState) => COLORS[s] ?? (s === "PENDING" || s === "RUNNING" ? undefined : "31");

/** One submission's progress line: done/total, running, pending, failed and the ETA. */
export function progressLine(s: SubmissionSummary, style: Style): string {
  const eta = s.etaMs === 0 ? "" : `  ETA ${s.etaMs === undefined ? "?" : formatElapsed(s.etaMs)}`;
  const failed = paint(style, s.failed ? "31" : undefined, `${s.failed} failed`);
  return `${s.id}  ${s.done}/${s.tasks} done  ${s.running} running  ${s.pending} pending  ${failed}${eta}`;
}

/** Rows as a table: columns aligned and padded on a TTY, tab-separated otherwise. */
export function table(rows: readonly (readonly string[])[], style: Style, colors: readonly (readonly (string | undefined)[])[] = []): string {
  if (!style.tty) return rows.map((r) => `${r.join("\t")}\n`).join("");
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map(
      (r, i) =>
        `${r
          .map((cell, c) => paint(style, colors[i]?.[c], c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
          .join("  ")
          .trimEnd()}\n`,
    )
    .join("");
}

/** The `status` table: one row per submission with its counts per state, and a total row when there are several. */
export function statusTable(summaries: readonly SubmissionSummary[], style: Style): string {
  const states = JOB_STATES.filter((s) => summaries.some((x) => x.states[s]));
  const anyReruns = summaries.some((s) => s.reruns > 0);
  const head = ["SUBMISSION", "TASKS", ...states, ...(anyReruns ? ["RERUN"] : [])];
  const row = (s: Pick<SubmissionSummary, "id" | "tasks" | "states" | "reruns">) => [s.id, String(s.tasks), ...states.map((st) => String(s.states[st] ?? 0)), ...(anyReruns ? [String(s.reruns)] : [])];
  const rows = summaries.map(row);
  const colors = [[], ...summaries.map((s) => [undefined, undefined, ...states.map((st) => (s.states[st] ? stateColor(st) : undefined))])];
  if (summaries.length > 1) {
    const total = { id: "total", tasks: 0, states: {} as Partial<Record<JobState, number>>, reruns: 0 };
    for (const s of summaries) {
      total.tasks += s.tasks;
      total.reruns += s.reruns;
      for (const st of states) total.states[st] = (total.states[st] ?? 0) + (s.states[st] ?? 0);
    }
    rows.push(row(total));
  }
  return table([head, ...rows], style, colors);
}

/** The `status --tasks` table: one row per task. */
export function tasksTable(tasks: readonly TaskView[], style: Style, now = Date.now()): string {
  const measured = tasks.some((t) => t.cpuSeconds !== undefined);
  const head = ["INDEX", "SUBMISSION", "TASK", "ID", "STATE", "HOST", "ELAPSED", ...(measured ? ["CPU", "CPU EFF", "MEM PEAK"] : [])];
  const rows = tasks.map((t) => {
    const elapsed = t.startedAt === undefined ? "" : formatElapsed((t.endedAt ?? now) - t.startedAt);
    const usage = measured ? [t.cpuSeconds === undefined ? "" : `${t.cpuSeconds.toFixed(2)}s`, percent(t.cpuEfficiency), t.memPeakMb === undefined ? "" : formatMb(t.memPeakMb)] : [];
    return [String(t.index), t.submission, String(t.task), t.id, t.rerun ? `${t.state} (rerun)` : t.state, t.host ?? "", elapsed, ...usage];
  });
  const colors = [[], ...tasks.map((t) => [undefined, undefined, undefined, undefined, stateColor(t.state)])];
  return table([head, ...rows], style, colors);
}
