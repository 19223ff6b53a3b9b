import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { UsageRecord } from "../src/protocol/records.js";

// A task's GPUs, sampled with nvidia-smi while it runs: one nvidia-smi per
// element (a worker's serves all its slots), each sample dispatched to the
// tasks that hold that GPU.

/** How often nvidia-smi samples the GPUs (ms): its utilisation is the share of the last period a kernel ran. */
export const GPU_SAMPLE_MS = 1000;

/** The query, one line per GPU per sample: `index, uuid, utilization.gpu, memory.used`. */
export const GPU_QUERY = ["--query-gpu=index,uuid,utilization.gpu,memory.used", "--format=csv,noheader,nounits"] as const;

/** One line of nvidia-smi's answer to GPU_QUERY. */
export interface GpuSample {
  readonly index: string;
  readonly uuid: string;
  /** Percent of the sample period a kernel ran; undefined where nvidia-smi says `[N/A]` or `[Not Supported]` (MIG, some GPUs). */
  readonly utilPct: number | undefined;
  /** Memory in use on the GPU, MiB, by every process on it; undefined where not shown. */
  readonly memMb: number | undefined;
}

/** A figure of nvidia-smi's CSV (`45`, `45 %`, `1234 MiB`); undefined for `[N/A]`, `[Not Supported]`, `[Insufficient Permissions]` and any other bracketed word. */
export function parseGpuFigure(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(?:\s*(?:%|MiB))?$/.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}

/** One line of GPU_QUERY's output; undefined for a line that is not one (a warning nvidia-smi printed, an empty line). */
export function parseGpuLine(line: string): GpuSample | undefined {
  const fields = line.split(",").map((f) => f.trim());
  if (fields.length !== 4 || !/^\d+$/.test(fields[0]!) || fields[1] === "") return undefined;
  return { index: fields[0]!, uuid: fields[1]!, utilPct: parseGpuFigure(fields[2]!), memMb: parseGpuFigure(fields[3]!) };
}

/** What one task's GPUs did while it ran, as its usage records it. */
export type GpuUsage = NonNullable<UsageRecord["gpu"]>;

/** Samples of some GPUs, summed as a task's usage: mean utilisation over them, and the peak of each one's memory, added up. */
export class GpuTally {
  readonly #devices: ReadonlySet<string>;
  readonly #peakMb = new Map<string, number>();
  #utilSum = 0;
  #utilCount = 0;
  #lines = 0;

  constructor(devices: readonly string[]) {
    this.#devices = new Set(devices);
  }

  /** Takes one sample line if it is one of this task's GPUs (by index or UUID, as CUDA_VISIBLE_DEVICES names them). */
  add(s: GpuSample): void {
    const key = this.#devices.has(s.index) ? s.index : this.#devices.has(s.uuid) ? s.uuid : undefined;
    if (key === undefined) return;
    this.#lines++;
    if (s.utilPct !== undefined) {
      this.#utilSum += s.utilPct;
      this.#utilCount++;
    }
    if (s.memMb !== undefined) this.#peakMb.set(key, Math.max(this.#peakMb.get(key) ?? 0, s.memMb));
  }

  /** The usage so far; undefined when no sample of its GPUs came. A figure no sample showed (MIG shows no utilisation) is left out. */
  usage(): GpuUsage | undefined {
    if (this.#lines === 0) return undefined;
    return {
      count: this.#devices.size,
      ...(this.#utilCount ? { utilPct: Math.round((this.#utilSum / this.#utilCount) * 10) / 10 } : {}),
      ...(this.#peakMb.size ? { memMb: [...this.#peakMb.values()].reduce((a, b) => a + b, 0) } : {}),
      samples: Math.ceil(this.#lines / this.#devices.size),
    };
  }
}

/** The GPUs CUDA_VISIBLE_DEVICES names (indices or UUIDs); empty when it names none. */
export function visibleGpus(cuda: string | undefined): string[] {
  return (cuda ?? "")
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "" && d !== "NoDevFiles" && d !== "-1");
}

/**
 * One nvidia-smi sampling every GPU_SAMPLE_MS, until `close()`. Tasks
 * `track` their GPUs. Where nvidia-smi is missing or fails, nothing is
 * recorded and the tasks run as before.
 */
export class GpuSampler {
  readonly #child: ChildProcess;
  readonly #tallies = new Set<GpuTally>();

  private constructor() {
    this.#child = spawn("nvidia-smi", [...GPU_QUERY, `--loop-ms=${GPU_SAMPLE_MS}`], { stdio: ["ignore", "pipe", "ignore"] });
    this.#child.on("error", () => undefined);
    this.#child.unref();
    const lines = createInterface({ input: this.#child.stdout! });
    lines.on("line", (line) => {
      const sample = parseGpuLine(line);
      if (sample) for (const tally of this.#tallies) tally.add(sample);
    });
    (this.#child.stdout as unknown as { unref?: () => void }).unref?.();
  }

  /** nvidia-smi's pid (not the task's: left out of the task's processes). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** A sampler where the element has GPUs (CUDA_VISIBLE_DEVICES), else undefined. */
  static start(cuda: string | undefined): GpuSampler | undefined {
    return visibleGpus(cuda).length ? new GpuSampler() : undefined;
  }

  /** Counts samples of `devices` from now until the returned function is called; it gives their usage. */
  track(devices: readonly string[]): () => GpuUsage | undefined {
    const tally = new GpuTally(devices);
    this.#tallies.add(tally);
    return () => {
      this.#tallies.delete(tally);
      return tally.usage();
    };
  }

  close(): void {
    this.#child.kill("SIGTERM");
  }
}
