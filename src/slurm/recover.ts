import { decodeManifest, decodeState, encodeManifest, type Manifest, type SubmittedArray } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { parseTaskStreamName } from "../protocol/task-stream.js";
import { isUnreachable, unlessUnreachable, type Transport } from "../transport/transport.js";
import { submissionTag } from "./plan.js";
import { sharedScheduler } from "./scheduler.js";
import type { BatchScheduler } from "./batch.js";

const SCRIPT = /^job(?:-(\d+))?\.sbatch$/;

/**
 * How long after its creation a submission whose jobs were never found is
 * taken as never submitted: far beyond sbatch's own time limit (2 minutes),
 * with room for clocks that differ between machines.
 */
export const NEVER_FOUND_AFTER_MS = 15 * 60_000;

/**
 * A submission whose manifest has no job id: sbatch ran, but its answer never
 * reached the manifest (the client died in between, or the connection
 * dropped). Finds each array in squeue by its tag; an array squeue no longer
 * lists by the id its runners wrote in state files (a task of its own
 * elements; for workers, which take any task, the ids Slurm gave in the
 * order the arrays were submitted). Then writes the manifest with the ids.
 * Undefined when the jobs are not all found. A submission in which nothing
 * is found long after it was made is marked withdrawn, so later calls stop
 * looking.
 */
export async function recoverSubmission(
  transport: Transport,
  dir: string,
  manifest: Manifest,
  now = Date.now(),
  scheduler: Pick<BatchScheduler, "tagged"> = sharedScheduler(transport),
): Promise<(Manifest & { jobId: string }) | undefined> {
  if (manifest.withdrawn) return undefined; // refused, cancelled right after sbatch, or never found: there is nothing to find
  const folder = new RunFolder(dir);
  const scripts = (await transport.list(dir)).flatMap((name) => {
    const m = SCRIPT.exec(name);
    return m ? [Number(m[1] ?? 0)] : [];
  });
  scripts.sort((a, b) => a - b);
  if (scripts.length === 0 || scripts.some((j, i) => j !== i)) return undefined;
  const arrays: Omit<SubmittedArray, "jobId">[] = [];
  let first = 0;
  for (const j of scripts) {
    const text = String(await transport.readFile(folder.script(j)));
    // PBS writes one element as `-J 0-1:2` (0 to 1 in steps of 2).
    const array = /^#SBATCH --array=0-(\d+)/m.exec(text) ?? /^#PBS -J 0-(\d+)(?::(\d+))?/m.exec(text);
    const elements = array ? Math.floor(Number(array[1]) / Number(array[2] ?? 1)) + 1 : 1;
    arrays.push({ firstElement: first, elements });
    first += elements;
  }
  const ids: (string | undefined)[] = [];
  for (const j of scripts) {
    const found = await scheduler.tagged(submissionTag(folder, j));
    ids.push(found.length === 1 ? found[0] : undefined);
  }
  const missing = scripts.filter((j) => ids[j] === undefined);
  if (missing.length > 0) {
    const records = new StateRecords(transport, folder);
    if (manifest.workers === undefined) {
      // Element e runs tasks e·k to e·k+k-1: a state file of one of them names the array.
      const k = manifest.tasksPerElement ?? 1;
      for (const j of missing) {
        const { firstElement, elements } = arrays[j]!;
        ids[j] = await records.firstId((i) => i >= firstElement * k && i < (firstElement + elements) * k);
      }
    } else {
      const fromRecords = await records.distinctIds(new Set(ids.filter((id) => id !== undefined)), missing.length);
      if (fromRecords.length === missing.length) for (const [k, j] of missing.entries()) ids[j] = fromRecords[k];
    }
    if (ids.every((id) => id === undefined)) {
      if (now - Date.parse(manifest.createdAt) > NEVER_FOUND_AFTER_MS) await markNeverFound(transport, folder);
      return undefined;
    }
    if (ids.some((id) => id === undefined)) return undefined;
  }
  // Slurm numbers jobs in the order they were submitted: ids out of order mean a wrong match.
  if (ids.some((id, j) => j > 0 && Number(id) <= Number(ids[j - 1]))) return undefined;
  const submitted = arrays.map((a, j) => ({ jobId: ids[j]!, ...a }));
  const packed = manifest.workers !== undefined || manifest.tasksPerElement !== undefined;
  const recovered = { ...manifest, jobId: submitted[0]!.jobId, ...(packed ? { arrays: submitted } : {}) };
  await transport.writeFile(folder.manifest, encodeManifest(recovered)).catch(unlessUnreachable(undefined));
  return recovered;
}

/** Marks the submission withdrawn, unless its manifest got a job id meanwhile (its client was only slow). */
async function markNeverFound(transport: Transport, folder: RunFolder): Promise<void> {
  const current = decodeManifest(String(await transport.readFile(folder.manifest)), folder.manifest);
  if (current.jobId !== null || current.withdrawn) return;
  await transport.writeFile(folder.manifest, encodeManifest({ ...current, withdrawn: true })).catch(unlessUnreachable(undefined));
}

/** The job ids runners of a submission wrote in its state files (`A_i`, or `A`, as the array's `A`), and its workers' stream names. A file that cannot be read or decoded is passed over. */
class StateRecords {
  #names: Promise<string[]> | undefined;
  constructor(
    private readonly transport: Transport,
    private readonly folder: RunFolder,
  ) {}

  /** The array id in the first readable state file of a task that `task` accepts. */
  async firstId(task: (index: number) => boolean): Promise<string | undefined> {
    for (const name of await this.#list()) {
      if (!task(Number(name.slice(0, -".state".length)))) continue;
      const id = await this.#read(name);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** Up to `wanted` array ids other than `known`, in the order Slurm gave them; reading stops once that many are found. */
  async distinctIds(known: ReadonlySet<string>, wanted: number): Promise<string[]> {
    const ids = new Set<string>();
    // Workers' record streams are named by their worker, `A_w`.
    for (const name of await this.transport.list(this.folder.streamsDir).catch(unlessUnreachable([] as string[]))) {
      const id = parseTaskStreamName(name)?.worker.split("_")[0];
      if (id !== undefined && !known.has(id) && ids.size < wanted) ids.add(id);
    }
    for (const name of await this.#list()) {
      if (ids.size === wanted) break;
      const id = await this.#read(name);
      if (id !== undefined && !known.has(id)) ids.add(id);
    }
    return [...ids].sort((a, b) => Number(a) - Number(b));
  }

  #list(): Promise<string[]> {
    this.#names ??= this.transport.list(this.folder.stateDir).then((names) => names.filter((n) => /^\d+\.state$/.test(n)), unlessUnreachable([] as string[]));
    return this.#names;
  }

  async #read(name: string): Promise<string | undefined> {
    const path = `${this.folder.stateDir}/${name}`;
    try {
      return decodeState(await this.transport.readFile(path), path).jobId.split("_")[0];
    } catch (error) {
      if (isUnreachable(error)) throw error;
      return undefined;
    }
  }
}
