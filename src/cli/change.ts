import { UsageError } from "../base/errors.js";
import { basename } from "node:path";
import { parseSlurmFlags } from "../sdk/flags.js";
import { END_STATES, type JobState } from "../base/job-state.js";
import type { Job } from "../core/job.js";
import { originOf } from "../engine/origin.js";
import { rerun as rerunJobs, type RerunOptions } from "../slurm/rerun.js";
import type { SlurmParametersInput } from "../slurm/parameters.js";
import { openFolder, pickTasks } from "./folder.js";
import { parse } from "./options.js";

/** `slurmkit cancel <folder> [task...]`: cancels the tasks named, or every task that has not ended. */
export async function cancel(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("cancel", args, {});
  const folder = await openFolder(positionals[0], values, "cancel");
  try {
    const named = positionals.length > 1 ? pickTasks(folder.jobs, positionals.slice(1)) : folder.jobs;
    const open = named.filter((j) => !j.done());
    for (const job of open) await job.cancel();
    const ids = open.map((j) => `${folder.jobs.indexOf(j)} (${j.id})`);
    if (values.json) process.stdout.write(`${JSON.stringify({ cancelled: open.map((j) => ({ index: folder.jobs.indexOf(j), id: j.id })) })}\n`);
    else process.stdout.write(open.length ? `Cancelled ${open.length} task${open.length === 1 ? "" : "s"}: ${ids.join(", ")}\n` : "Nothing to cancel: every task named has ended.\n");
    return 0;
  } finally {
    folder.close();
  }
}

/** The end states of `--state A,B`, upper-cased; an unknown one is a UsageError that lists those accepted. */
function statesOf(list: string): JobState[] {
  const states = list.split(",").map((s) => s.trim().toUpperCase());
  const bad = states.filter((s) => !(END_STATES as readonly string[]).includes(s));
  if (bad.length || states.length === 0) throw new UsageError(`Expected --state to be end states separated by commas (${END_STATES.join(", ")}), got '${list}'`);
  return states as JobState[];
}

/**
 * `slurmkit rerun <folder> (--failed | --state S,... | --all | task...) [--slurm key=value ...]`:
 * runs the chosen tasks again from the stored spec, with parameter overrides.
 * Bad flags or overrides submit nothing.
 */
export async function rerun(args: readonly string[]): Promise<number> {
  // The --slurm pairs first: their values are checked before anything is read or submitted.
  const flags = parseSlurmFlags(args);
  const { values, positionals } = parse("rerun", flags.rest, { failed: { type: "boolean" }, state: { type: "string" }, all: { type: "boolean" } });
  const named = positionals.slice(1);
  const ways = [values.failed === true, values.state !== undefined, values.all === true, named.length > 0].filter(Boolean).length;
  if (ways !== 1) throw new UsageError("Say which tasks to rerun, one way: --failed, --state TIMEOUT,OUT_OF_MEMORY,..., --all, or task indices or Slurm ids");
  const only: RerunOptions["only"] = values.failed ? "failed" : values.state !== undefined ? statesOf(values.state as string) : undefined;
  const overrides: SlurmParametersInput | undefined =
    flags.parameters === undefined && flags.setup.length === 0 ? undefined : { ...flags.parameters, ...(flags.setup.length ? { setup: flags.setup } : {}) };
  const folder = await openFolder(positionals[0], values, "rerun");
  try {
    const chosen: Job<unknown>[] = named.length ? pickTasks(folder.jobs, named) : folder.jobs;
    const fresh = await rerunJobs(chosen, { ...(only ? { only } : {}), ...(overrides ? { parameters: overrides } : {}) });
    const bySubmission = new Map<string, Job<unknown>[]>();
    for (const job of fresh) {
      const dir = originOf(job)!.folder.dir;
      bySubmission.set(dir, [...(bySubmission.get(dir) ?? []), job]);
    }
    const rows = [...bySubmission].map(([dir, jobs]) => ({
      submission: basename(dir),
      of: basename(originOf(jobs[0]!)!.root.dir),
      tasks: jobs.map((j) => originOf(j)!.root.index),
      ids: jobs.map((j) => j.id),
    }));
    if (values.json) process.stdout.write(`${JSON.stringify({ reruns: rows })}\n`);
    else if (fresh.length === 0) process.stdout.write("Nothing to rerun: no task matches.\n");
    else
      for (const r of rows)
        process.stdout.write(`Rerunning ${r.tasks.length} task${r.tasks.length === 1 ? "" : "s"} of ${r.of} (${r.tasks.join(", ")}) as ${r.submission}: Slurm job ${r.ids[0]!.split("_")[0]}\n`);
    return 0;
  } finally {
    folder.close();
  }
}
