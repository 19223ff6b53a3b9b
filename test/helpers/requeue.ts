import type { Job } from "../../src/index.js";
import { slurm, waitFor } from "./cluster.js";

/**
 * Slurm holds a requeued job back for about two minutes (reason BeginTime).
 * Tests skip most of that wait: once the job has been held so for 10 s, they
 * start it now. (Started sooner, the node may still hold the last attempt's
 * revoked credential, and the launch fails: "Job credential revoked".)
 * Returns a function that stops watching.
 */
export function startRequeuedAtOnce(job: Job<unknown>): () => void {
  let stopped = false;
  const loop = async () => {
    let heldSince: number | undefined;
    while (!stopped && !job.done()) {
      const { stdout } = await slurm("squeue", ["-h", "-t", "PD", "-j", job.id, "-o", "%r"], { reject: false });
      heldSince = stdout.includes("BeginTime") ? (heldSince ?? Date.now()) : undefined;
      if (heldSince !== undefined && Date.now() - heldSince > 10_000) {
        await slurm("scontrol", ["update", `JobId=${job.id}`, "StartTime=now"], { reject: false });
        heldSince = undefined;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

/** Waits until the task runs (its state file says so), then submits a job to the high partition that needs every CPU: it preempts the low one. */
export async function preemptWhenRunning(job: Job<unknown>, started: () => Promise<boolean>): Promise<string> {
  await waitFor(`${job.id} to run its task`, async () => ((await started()) ? true : undefined), 90_000);
  return preemptLow();
}

/** Submits a job to the high partition that needs every CPU for 3 s: it preempts whatever runs in low. Returns its id. */
export async function preemptLow(): Promise<string> {
  const { stdout } = await slurm("sbatch", ["--parsable", "--partition=high", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=2", "--output=/dev/null", "--wrap=sleep 3"]);
  return stdout.trim();
}
