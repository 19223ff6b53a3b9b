import { countTasks, type SubmissionPreview } from "../engine/executor.js";
import { checkContainers, submissionContainers } from "../engine/container-check.js";
import { isSetupStep, type SetupStep } from "../setup/index.js";
import type { Job } from "../core/job.js";
import type { TaskRecord } from "../core/tasks.js";
import { wantsWarning } from "../protocol/task-record.js";
import { packr } from "../protocol/codec.js";
import { encodeManifest, type AfterFile, type Manifest, type SubmittedArray } from "../protocol/records.js";
import type { RunFolder } from "../protocol/run-folder.js";
import { encodeSpec, specParts } from "../protocol/spec-file.js";
import type { Transport } from "../transport/transport.js";
import { AmbiguousSubmissionError, CommandError, SlurmkitError } from "../base/errors.js";
import { submitOnce } from "./submit-once.js";
import { SlurmBackend, slurmJobs } from "./backend.js";
import type { SlurmParameters } from "./parameters.js";
import { checkSubmission } from "./packing.js";
import { defaultJobName, planSubmission, type SubmissionPlan } from "./plan.js";
import type { ClusterLimits } from "./scheduler.js";
import { encodeRequest, type SubmissionRequest } from "./request.js";
import type { BatchScheduler, BatchSystem } from "./batch.js";

/** A planned submission, ready to be written and submitted. */
export interface Launch {
  readonly system: BatchSystem;
  readonly transport: Transport;
  readonly plan: SubmissionPlan;
  readonly folder: RunFolder;
  readonly records: readonly TaskRecord[];
  readonly request: SubmissionRequest;
  readonly afterFile?: AfterFile | undefined;
  /** A rerun: which tasks of which original submission it runs again. */
  readonly rerun?: Manifest["rerun"];
}

/** What a submission needs to be planned: a new one (mapArray, submit) and a rerun alike. */
export interface LaunchInput {
  readonly system: BatchSystem;
  readonly transport: Transport;
  readonly folder: RunFolder;
  readonly records: readonly TaskRecord[];
  /** The validated parameters; the request keeps them as given. */
  readonly parameters: SlurmParameters;
  readonly request: SubmissionRequest;
  /** The cluster's limits, read only for an array. */
  readonly limits: () => Promise<ClusterLimits>;
  /** The `afterok` dependency and the `after` file of packed dependencies. */
  readonly after?: { readonly dependency: string; readonly afterFile: AfterFile | undefined } | undefined;
  readonly rerun?: Manifest["rerun"];
}

/** Checks the packing options and plans the submission: the one path from tasks to a Launch. Undefined for no tasks, once the options were checked. */
export async function prepareLaunch(i: LaunchInput): Promise<Launch | undefined> {
  const { parameters, records, request } = i;
  const dependency = i.after?.dependency;
  const packing = checkSubmission(parameters, { ...request.packing, dependency, taskCount: records.length });
  if (records.length === 0) return undefined;
  const step = parameters.setup?.find((s): s is SetupStep => isSetupStep(s) && s.container !== undefined);
  await checkContainers(i.transport, submissionContainers(records, step?.container));
  const plan = planSubmission({
    warned: records.some(wantsWarning),
    defaultName: defaultJobName(records),
    taskCount: records.length,
    array: request.array,
    parameters,
    limits: request.array ? await i.limits() : undefined,
    packing,
    dependency,
    folder: i.folder,
    runner: request.runner,
    scheduler: i.system,
  });
  return { system: i.system, transport: i.transport, plan, folder: i.folder, records, request, afterFile: i.after?.afterFile, ...(i.rerun ? { rerun: i.rerun } : {}) };
}

/**
 * Writes a planned submission (folders, spec, request, scripts, then the
 * manifest with no job id), runs sbatch, writes the manifest again with the
 * job ids, and returns the tracked futures and that manifest.
 */
export async function launch(l: Launch): Promise<{ jobs: Job<unknown>[]; manifest: Manifest & { jobId: string } }> {
  const t = l.transport;
  const manifest: Manifest = { ...l.plan.manifest, ...(l.rerun ? { rerun: l.rerun } : {}) };
  await Promise.all(l.plan.dirs.map((d) => t.mkdir(d)));
  // In one pass, never whole in memory where the transport can write parts (a million tasks' spec is about 170 MB).
  await (t.writeFileParts ? t.writeFileParts(l.folder.spec, specParts(l.records)) : t.writeFile(l.folder.spec, encodeSpec(l.records)));
  await t.writeFile(l.folder.request, encodeRequest(l.request));
  if (l.afterFile) await t.writeFile(l.folder.after, packr.pack(l.afterFile));
  await Promise.all([...l.plan.scripts, ...(l.plan.topUp ? [l.plan.topUp] : [])].map((s) => t.writeFile(s.path, s.text)));
  await t.writeFile(l.folder.manifest, encodeManifest(manifest));
  let arrays: SubmittedArray[];
  try {
    arrays = await sbatchAll(l.system.scheduler(t), l.plan.scripts);
  } catch (error) {
    // Refused (and what was submitted before cancelled): loadJobs must not look for its jobs. An ambiguous answer keeps the manifest as it is, for loadJobs to complete.
    if (!(error instanceof AmbiguousSubmissionError)) await t.writeFile(l.folder.manifest, encodeManifest({ ...manifest, withdrawn: true, refused: refusal(error) })).catch(() => undefined);
    throw error;
  }
  const submitted = { ...manifest, jobId: arrays[0]!.jobId, ...(l.plan.packed ? { arrays } : {}) };
  await t.writeFile(l.folder.manifest, encodeManifest(submitted));
  return { jobs: slurmJobs(new SlurmBackend(l.system.watcher(t), l.system.scheduler(t), t, l.system.kind), l.folder, submitted), manifest: submitted };
}

/** What a planned submission would be, as `plan()`, `planRerun()` and `--dry-run` show it. */
export function previewOf(l: Launch): SubmissionPreview {
  const { plan, records } = l;
  return {
    folder: l.folder.dir,
    taskCount: records.length,
    tasks: countTasks(records),
    scripts: plan.scripts.map((s) => ({ path: s.path, text: s.text, elements: s.count })),
    workers: plan.manifest.workers,
    request: plan.manifest.request,
  };
}

/** What sbatch said when it refused a submission, for its manifest: its stderr (the last 2000 characters), else the error's message. */
export function refusal(error: unknown): string {
  const said = error instanceof CommandError && error.stderr.trim() ? error.stderr.trim() : error instanceof Error ? error.message : String(error);
  return said.length > 2000 ? `...${said.slice(-2000)}` : said;
}

/**
 * Submits every script. When sbatch's answer is lost (the connection dropped
 * while it ran), the job is looked for by its tag before anything is
 * submitted again, so a retry never submits twice. If one is refused, those
 * already submitted are cancelled so nothing half-submitted stays behind; a
 * cancel that fails is reported with the refusal.
 */
async function sbatchAll(scheduler: BatchScheduler, scripts: SubmissionPlan["scripts"]): Promise<SubmittedArray[]> {
  const submitted: SubmittedArray[] = [];
  for (const s of scripts) {
    try {
      submitted.push({ jobId: await submitOnce(scheduler, s), firstElement: s.firstElement, elements: s.count });
    } catch (error) {
      const failed: string[] = [];
      for (const a of submitted) await scheduler.cancel(a.jobId).catch((e: unknown) => failed.push(`${a.jobId}: ${(e as Error).message.split("\n")[0]}`));
      if (failed.length) {
        throw new SlurmkitError(`${(error as Error).message.split("\n")[0]}; and the arrays submitted before it could not all be cancelled (${failed.join("; ")}): cancel them with scancel`, "", {
          cause: error,
        });
      }
      throw error;
    }
  }
  return submitted;
}
