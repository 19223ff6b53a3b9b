import { decodeState, encodeManifest, type Manifest, type SubmittedArray } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";
import { submissionTag } from "./plan.js";
import { sharedScheduler } from "./scheduler.js";

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
 * dropped). Finds each array in squeue by its tag; arrays squeue no longer
 * lists by the ids their runners wrote in state files (Slurm numbers jobs in
 * the order they were submitted, and the arrays were submitted in script
 * order). Then writes the manifest with the ids. Undefined when the jobs are
 * not all found. A submission in which nothing is found long after it was
 * made is marked withdrawn, so later calls stop looking.
 */
export async function recoverSubmission(transport: Transport, dir: string, manifest: Manifest, now = Date.now()): Promise<(Manifest & { jobId: string }) | undefined> {
  if (manifest.withdrawn) return undefined; // refused, cancelled right after sbatch, or never found: there is nothing to find
  const folder = new RunFolder(dir);
  const scripts = (await transport.list(dir)).flatMap((name) => {
    const m = SCRIPT.exec(name);
    return m ? [Number(m[1] ?? 0)] : [];
  });
  scripts.sort((a, b) => a - b);
  if (scripts.length === 0 || scripts.some((j, i) => j !== i)) return undefined;
  const scheduler = sharedScheduler(transport);
  const ids: (string | undefined)[] = [];
  for (const j of scripts) {
    const found = await scheduler.tagged(submissionTag(folder, j));
    ids.push(found.length === 1 ? found[0] : undefined);
  }
  const missing = scripts.filter((j) => ids[j] === undefined);
  if (missing.length > 0) {
    const fromRecords = await idsFromRecords(transport, folder, new Set(ids.filter((id) => id !== undefined)), missing.length);
    if (fromRecords.length === missing.length) missing.forEach((j, k) => (ids[j] = fromRecords[k]));
    else {
      if (missing.length === scripts.length && fromRecords.length === 0 && now - Date.parse(manifest.createdAt) > NEVER_FOUND_AFTER_MS) {
        await transport.writeFile(folder.manifest, encodeManifest({ ...manifest, withdrawn: true })).catch(unlessUnreachable(undefined));
      }
      return undefined;
    }
  }
  const arrays: SubmittedArray[] = [];
  let first = 0;
  for (const j of scripts) {
    const text = String(await transport.readFile(folder.script(j)));
    const array = /^#SBATCH --array=0-(\d+)/m.exec(text);
    const elements = array ? Number(array[1]) + 1 : 1;
    arrays.push({ jobId: ids[j]!, firstElement: first, elements });
    first += elements;
  }
  const packed = manifest.workers !== undefined || manifest.tasksPerElement !== undefined;
  const recovered = { ...manifest, jobId: arrays[0]!.jobId, ...(packed ? { arrays } : {}) };
  await transport.writeFile(folder.manifest, encodeManifest(recovered)).catch(unlessUnreachable(undefined));
  return recovered;
}

/**
 * Up to `wanted` array ids, other than `known`, that runners of the
 * submission wrote in state files (`A_i`, or `A`), in the order Slurm gave
 * them. Reading stops once that many are found.
 */
async function idsFromRecords(transport: Transport, folder: RunFolder, known: ReadonlySet<string>, wanted: number): Promise<string[]> {
  const names = await transport.list(folder.stateDir).catch(unlessUnreachable([] as string[]));
  const ids = new Set<string>();
  for (const name of names) {
    if (ids.size === wanted) break;
    if (!name.endsWith(".state")) continue;
    const path = `${folder.stateDir}/${name}`;
    const id = decodeState(await transport.readFile(path), path).jobId.split("_")[0]!;
    if (!known.has(id)) ids.add(id);
  }
  return [...ids].sort((a, b) => Number(a) - Number(b));
}
