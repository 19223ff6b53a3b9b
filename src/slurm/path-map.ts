import { posix } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ParameterError } from "../base/errors.js";
import type { TaskRecord } from "../core/tasks.js";

/** Local path prefixes and the same files' paths on the cluster, e.g. `{ "/Users/ada/sweep": "/home/ada/sweep" }`. */
export type PathMap = Readonly<Record<string, string>>;

/** Throws a ParameterError unless `map` holds absolute POSIX paths on both sides. */
export function checkPathMap(map: unknown): asserts map is PathMap {
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new ParameterError("executor options", [`Expected \`pathMap\` to be an object from local to cluster paths, got \`${String(map)}\``]);
  }
  const problems: string[] = [];
  for (const [from, to] of Object.entries(map)) {
    if (!from.startsWith("/")) problems.push(`Expected the \`pathMap\` key \`${from}\` to be an absolute local path`);
    if (typeof to !== "string" || !to.startsWith("/")) problems.push(`Expected \`pathMap["${from}"]\` to be an absolute path on the cluster, got \`${String(to)}\``);
  }
  if (problems.length) throw new ParameterError("executor options", problems);
}

/** The cluster path of a local path: the longest matching prefix swapped; unchanged when none matches. */
export function mapPath(path: string, map: PathMap | undefined): string {
  if (!map) return path;
  let best: string | undefined;
  for (const from of Object.keys(map)) {
    const prefix = from.length > 1 ? from.replace(/\/+$/, "") : from;
    if ((path === prefix || path.startsWith(prefix === "/" ? "/" : `${prefix}/`)) && (best === undefined || prefix.length > best.length)) best = prefix;
  }
  if (best === undefined) return path;
  const to = map[best] ?? map[`${best}/`] ?? "";
  return posix.join(to, path.slice(best.length));
}

/** Task records with their function modules' file URLs mapped to the cluster. */
export function mapRecords(records: readonly TaskRecord[], map: PathMap | undefined): TaskRecord[] {
  if (!map) return [...records];
  return records.map((r) => {
    if (r.kind !== "function" || !r.moduleUrl.startsWith("file:")) return r;
    return { ...r, moduleUrl: pathToFileURL(mapPath(fileURLToPath(r.moduleUrl), map)).href };
  });
}
