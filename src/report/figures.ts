import { runOf, type Job } from "../core/job.js";
import { originSourceOf } from "../engine/origin.js";
import type { RunPart } from "../engine/run-part.js";
import type { TaskRequest } from "../protocol/records.js";
import type { TaskFigures } from "./right-size.js";
import { largerRequest } from "./usage-totals.js";
import { usageOf, viewer } from "./views.js";

/** One submission's ended tasks' figures, and what one of its tasks asked for (the most, over its reruns). */
export interface SubmissionFigures {
  readonly id: string;
  readonly requested: TaskRequest | undefined;
  readonly figures: TaskFigures[];
}

/** What a run folder's ended tasks used, per submission (as the reports name them), in order of first appearance. */
export function figuresBySubmission(jobs: readonly Job<unknown>[], parts?: readonly RunPart[]): SubmissionFigures[] {
  const groups = new Map<string, { requested: TaskRequest | undefined; figures: TaskFigures[] }>();
  const group = (id: string, request: TaskRequest | undefined) => {
    let g = groups.get(id);
    if (!g) {
      g = { requested: request, figures: [] };
      groups.set(id, g);
    } else g.requested = largerRequest(g.requested, request);
    return g;
  };
  const addJob = (job: Job<unknown>, id: string) => {
    const ran = runOf(job);
    const request = originSourceOf(job)?.request;
    const g = group(id, request);
    if (!job.done() || !ran || ran.host === "") return;
    const usage = usageOf(job, ran);
    g.figures.push({
      state: job.state,
      wallSeconds: (ran.endedAt - ran.startedAt) / 1000,
      cpuSeconds: usage ? usage.cpuMs / 1000 : undefined,
      memPeakMb: usage?.memKb !== undefined ? usage.memKb / 1024 : undefined,
      gpuUtilPercent: usage?.gpu?.utilPct,
    });
  };
  if (parts) {
    for (const { submission, jobs: partJobs, streamed, request } of parts) {
      const g = group(submission, request);
      for (const job of partJobs) addJob(job, submission);
      if (!streamed) continue;
      const { settled, records } = streamed;
      for (let i = 0; i < settled.length; i++) {
        if (settled[i] === 0) continue;
        const cpuMs = records.usageCpuMs(i);
        const memKb = records.usageMemKb(i);
        g.figures.push({
          state: "COMPLETED",
          wallSeconds: (records.resultEndedAt(i) - records.resultStartedAt(i)) / 1000,
          cpuSeconds: Number.isNaN(cpuMs) ? undefined : cpuMs / 1000,
          memPeakMb: Number.isNaN(memKb) ? undefined : memKb / 1024,
          gpuUtilPercent: records.usageHasGpu(i) ? records.usage(i)?.gpu?.utilPct : undefined,
        });
      }
    }
  } else {
    const view = viewer();
    for (const [i, job] of jobs.entries()) addJob(job, view(job, i).submission);
  }
  return [...groups].map(([id, g]) => ({ id, requested: g.requested, figures: g.figures }));
}
