import { posix } from "node:path";
import { pathToFileURL } from "node:url";
import type { FunctionRecord, TaskRecord } from "../protocol/task-record.js";
import { bundleModule, type CodeBundle } from "./bundle.js";

/** A file to write into the executor's `code/` folder. */
export interface CodeFile {
  readonly path: string;
  readonly data: Uint8Array;
}

/**
 * Snapshots the code of a submission's function tasks: each distinct module
 * is bundled (see bundleModule) and its records point at the bundle in
 * `codeDir`, so queued and requeued tasks run what was submitted, the node
 * needs plain Node, and a module that exists only on this machine runs on the
 * cluster. Throws a ParameterError before anything is written when a module
 * cannot be bundled.
 */
export async function snapshotRecords(records: readonly TaskRecord[], codeDir: string, external: readonly string[] = []): Promise<{ records: TaskRecord[]; files: CodeFile[] }> {
  const modules = [...new Set(records.flatMap((r) => (r.kind === "function" ? [r.moduleUrl] : [])))];
  const bundles = new Map(await Promise.all(modules.map(async (url) => [url, await bundleModule(url, { external })] as const)));
  const files = [...bundles.values()].flatMap((b) => codeFiles(b, codeDir));
  const urls = new Map([...bundles].map(([url, bundle]) => [url, pathToFileURL(posix.join(codeDir, bundle.name)).href]));
  return {
    records: records.map((r) => (r.kind === "function" ? snapshotRecord(r, urls.get(r.moduleUrl)!) : r)),
    files,
  };
}

/**
 * A function record that imports its snapshot: its fields in their order,
 * `source` last. Written out, not spread: V8 gives each spread copy a map of
 * its own, and a million records of one map are cheaper to make and to
 * write (the spec writer compares a record with the one before by its keys).
 */
function snapshotRecord(r: FunctionRecord, moduleUrl: string): FunctionRecord {
  return !("checkpoint" in r)
    ? { kind: "function", moduleUrl, name: r.name, arg: r.arg, source: r.moduleUrl }
    : { kind: "function", moduleUrl, name: r.name, arg: r.arg, checkpoint: r.checkpoint, source: r.moduleUrl };
}

/** A bundle's two files in `codeDir`: the code and its source map. */
export function codeFiles(b: CodeBundle, codeDir: string): CodeFile[] {
  return [
    { path: posix.join(codeDir, b.name), data: b.code },
    { path: posix.join(codeDir, `${b.name}.map`), data: b.map },
  ];
}
