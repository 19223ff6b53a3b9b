// The test cluster's processes, for tests and the bench that stop parts of it.
// Imports no vitest, so that the bench (run by tsx) can use it too.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Whether process `pid` is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the test cluster's slurmctld (SIGTERM) and resolves once it has
 * exited; `cluster.sh up` starts it again. `slurmConf` is the cluster's
 * slurm.conf (its pid file is beside it, in run/).
 */
export async function stopController(slurmConf: string, timeoutMs = 60_000): Promise<void> {
  const pid = Number((await readFile(join(dirname(dirname(slurmConf)), "run", "slurmctld.pid"), "utf8")).trim());
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`slurmctld (pid ${pid}) did not stop within ${timeoutMs} ms of SIGTERM`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
