import { readdir, readFile } from "node:fs/promises";
import { readStream } from "../src/protocol/record-stream.js";
import { decodeAfter, decodeResult, type AfterFile, type ResultFile } from "../src/protocol/records.js";
import { RunFolder } from "../src/protocol/run-folder.js";
import { decodeTaskRecord, isRecordStream } from "../src/protocol/task-stream.js";

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
  const streams = new Map<string, StreamResults>();
  for (;;) {
    const still: Pending[] = [];
    for (const dir of new Set(pending.map((p) => p.dep.dir))) {
      const s = streams.get(dir) ?? new StreamResults(new RunFolder(dir));
      streams.set(dir, s);
      await s.read();
    }
    for (const p of pending) {
      const path = new RunFolder(p.dep.dir).result(p.index);
      const result =
        streams.get(p.dep.dir)!.results.get(p.index) ??
        (await readFile(path).then(
          (b) => decodeResult(b, path),
          () => undefined,
        ));
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

/** The results in a packed submission's worker streams, read on from where the last read stopped. */
class StreamResults {
  readonly results = new Map<number, ResultFile>();
  readonly #offsets = new Map<string, number>();
  constructor(private readonly folder: RunFolder) {}

  async read(): Promise<void> {
    const names = await readdir(this.folder.streamsDir).catch(() => [] as string[]);
    for (const name of names.filter(isRecordStream)) {
      const path = `${this.folder.streamsDir}/${name}`;
      // A read that fails (a file system hiccup) is tried again on the next look, as a result file's was.
      const read = await readStream(path, this.#offsets.get(name) ?? 0).catch(() => undefined);
      if (!read) continue;
      this.#offsets.set(name, read.offset);
      for (const payload of read.records) {
        try {
          const r = decodeTaskRecord(payload, path);
          // Only what the check needs: whether it completed, and how it ended if not.
          if ("result" in r && !this.results.has(r.index)) this.results.set(r.index, r.result.ok ? { ...r.result, value: null } : r.result);
        } catch {
          // Not a record slurmkit wrote: passed over.
        }
      }
    }
  }
}
