import { AmbiguousSubmissionError } from "../base/errors.js";
import { isUnreachable } from "../transport/transport.js";
import type { BatchScheduler } from "./batch.js";

/** How often, and how far apart, to look for a job by its tag after sbatch's answer was lost. */
const LOST_ANSWER_CHECKS = 3;
const LOST_ANSWER_WAIT_MS = 2000;

/** One sbatch call: the script, its extra options, and the comment its job carries. */
export interface SbatchCall {
  readonly path: string;
  readonly tag: string;
  readonly args?: readonly string[];
}

/**
 * sbatch once. If its answer is lost (the connection dropped while it ran),
 * the job it may have made is looked for by its tag among the jobs `isNew`
 * accepts (a tag shared by earlier jobs leaves those out); if it is not
 * found, nothing is submitted again (sbatch may still be running on the far
 * side): an AmbiguousSubmissionError says so.
 */
export async function submitOnce(scheduler: Pick<BatchScheduler, "submit" | "tagged">, call: SbatchCall, isNew: (jobId: string) => boolean = () => true): Promise<string> {
  try {
    return await scheduler.submit(call.path, call.args, call.tag);
  } catch (error) {
    if (!isUnreachable((error as Error).cause ?? error)) throw error;
    for (let check = 0; check < LOST_ANSWER_CHECKS; check++) {
      if (check > 0) await new Promise((r) => setTimeout(r, LOST_ANSWER_WAIT_MS));
      const ids = await lookUp(scheduler, call.tag, isNew, error);
      if (ids.length === 1) return ids[0]!;
    }
    throw new AmbiguousSubmissionError(call.tag, "no job carries it yet", error);
  }
}

/** The jobs that carry `tag` and that `isNew` accepts; more than one is an AmbiguousSubmissionError. */
export async function lookUp(scheduler: Pick<BatchScheduler, "tagged">, tag: string, isNew: (jobId: string) => boolean, cause?: unknown): Promise<string[]> {
  const ids = (
    await scheduler.tagged(tag).catch((e: unknown) => {
      throw new AmbiguousSubmissionError(tag, `looking for it failed too: ${(e as Error).message.split("\n")[0]}`, cause ?? e);
    })
  ).filter(isNew);
  if (ids.length > 1) throw new AmbiguousSubmissionError(tag, `several jobs carry it (${ids.join(", ")}): cancel all but one`, cause);
  return ids;
}
