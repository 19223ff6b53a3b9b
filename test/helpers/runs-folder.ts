import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh folder for an executor. */
export async function runsFolder(): Promise<string> {
  return mkdtemp(join(tmpdir(), "slurmkit-runs-"));
}
