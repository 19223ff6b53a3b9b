import { basename } from "node:path";
import { inChunks } from "../base/in-chunks.js";
import { isTerminal } from "../base/job-state.js";
import { runOf, type Job, type TaskRun } from "../core/job.js";
import type { UsageRecord } from "../protocol/records.js";
import { originOf, originSourceOf, rootIndex, type OriginSource } from "../engine/origin.js";
import { followedRecords } from "../engine/task-records.js";
import type { RunPart } from "../engine/run-part.js";
import { decodeState } from "../protocol/records.js";
import { unlessUnreachable } from "../transport/transport.js";
import { SummaryCounter, type SubmissionSummary, type TaskView } from "./summary.js";

/** The jobs as the reports show them; `index` is each one's place in `jobs`. Reads nothing. */
export function viewsOf(jobs: readonly Job<unknown>[]): TaskView[] {
  const view = viewer();
  return jobs.map((job, index) => view(job, index));
}

/** Makes one job's view at a time (what viewsOf makes for all): a report of a million tasks need not hold a million views. */
export function viewer(): (job: Job<unknown>, index: number) => TaskView {
  const submissionOf = submissionNames();
  return (job, index) => {
    const source = originSourceOf(job);
    const submission = submissionOf(source);
    const ran = runOf(job);
    const task = source ? rootIndex(source, job) : job.taskIndex;
    const rerun = source?.rerun !== undefined;
    if (!ran) return { index, submission, task, id: job.id, state: job.state, rerun };
    const view = { index, submission, task, id: job.id, state: job.state, rerun, host: ran.host, startedAt: ran.startedAt, endedAt: ran.endedAt };
    const usage = usageOf(job, ran);
    if (!usage) return view;
    const wall = (ran.endedAt - ran.startedAt) / 1000;
    const cpuSeconds = usage.cpuMs / 1000;
    return {
      ...view,
      cpuSeconds,
      ...(wall > 0 ? { cpuEfficiency: cpuSeconds / (wall * (source?.request?.cpus ?? 1)) } : {}),
      ...(usage.memKb !== undefined ? { memPeakMb: usage.memKb / 1024 } : {}),
      ...(usage.slot !== undefined ? { slot: usage.slot } : {}),
    };
  };
}

/** What an ended job used: in its result file, or (packed) beside its result in its worker's stream, as last read. */
export function usageOf(job: Job<unknown>, ran: TaskRun | undefined = runOf(job)): UsageRecord | undefined {
  if (!ran) return undefined;
  if (ran.usage) return ran.usage;
  const source = originSourceOf(job);
  return source ? followedRecords(source.transport, source.folder)?.usage(job.taskIndex) : undefined;
}

/** The submission a job belongs to, as the reports name it: its original folder's name, once per submission. */
function submissionNames(): (source: OriginSource | undefined) => string {
  const names = new Map<OriginSource, string>();
  return (source) => {
    if (!source) return "jobs";
    let name = names.get(source);
    if (name === undefined) {
      name = basename(source.rerun?.dir ?? source.folder.dir);
      names.set(source, name);
    }
    return name;
  };
}

/** summarize(viewsOf(jobs)), without a view per job: what status and watch print for a million tasks. */
export function summaryOf(jobs: readonly Job<unknown>[]): SubmissionSummary[] {
  const submissionOf = submissionNames();
  const counter = new SummaryCounter();
  for (const job of jobs) {
    const source = originSourceOf(job);
    const ran = runOf(job);
    const usage = usageOf(job, ran);
    counter.add(submissionOf(source), job.state, source?.rerun !== undefined, ran?.startedAt, ran?.endedAt, usage?.cpuMs, usage?.memKb, source?.request);
  }
  return counter.summaries();
}

/**
 * summaryOf for loadRun's parts: each future as summaryOf counts it, and
 * each task completed in its stream (no future) as COMPLETED, with its
 * result's times, as its future would have settled.
 */
export function summaryOfParts(parts: readonly RunPart[]): SubmissionSummary[] {
  const counter = new SummaryCounter();
  for (const { submission, jobs, streamed, request } of parts) {
    for (const job of jobs) {
      const ran = runOf(job);
      const usage = usageOf(job, ran);
      counter.add(submission, job.state, false, ran?.startedAt, ran?.endedAt, usage?.cpuMs, usage?.memKb, request);
    }
    if (!streamed) continue;
    const { settled, records } = streamed;
    let count = 0;
    let durationSum = 0;
    let usage: ReturnType<typeof counter.usage> | undefined;
    for (let i = 0; i < settled.length; i++) {
      if (settled[i] === 0) continue;
      count++;
      const wall = records.resultEndedAt(i) - records.resultStartedAt(i);
      durationSum += wall;
      if (!records.hasUsage(i)) continue;
      usage ??= counter.usage(submission, request);
      usage.add(wall, records.usageCpuMs(i), records.usageMemKb(i));
    }
    counter.addCompleted(submission, count, durationSum);
  }
  return counter.summaries();
}

/**
 * The views, with where and since when each running task runs, from its
 * state record (its state file, or its worker's stream); and where a task that ended without a result ran (a node that
 * failed under it, for one).
 */
export async function viewsWithRunning(jobs: readonly Job<unknown>[]): Promise<TaskView[]> {
  const views = viewsOf(jobs);
  return inChunks(views, READS_AT_ONCE, async (v, i) => {
    const job = jobs[i]!;
    const origin = originOf(job);
    const transport = origin?.transport;
    const endedUnseen = v.host === undefined && isTerminal(v.state);
    if ((v.state !== "RUNNING" && !endedUnseen) || !transport) return v;
    // A packed task: its worker's stream, as the watcher last read it.
    const streamed = followedRecords(transport, origin.folder)?.state(job.taskIndex);
    if (streamed) return endedUnseen ? { ...v, host: streamed.host } : streamed.state === "RUNNING" ? { ...v, host: streamed.host, startedAt: streamed.at } : v;
    const bytes = await transport.readFile(job.paths.state).catch(unlessUnreachable(undefined));
    if (!bytes) return v;
    if (endedUnseen) {
      // Only a hint: a state file a crash left damaged does not stop the report.
      const host = (() => {
        try {
          return decodeState(bytes, job.paths.state).host;
        } catch {
          return undefined;
        }
      })();
      return host === undefined ? v : { ...v, host };
    }
    const s = decodeState(bytes, job.paths.state);
    return s.state === "RUNNING" ? { ...v, host: s.host, startedAt: s.at } : v;
  });
}

/** State files read at once: a large submission over SSH must not queue thousands of reads on one connection. */
const READS_AT_ONCE = 64;
