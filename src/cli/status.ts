import { UsageError } from "../base/errors.js";
import { plural } from "../base/words.js";
import type { RefusedSubmission } from "../sdk/load-jobs.js";
import { LiveLines } from "../report/live.js";
import { styleOf } from "../report/progress.js";
import { exitCodeOfSummaries, progressLine, statusTable, tasksTable, usageTable, type SubmissionSummary, type TaskView } from "../report/summary.js";
import { summaryOf, summaryOfParts, viewsWithRunning } from "../report/views.js";
import { openFolder, type OpenFolder } from "./folder.js";
import { parse } from "./options.js";

/** The status report's JSON: one object per submission, and the tasks when asked. */
function statusJson(summaries: readonly SubmissionSummary[], views: readonly TaskView[] | undefined, exitCode: number, refused: readonly RefusedSubmission[]): string {
  const submissions = summaries.map(({ id, tasks, states, reruns, done, running, pending, failed, etaMs, usage }) => ({
    id,
    tasks,
    states,
    reruns,
    done,
    running,
    pending,
    failed,
    etaMs: etaMs ?? null,
    usage: usage ?? null,
  }));
  return `${JSON.stringify({ submissions, ...(views ? { tasks: views } : {}), ...(refused.length ? { refused } : {}), exitCode })}\n`;
}

/** Prints the summary (and the task list with --tasks) and returns the exit code. */
async function report(folder: OpenFolder, json: boolean, withTasks: boolean): Promise<number> {
  // Without --tasks, no view per task: a million tasks are counted, not listed.
  const views = withTasks ? await viewsWithRunning(folder.jobs) : undefined;
  // Counted from the futures either way: each task's usage against its own request (a rerun may ask for more).
  const summaries = folder.parts ? summaryOfParts(folder.parts) : summaryOf(folder.jobs);
  const refusals = await folder.refused();
  const running = exitCodeOfSummaries(summaries) === 3;
  // A refused submission's tasks never ran: a failure, once nothing runs any more. A refused rerun's tasks keep their earlier runs, which count.
  const exitCode = running ? 3 : refusals.some((r) => !r.rerun) ? 1 : exitCodeOfSummaries(summaries);
  const style = styleOf(process.stdout);
  if (json) process.stdout.write(statusJson(summaries, views, exitCode, refusals));
  else {
    const usage = usageTable(summaries, style);
    const refused = refusals
      .map((r) => `${r.submission}: sbatch refused ${r.rerun ? "this rerun" : "it"} (${plural(r.taskCount, "task")}, none ran): ${r.message.replace(/\s*\n\s*/g, " / ")}\n`)
      .join("");
    const table = summaries.length || !refused ? statusTable(summaries, style) : "";
    process.stdout.write(`${table}${usage ? `\n${usage}` : ""}${views ? `\n${tasksTable(views, style)}` : ""}${refused ? `${table ? "\n" : ""}${refused}` : ""}`);
  }
  return exitCode;
}

/** `slurmkit status <folder> [--tasks]`. */
export async function status(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("status", args, { tasks: { type: "boolean" } });
  if (positionals.length > 1) throw new UsageError(`slurmkit status takes one folder, got ${plural(positionals.length, "argument")}`);
  // Without --tasks, a packed task completed in its stream is counted there, with no future made for it.
  const folder = await openFolder(positionals[0], values, "status", values.tasks !== true);
  try {
    return await report(folder, values.json === true, values.tasks === true);
  } finally {
    folder.close();
  }
}

/**
 * `slurmkit watch <folder>`: one line per submission, redrawn in place on a
 * TTY (printed when it changes otherwise), until every task ended; then the
 * status summary.
 */
export async function watch(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("watch", args, { interval: { type: "string" } });
  if (positionals.length > 1) throw new UsageError(`slurmkit watch takes one folder, got ${plural(positionals.length, "argument")}`);
  const seconds = values.interval === undefined ? 1 : Number(values.interval);
  if (!(seconds >= 0.2 && seconds <= 3600)) throw new UsageError(`Expected --interval to be seconds between 0.2 and 3600, got '${String(values.interval)}'`);
  const folder = await openFolder(positionals[0], values, "watch");
  const json = values.json === true;
  const style = styleOf(process.stdout);
  const live = style.tty && !json ? new LiveLines(process.stdout) : undefined;
  const onInterrupt = () => {
    live?.stop();
    process.exit(130);
  };
  process.once("SIGINT", onInterrupt);
  let last = "";
  const draw = () => {
    const summaries = summaryOf(folder.jobs);
    const lines = summaries.map((s) => progressLine(s, style));
    if (live) return live.draw(lines);
    const text = json
      ? `${JSON.stringify({ submissions: summaries.map(({ id, done, tasks, running, pending, failed, etaMs }) => ({ id, done, tasks, running, pending, failed, etaMs: etaMs ?? null })) })}\n`
      : `${lines.join("\n")}\n`;
    if (text !== last) process.stdout.write(text);
    last = text;
  };
  try {
    const ended = Promise.allSettled(folder.jobs.map((j) => j.wait()));
    draw();
    const timer = setInterval(draw, seconds * 1000);
    await ended;
    clearInterval(timer);
    draw();
    live?.stop();
    if (!json) process.stdout.write("\n");
    return await report(folder, json, false);
  } finally {
    process.off("SIGINT", onInterrupt);
    live?.stop();
    folder.close();
  }
}
