import { UsageError } from "../base/errors.js";
import { basename } from "node:path";
import { parsePbsFlags, parseSlurmFlags } from "../sdk/flags.js";
import { END_STATES, type JobState } from "../base/job-state.js";
import type { Job } from "../core/job.js";
import { originOf } from "../engine/origin.js";
import { planRerun, rerun as rerunJobs, type RerunOptions } from "../slurm/rerun.js";
import { formatPreview } from "../engine/executor.js";
import { plural } from "../base/words.js";
import type { SlurmParametersInput } from "../slurm/parameters.js";
import { openFolder, pickTasks } from "./folder.js";
import { originSourceOf } from "../engine/origin.js";
import { rightSize, type RightSized } from "../report/right-size.js";
import { requestCaps } from "../slurm/packing.js";
import { sharedScheduler } from "../slurm/scheduler.js";
import { isUnreachable } from "../transport/transport.js";
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
 * What `--right-size` gives each chosen task that ran out of memory or time:
 * twice its `mem` or `time`, capped by its partition. A task whose request
 * cannot grow is a UsageError, and nothing is submitted.
 */
async function rightSizing(chosen: readonly Job<unknown>[], transport: Parameters<typeof sharedScheduler>[0], explicit: SlurmParametersInput | undefined): Promise<Map<Job<unknown>, RightSized>> {
  const out = new Map<Job<unknown>, RightSized>();
  const grown = chosen.filter((j) => j.state === "OUT_OF_MEMORY" || j.state === "TIMEOUT");
  if (grown.length === 0) return out;
  const limits = await sharedScheduler(transport)
    .limits()
    .catch((error: unknown) => {
      if (isUnreachable(error)) throw error;
      return undefined;
    });
  const problems: string[] = [];
  for (const job of grown) {
    // What the user set with --slurm is theirs: --right-size does not change it.
    if ((job.state === "OUT_OF_MEMORY" && explicit?.mem !== undefined) || (job.state === "TIMEOUT" && explicit?.time !== undefined)) continue;
    const request = originSourceOf(job)?.request;
    try {
      const sized = rightSize(job.state, request, limits ? requestCaps(request?.partition, limits) : {});
      if (sized) out.set(job, sized);
    } catch (error) {
      problems.push(`${job.id} (${job.state}): ${(error as Error).message}`);
    }
  }
  if (problems.length) throw new UsageError(`--right-size cannot grow ${problems.length === 1 ? "this task" : "these tasks"}, so nothing was submitted:\n  ${problems.join("\n  ")}`);
  return out;
}

/**
 * `slurmkit rerun <folder> (--failed | --state S,... | --all | task...) [--right-size] [--dry-run] [--slurm key=value ... | --pbs key=value ...]`:
 * runs the chosen tasks again from the stored spec, with parameter overrides;
 * `--right-size` gives those that ran out of memory or time twice as much.
 * Bad flags or overrides submit nothing; `--dry-run` prints the sbatch
 * scripts it would submit, and submits nothing.
 */
export async function rerun(args: readonly string[]): Promise<number> {
  // The --slurm (or --pbs) pairs first: their values are checked before anything is read or submitted.
  const slurmFlags = parseSlurmFlags(args);
  const pbsFlags = parsePbsFlags(slurmFlags.rest);
  if (slurmFlags.parameters !== undefined && pbsFlags.parameters !== undefined) throw new UsageError("Give --slurm or --pbs pairs, not both");
  const flags = pbsFlags.parameters !== undefined ? pbsFlags : { ...slurmFlags, rest: pbsFlags.rest };
  const { values, positionals } = parse("rerun", flags.rest, {
    failed: { type: "boolean" },
    state: { type: "string" },
    all: { type: "boolean" },
    "right-size": { type: "boolean" },
    "dry-run": { type: "boolean" },
  });
  const named = positionals.slice(1);
  const ways = [values.failed === true, values.state !== undefined, values.all === true, named.length > 0].filter(Boolean).length;
  if (ways !== 1) throw new UsageError("Say which tasks to rerun, one way: --failed, --state TIMEOUT,OUT_OF_MEMORY,..., --all, or task indices or Slurm ids");
  const only: RerunOptions["only"] = values.failed ? "failed" : values.state !== undefined ? statesOf(values.state as string) : undefined;
  const overrides: SlurmParametersInput | undefined =
    flags.parameters === undefined && flags.setup.length === 0 ? undefined : { ...flags.parameters, ...(flags.setup.length ? { setup: flags.setup } : {}) };
  const folder = await openFolder(positionals[0], values, "rerun");
  try {
    const chosen: Job<unknown>[] = named.length ? pickTasks(folder.jobs, named) : folder.jobs;
    // Only the tasks that will run again are sized (rerun() chooses the same ones by `only`).
    const rerunning = only === undefined ? chosen : chosen.filter((j) => j.done() && (only === "failed" ? j.state !== "COMPLETED" : only.includes(j.state)));
    const sized = values["right-size"] ? await rightSizing(rerunning, folder.transport, flags.parameters) : new Map<Job<unknown>, RightSized>();
    const options: RerunOptions = {
      ...(only ? { only } : {}),
      ...(overrides ? { parameters: overrides } : {}),
      ...(sized.size ? { parametersOf: (job: Job<unknown>) => sized.get(job)?.parameters } : {}),
    };
    if (values["dry-run"]) {
      const previews = await planRerun(chosen, options);
      if (values.json) process.stdout.write(`${JSON.stringify({ plans: previews })}\n`);
      else if (previews.length === 0) process.stdout.write("Nothing to rerun: no task matches.\n");
      else process.stdout.write(`${previews.map(formatPreview).join("\n")}Nothing was submitted (--dry-run).\n`);
      return 0;
    }
    const fresh = await rerunJobs(chosen, options);
    const bySubmission = new Map<string, Job<unknown>[]>();
    for (const job of fresh) {
      const dir = originOf(job)!.folder.dir;
      bySubmission.set(dir, [...(bySubmission.get(dir) ?? []), job]);
    }
    const rows = [...bySubmission].map(([dir, jobs]) => {
      const before = originOf(jobs[0]!)!.previous;
      const change = before ? sized.get(before)?.note : undefined;
      return {
        submission: basename(dir),
        of: basename(originOf(jobs[0]!)!.root.dir),
        tasks: jobs.map((j) => originOf(j)!.root.index),
        ids: jobs.map((j) => j.id),
        ...(change ? { rightSized: change } : {}),
      };
    });
    if (values.json) process.stdout.write(`${JSON.stringify({ reruns: rows })}\n`);
    else if (fresh.length === 0) process.stdout.write("Nothing to rerun: no task matches.\n");
    else
      for (const r of rows)
        process.stdout.write(
          `Rerunning ${plural(r.tasks.length, "task")} of ${r.of} (${r.tasks.join(", ")}) as ${r.submission}: Slurm job ${r.ids[0]!.split("_")[0]}${r.rightSized ? `, ${r.rightSized}` : ""}\n`,
        );
    return 0;
  } finally {
    folder.close();
  }
}
