import { readFile } from "node:fs/promises";
import { decodeAfter, decodeResult, type AfterFile } from "../src/protocol/records.js";
import { RunFolder } from "../src/protocol/run-folder.js";

/** How often a task that waits for its dependencies' results looks again. */
const POLL_MS = 5_000;

let gate: Promise<string | undefined> | undefined;

/**
 * Whether this submission's tasks may start: undefined when every task it
 * runs after (the run folder's `after` file, for packed dependencies)
 * completed; otherwise why not, naming the dependency that did not. A
 * dependency with no result yet is waited for: Slurm's `afterany` on its
 * workers has passed, but a later worker may still run it, or the client may
 * still have to record how its worker died. Checked once per process.
 */
export function dependencyGate(folder: RunFolder): Promise<string | undefined> {
  gate ??= check(folder);
  return gate;
}

async function check(folder: RunFolder): Promise<string | undefined> {
  const bytes = await readFile(folder.after).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (!bytes) return undefined;
  const after = decodeAfter(bytes, folder.after);
  type Pending = { readonly dep: AfterFile["deps"][number]; readonly index: number };
  let pending: Pending[] = after.deps.flatMap((dep) => dep.indices.map((index: number) => ({ dep, index })));
  let lastSaid = Date.now();
  for (;;) {
    const still: Pending[] = [];
    for (const p of pending) {
      const path = new RunFolder(p.dep.dir).result(p.index);
      const result = await readFile(path).then(
        (b) => decodeResult(b, path),
        () => undefined,
      );
      if (result === undefined) still.push(p);
      else if (!result.ok) {
        return `Not started: task ${p.index} of ${p.dep.dir} (job ${p.dep.jobId}), which it runs after, ended ${result.state ?? "FAILED"}${result.error.message ? `: ${result.error.message}` : ""}`;
      }
    }
    if (still.length === 0) return undefined;
    pending = still;
    if (Date.now() - lastSaid > 60_000) {
      process.stderr.write(`slurmkit runner: waiting for ${pending.length} task(s) it runs after, such as task ${pending[0]!.index} of ${pending[0]!.dep.dir}\n`);
      lastSaid = Date.now();
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
