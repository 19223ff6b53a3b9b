import { ContainerError } from "../base/errors.js";
import { imageIsFile, type ContainerRecord } from "../protocol/container.js";
import type { TaskRecord } from "../protocol/task-record.js";
import type { Transport } from "../transport/transport.js";

/** The distinct containers of a submission: its container step's, and its command tasks' own. */
export function submissionContainers(records: readonly TaskRecord[], step: ContainerRecord | undefined): ContainerRecord[] {
  const seen = new Map<ContainerRecord, true>();
  if (step) seen.set(step, true);
  for (const r of records) if (r.kind === "command" && r.container && !seen.has(r.container)) seen.set(r.container, true);
  const byText = new Map<string, ContainerRecord>();
  for (const c of seen.keys()) byText.set(JSON.stringify(c), c);
  return [...byText.values()];
}

/**
 * Checks, before anything is submitted, what can be checked from here: each
 * image given as a literal absolute file path (a .sif, a .sqsh) and each
 * literal bind source must exist, as the cluster's nodes see the shared file
 * system. A path that exists only on the nodes is given as a runtime value
 * (`atRuntime("$SLURM_TMPDIR/env.sif")`), and checked there. One command
 * over the transport for all of them.
 */
export async function checkContainers(transport: Transport, containers: readonly ContainerRecord[]): Promise<void> {
  const paths: Array<{ path: string; missing: "image" | "bind"; what: string }> = [];
  for (const c of containers) {
    if (typeof c.image === "string" && c.image.startsWith("/") && imageIsFile(c.runtime, c.image)) paths.push({ path: c.image, missing: "image", what: `the ${c.runtime} image ${c.image}` });
    for (const [i, b] of (c.binds ?? []).entries()) {
      const src = typeof b === "string" ? b.split(":")[0]! : undefined;
      if (src?.startsWith("/")) paths.push({ path: src, missing: "bind", what: `the source of container.binds[${i}] (${src})` });
    }
  }
  if (paths.length === 0) return;
  const unique = [...new Set(paths.map((p) => p.path))];
  const found = await transport.run("sh", ["-c", 'for p in "$@"; do [ -e "$p" ] || printf "%s\\n" "$p"; done', "sh", ...unique]);
  if (found.exitCode !== 0) return;
  const absent = new Set(found.stdout.split("\n").filter((l) => l !== ""));
  const first = paths.find((p) => absent.has(p.path));
  if (first) {
    throw new ContainerError(
      first.missing,
      "the cluster's shared file system (checked before the submit)",
      `${first.what} does not exist`,
      `create it, or fix the path; nothing was submitted. A path that exists only on the nodes goes in as atRuntime("...") and is checked there`,
    );
  }
}
