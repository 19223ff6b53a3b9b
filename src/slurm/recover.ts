import { decodeState, encodeManifest, type Manifest, type SubmittedArray } from "../protocol/records.js";
import { RunFolder } from "../protocol/run-folder.js";
import { unlessUnreachable, type Transport } from "../transport/transport.js";
import { submissionTag } from "./plan.js";
import { sharedScheduler } from "./scheduler.js";

const SCRIPT = /^job(?:-(\d+))?\.sbatch$/;

/**
 * A submission whose manifest has no job id: sbatch ran, but its answer never
 * reached the manifest (the client died in between, or the connection
 * dropped). Finds its jobs in squeue by their tags, or, for a job that squeue
 * no longer lists, by the id its runner wrote in a state file; then writes the
 * manifest with the ids. Undefined when no job is found: nothing was submitted.
 */
export async function recoverSubmission(transport: Transport, dir: string, manifest: Manifest): Promise<(Manifest & { jobId: string }) | undefined> {
  if (manifest.withdrawn) return undefined; // refused, or cancelled right after sbatch: there is nothing to find
  const folder = new RunFolder(dir);
  const scripts = (await transport.list(dir)).flatMap((name) => {
    const m = SCRIPT.exec(name);
    return m ? [Number(m[1] ?? 0)] : [];
  });
  scripts.sort((a, b) => a - b);
  if (scripts.length === 0 || scripts.some((j, i) => j !== i)) return undefined;
  const scheduler = sharedScheduler(transport);
  const arrays: SubmittedArray[] = [];
  let first = 0;
  for (const j of scripts) {
    const text = String(await transport.readFile(folder.script(j)));
    const array = /^#SBATCH --array=0-(\d+)/m.exec(text);
    const elements = array ? Number(array[1]) + 1 : 1;
    const found = await scheduler.tagged(submissionTag(folder, j));
    const jobId = found.length === 1 ? found[0] : scripts.length === 1 && found.length === 0 ? await idFromRecords(transport, folder) : undefined;
    if (jobId === undefined) return undefined;
    arrays.push({ jobId, firstElement: first, elements });
    first += elements;
  }
  const packed = manifest.workers !== undefined || manifest.tasksPerElement !== undefined;
  const recovered = { ...manifest, jobId: arrays[0]!.jobId, ...(packed ? { arrays } : {}) };
  await transport.writeFile(folder.manifest, encodeManifest(recovered)).catch(unlessUnreachable(undefined));
  return recovered;
}

/** The job id a runner of the submission wrote in a state file (`A_i` or `A`), as its array's id. */
async function idFromRecords(transport: Transport, folder: RunFolder): Promise<string | undefined> {
  const names = await transport.list(folder.stateDir).catch(unlessUnreachable([] as string[]));
  const name = names.find((n) => n.endsWith(".state"));
  if (!name) return undefined;
  const path = `${folder.stateDir}/${name}`;
  const state = decodeState(await transport.readFile(path), path);
  return state.jobId.split("_")[0];
}
