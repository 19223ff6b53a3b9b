import { plural } from "../base/words.js";
import { UsageError } from "../base/errors.js";
import { figuresBySubmission } from "../report/figures.js";
import { formatMb } from "../report/summary.js";
import { formatClock, suggest, type Spread, type Suggestion } from "../report/right-size.js";
import { requestCaps } from "../slurm/packing.js";
import { sharedScheduler, type ClusterLimits } from "../slurm/scheduler.js";
import { isUnreachable } from "../transport/transport.js";
import { openFolder } from "./folder.js";
import { parse } from "./options.js";

/** One submission's suggestion, as `suggest` prints it. */
function describe(id: string, s: Suggestion, capsKnown: boolean): string {
  const lines = [
    `${id}: ${s.tasks} task${s.tasks === 1 ? "" : "s"} ended, ${s.measured} measured${s.outOfMemory ? `, ${s.outOfMemory} OUT_OF_MEMORY` : ""}${s.timedOut ? `, ${s.timedOut} TIMEOUT` : ""}`,
  ];
  const row = (name: string, spread: Spread | undefined, show: (x: number) => string, asked: string | undefined) => {
    if (!spread) return;
    lines.push(`  ${name.padEnd(12)}p50 ${show(spread.p50).padEnd(9)} p95 ${show(spread.p95).padEnd(9)} max ${show(spread.max).padEnd(9)}${asked ? ` asked ${asked}` : ""}`);
  };
  const r = s.requested;
  row("wall time", s.wallSeconds, (x) => formatClock(x), r?.timeSeconds !== undefined ? formatClock(r.timeSeconds) : undefined);
  row("CPUs busy", s.busyCpus, (x) => x.toFixed(2), r ? String(r.cpus) : undefined);
  row("peak memory", s.memPeakMb, formatMb, r?.memMb !== undefined ? formatMb(r.memMb) : undefined);
  if (s.flags.length) {
    lines.push(`  next time:  --slurm ${s.flags.join(" ")}`);
    lines.push(`              ${optionsText(s.options)}`);
  }
  for (const note of s.notes) lines.push(`  note: ${note}`);
  if (!capsKnown && s.flags.length) lines.push("  note: the partition's limits could not be read here, so nothing is capped by them");
  return `${lines.join("\n")}\n`;
}

/** Executor options as a TypeScript object literal. */
function optionsText(options: Suggestion["options"]): string {
  const parts = Object.entries(options).map(([k, v]) => `${k}: ${typeof v === "string" ? JSON.stringify(v) : v}`);
  return `{ ${parts.join(", ")} }`;
}

/**
 * `slurmkit suggest <folder>`: per submission, what its ended tasks used
 * (percentiles of wall time, CPUs kept busy and peak memory) and what to ask
 * for next time, as `--slurm` pairs and as executor options, with seff-like
 * notes where little of a request was used.
 */
export async function suggestCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("suggest", args, {});
  if (positionals.length > 1) throw new UsageError(`slurmkit suggest takes one folder, got ${plural(positionals.length, "argument")}`);
  const folder = await openFolder(positionals[0], values, "suggest", true);
  try {
    // The partition's MaxTime and largest node cap the suggestion, where the cluster answers.
    const limits = await sharedScheduler(folder.transport)
      .limits()
      .catch((error: unknown): ClusterLimits | undefined => {
        if (isUnreachable(error)) throw error;
        return undefined;
      });
    const out = figuresBySubmission(folder.jobs, folder.parts).map(({ id, requested, figures }) => ({
      id,
      suggestion: suggest(figures, requested, limits ? requestCaps(requested?.partition, limits) : {}),
    }));
    if (values.json) process.stdout.write(`${JSON.stringify({ submissions: out.map(({ id, suggestion }) => ({ id, ...suggestion })) })}\n`);
    else process.stdout.write(out.map(({ id, suggestion }) => describe(id, suggestion, limits !== undefined)).join("\n"));
    return 0;
  } finally {
    folder.close();
  }
}
