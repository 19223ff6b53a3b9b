// Walk-away: a worker whose time ran out, or that was preempted and does not
// requeue itself, with tasks left, submits the next round of workers itself, so a packed run finishes without its client. The
// round is elected by an exclusive create of `rounds/<n>` (protocol/rounds.ts):
// one sbatch per round, whoever sees the moment. Where sbatch fails on a
// node, it says so once and leaves the rounds to the client.
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { createExclusive, writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import type { NodeSide } from "../src/core/node-side.js";
import { decodeManifest, decodeRound, type RoundFile } from "../src/protocol/records.js";
import { roundNumbers, roundOf, roundOffset, roundSbatchArgs } from "../src/protocol/rounds.js";
import type { RunFolder } from "../src/protocol/run-folder.js";

/**
 * Submits round n + 1 of workers (n: this worker's round) when `left` tasks
 * wait for a worker, unless another process created that round first, or a
 * node refused sbatch before. Returns what it did, in one line for the log,
 * or undefined when it did nothing.
 */
export async function submitNextRound(folder: RunFolder, node: NodeSide, worker: string, left: number): Promise<string | undefined> {
  if (left === 0 || !node.submit || existsSync(folder.noSbatch)) return undefined;
  const manifest = decodeManifest(await readFile(folder.manifest, "utf8"), folder.manifest);
  const workers = manifest.workers?.count ?? 1;
  const elect = async (round: number): Promise<RoundFile | undefined> => {
    const record: RoundFile = { round, firstElement: roundOffset(round, workers), elements: Math.min(left, workers), by: worker, at: Date.now() };
    // Elected: exactly one process submits this round.
    return (await createExclusive(folder.round(round), packr.pack(record))) ? record : undefined;
  };
  const record = (await elect(roundOf(process.env) + 1)) ?? (await afterLastRound(folder, node, elect));
  if (!record) return undefined;
  const { round } = record;
  const answer = await node.submit(folder.workersScript, roundSbatchArgs(round, record.firstElement, record.elements, manifest.workers?.parallelism));
  await writeFileAtomic(folder.round(round), packr.pack({ ...record, ...answer }));
  if ("jobId" in answer) return `worker ${worker} submitted round ${round} of workers (job ${answer.jobId}, ${record.elements} element(s)) for the ${left} task(s) left`;
  if ("lost" in answer) return `worker ${worker} submitted round ${round} of workers, and got no answer (${answer.lost}); the client finds the job by its tag`;
  await writeFile(folder.noSbatch, `${worker}: ${answer.refused}\n`).catch(() => undefined);
  return `worker ${worker} could not submit the next round of workers from node ${process.env.SLURMD_NODENAME ?? "?"} (${answer.refused}); workers leave the rounds to the client, which submits them while it watches (or loadJobs, later)`;
}

/**
 * This worker's next round was taken, and rounds went on while it ran (a
 * long task): if the last round's job has left the queue, nobody is left
 * for these tasks, so it elects the round after the last.
 */
async function afterLastRound(folder: RunFolder, node: NodeSide, elect: (round: number) => Promise<RoundFile | undefined>): Promise<RoundFile | undefined> {
  const highest = Math.max(0, ...roundNumbers(await readdir(folder.roundsDir)));
  const last = await readFile(folder.round(highest))
    .then((b) => decodeRound(b, folder.round(highest)))
    .catch(() => undefined);
  if (last?.jobId === undefined || !node.queued || (await node.queued(last.jobId)) !== false) return undefined;
  return elect(highest + 1);
}
