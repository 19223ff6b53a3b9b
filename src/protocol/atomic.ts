import { randomBytes } from "node:crypto";
import { rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";

/** Writes a file under a temporary name in the same folder, then renames it, so readers never see half of it. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
