import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { resolve } from "node:path";
import { ParameterError } from "../base/errors.js";
import { Job } from "../core/job.js";
import { writeFileAtomic } from "../protocol/atomic.js";
import { renderReport } from "./html-report.js";
import { reportData } from "./report-data.js";

/** Options of report(). */
export interface ReportOptions {
  /** The page's title. @default "slurmkit run" */
  readonly title?: string;
}

/** What report() wrote. */
export interface ReportWritten {
  /** The file, absolute. */
  readonly path: string;
  readonly bytes: number;
  /** Tasks drawn (each that ran, its last run), and earlier attempts. */
  readonly tasks: number;
  readonly attempts: number;
  readonly failures: number;
}

/**
 * Writes one self-contained HTML report of these jobs to `path` (atomically):
 * a timeline with a lane per node and worker slot, each task a bar coloured by
 * how it ended (requeued attempts too); distributions of run time, CPU
 * efficiency and peak memory with the limits asked for; the failed tasks with
 * the last lines of their stderr; totals, and what to ask for next time.
 * Everything is inlined: it opens offline. Reads the run folder for usage,
 * attempts and logs; jobs that have not ended are counted, not drawn.
 *
 * @example
 * await Promise.allSettled(jobs.map((j) => j.wait()));
 * await report(jobs, "sweep-report.html");
 */
export async function report(jobs: readonly Job<unknown>[], path: string, options: ReportOptions = {}): Promise<ReportWritten> {
  if (!Array.isArray(jobs) || jobs.some((j) => !(j instanceof Job))) throw new ParameterError("report", [`Expected an array of job futures, got \`${String(jobs)}\``]);
  if (typeof path !== "string" || path === "") throw new ParameterError("report", [`Expected \`path\` to be the HTML file to write, got \`${String(path)}\``]);
  checkOptions("report options", options, { title: accepts.string } satisfies OptionShape<ReportOptions>);
  return writeReport(await reportData(jobs, undefined, undefined, options.title ?? "slurmkit run"), path);
}

/** Renders and writes a report's data (the command line gathers it from a folder's streams too). */
export async function writeReport(data: Awaited<ReturnType<typeof reportData>>, path: string): Promise<ReportWritten> {
  const html = renderReport(data);
  const absolute = resolve(path);
  await writeFileAtomic(absolute, html);
  const attempts = data.tasks.attempt.filter((a) => a > 0).length;
  return { path: absolute, bytes: Buffer.byteLength(html), tasks: data.tasks.attempt.length - attempts, attempts, failures: data.failures.length };
}
