import { randomBytes } from "node:crypto";
import { type FileHandle, link, open, rename, rm } from "node:fs/promises";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";

/** A piece of a file and where it goes: what specParts yields, and what writeFileAtomic and Transport.writeFileParts take. */
export interface FilePart {
  /** The byte offset in the file. */
  readonly at: number;
  /** The bytes; a buffer that may be reused once the next part is asked for. */
  readonly bytes: Uint8Array;
}

/** Writes `data` (or the parts at their offsets) to a new temporary name beside `path` and flushes it; returns that name. */
async function writeTemporary(path: string, data: Uint8Array | string | Iterable<FilePart>): Promise<string> {
  const tmp = `${path}.tmp-${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const file = await open(tmp, "wx");
  try {
    if (typeof data === "string" || data instanceof Uint8Array) await file.writeFile(data);
    else {
      // Each part is written whole before the next is asked for: a part's buffer may be reused.
      for (const { at, bytes } of data) {
        for (let done = 0; done < bytes.length; ) done += (await file.write(bytes, done, bytes.length - done, at + done)).bytesWritten;
      }
    }
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await file.close();
  return tmp;
}

/**
 * Writes a file (whole, or as parts at their offsets, each written before
 * the next is asked for) under a temporary name in the same folder, flushes
 * it to disk, renames it, then flushes the folder: readers never see half of it,
 * and a node that crashes right after cannot leave an empty or missing file
 * behind where the rename said there was one.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string | Iterable<FilePart>): Promise<void> {
  const tmp = await writeTemporary(path, data);
  try {
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncFolder(dirname(path));
}

/**
 * writeFileAtomic for where nothing asynchronous can run any more (a process's
 * `exit` event): the same temporary name, flush and rename, synchronously.
 */
export function writeFileAtomicSync(path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp-${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fd = openSync(tmp, "wx");
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const folder = openSync(dirname(path), "r");
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

/**
 * Writes a file whole under a temporary name, flushes it, and links it into
 * place only if nothing is there (link fails on an existing name, atomic on
 * NFS too): true if this call made it, false if it was there.
 */
export async function writeFileExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
  const tmp = await writeTemporary(path, data);
  try {
    await link(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncFolder(dirname(path));
  return true;
}

/**
 * Flushes a folder's entries (a rename in it) to disk. Best effort: the file
 * is in place and flushed already, and some file systems (network ones)
 * cannot flush a folder.
 */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close().catch(() => undefined);
}

/**
 * Creates a file only if it does not exist (O_CREAT | O_EXCL, atomic on NFS
 * too): true if this call made it, false if it was there. Claims use it, and
 * are not flushed: a claim a crash loses lets another worker take the task.
 */
export async function createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
  let file: FileHandle;
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
