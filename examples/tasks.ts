import { hostname } from "node:os";
import { defineTask } from "slurmkit";

/** A function task: runs on the node, returns a typed result through msgpack. */
export const square = defineTask(import.meta.url, "square", (n: number) => ({
  n,
  square: n * n,
  ranOn: process.env.SLURMD_NODENAME ?? hostname(),
}));

/**
 * A stand-in for a training step: holds `mb` MiB, keeps one CPU busy for
 * `cpuSeconds`, waits `waitSeconds` (I/O, say), and returns a made-up loss.
 */
export const train = defineTask(import.meta.url, "train", async ({ lr, mb, cpuSeconds, waitSeconds }: { lr: number; mb: number; cpuSeconds: number; waitSeconds: number }) => {
  const held: Buffer[] = [];
  for (let got = 0; got < mb; got += 16) held.push(Buffer.alloc(Math.min(16, mb - got) * 2 ** 20, 1));
  const start = process.cpuUsage();
  let x = 0;
  while (process.cpuUsage(start).user < cpuSeconds * 1e6) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
  await new Promise((resolve) => setTimeout(resolve, waitSeconds * 1000));
  if (lr > 0.5) throw new Error(`loss diverged at lr=${lr}`);
  return { lr, loss: 1 / (1 + lr * 10) + (x % 1) * 1e-9, heldMb: held.length * 16 };
});

/** A function task whose JavaScript runs on the node, and which runs a command in the submission's container. */
export const inContainer = defineTask(import.meta.url, "inContainer", async (name: string, ctx) => {
  if (!ctx.container) throw new Error("this submission has no container step");
  await ctx.container.exec("sh", ["-c", 'echo "$GREETING from $(cat /etc/os-release | head -n 1)"'], { env: { GREETING: `hello ${name}` } });
  return { node: process.env.SLURMD_NODENAME ?? hostname(), runtime: ctx.container.runtime, image: ctx.container.image, nodeOutside: process.version };
});
