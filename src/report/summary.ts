import { JOB_STATES, type JobState } from "../base/job-state.js";

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
}

/** The exit code of `status` and `watch`: 3 while any task is pending or running, else 1 if any failed, else 0. */
export function exitCodeOf(tasks: readonly TaskView[]): 0 | 1 | 3 {
  if (tasks.some((t) => t.state === "PENDING" || t.state === "RUNNING")) return 3;
  return tasks.some((t) => t.state !== "COMPLETED") ? 1 : 0;
}

/**
 * Counts per submission, in order of first appearance. The ETA is the mean
 * duration of the completed tasks times the rounds the unfinished tasks still
 * need, with as many at once as run now (at least one).
 */
export function summarize(tasks: readonly TaskView[]): SubmissionSummary[] {
  const groups = new Map<string, TaskView[]>();
  for (const t of tasks) {
    const group = groups.get(t.submission);
    if (group) group.push(t);
    else groups.set(t.submission, [t]);
  }
  return [...groups].map(([id, group]) => {
    const states: Partial<Record<JobState, number>> = {};
    for (const t of group) states[t.state] = (states[t.state] ?? 0) + 1;
    const running = states.RUNNING ?? 0;
    const pending = states.PENDING ?? 0;
    const done = group.length - running - pending;
    const durations = group.flatMap((t) => (t.state === "COMPLETED" && t.startedAt !== undefined && t.endedAt !== undefined ? [t.endedAt - t.startedAt] : []));
    const mean = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : undefined;
    const left = running + pending;
    const etaMs = left === 0 ? 0 : mean === undefined ? undefined : Math.ceil(left / Math.max(running, 1)) * mean;
    return { id, tasks: group.length, states, reruns: group.filter((t) => t.rerun).length, done, running, pending, failed: done - (states.COMPLETED ?? 0), etaMs };
  });
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
  const head = ["INDEX", "SUBMISSION", "TASK", "ID", "STATE", "HOST", "ELAPSED"];
  const rows = tasks.map((t) => {
    const elapsed = t.startedAt === undefined ? "" : formatElapsed((t.endedAt ?? now) - t.startedAt);
    return [String(t.index), t.submission, String(t.task), t.id, t.rerun ? `${t.state} (rerun)` : t.state, t.host ?? "", elapsed];
  });
  const colors = [[], ...tasks.map((t) => [undefined, undefined, undefined, undefined, stateColor(t.state)])];
  return table([head, ...rows], style, colors);
}
