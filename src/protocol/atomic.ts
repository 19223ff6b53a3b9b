import { randomBytes } from "node:crypto";
import { open, rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";

/** Writes a file under a temporary name in the same folder, then renames it, so readers never see half of it. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Creates a file only if it does not exist (O_CREAT | O_EXCL, atomic on NFS
 * too): true if this call made it, false if it was there. Claims use it.
 */
export async function createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
  let file;
  try {
    file = await open(path, "wx");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    await file.writeFile(data);
  } finally {
    await file.close();
  }
  return true;
}
