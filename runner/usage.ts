import childProcess, { ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import type { UsageRecord } from "../src/protocol/records.js";
import { GpuSampler, visibleGpus, type GpuUsage } from "./gpu.js";
import { memoryMeasure, ownCgroupDir, parseStatChildrenTicks, sampleTrees, TICKS_PER_SECOND, type MemoryMeasure } from "./memory.js";
import { adoptedPids, containerCpuMs } from "./container.js";

// What a task uses, measured where it runs: CPU time from /proc/<pid>/stat,
// peak memory from samples of its process tree, and its GPUs from nvidia-smi.
// A worker measures its slots' tasks (worker.ts); an element's runner measures
// its own task with an ElementMeter.

/** How often a running task's memory (and a worker's view of its CPU) is sampled. */
export const USAGE_SAMPLE_MS = 500;

/** CPU milliseconds in one clock tick of /proc. */
export const MS_PER_TICK = 1000 / TICKS_PER_SECOND;

/** Whether this process started a child, or one ended, since /proc was last read; and how many it has running. */
let childrenChanged = true;
let childrenRunning = 0;
let hooked = false;

/**
 * Notes each child this process starts (ChildProcess covers spawn, exec,
 * execFile, fork and execa) and each that ends, and each synchronous
 * spawnSync, execSync or execFileSync: only then can its children's CPU time
 * have changed.
 */
function watchChildren(): void {
  if (hooked) return;
  hooked = true;
  // Not in Node's types, but what every asynchronous start goes through.
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
    const result = spawn.apply(this, args);
    childrenChanged = true;
    // A program that could not start has no pid, and no exit to wait for.
    if (this.pid !== undefined) {
      childrenRunning++;
      this.once("exit", () => {
        childrenChanged = true;
        childrenRunning--;
      });
    }
    return result;
  };
  const sync = childProcess as unknown as Record<"spawnSync" | "execSync" | "execFileSync", (...args: unknown[]) => unknown>;
  for (const name of ["spawnSync", "execSync", "execFileSync"] as const) {
    const original = sync[name];
    sync[name] = (...args: unknown[]) => {
      try {
        return original(...args);
      } finally {
        childrenChanged = true;
      }
    };
  }
  // Task modules that import { execSync } from "node:child_process" get the wrapped ones.
  syncBuiltinESMExports();
}

/**
 * This process's CPU time in ms: its own user and system time
 * (process.cpuUsage, µs), and that of the children it reaped (cutime and
 * cstime of /proc/self/stat, in 10 ms ticks). /proc is read only when a
 * child started or ended since the last read, or one is running, or half a
 * second passed: a function task that starts none costs about 1 µs, not 5.
 */
export class OwnCpu {
  #fd: number | undefined;
  readonly #buf = Buffer.allocUnsafe(1024);
  #childrenMs = 0;
  #readAt = Number.NEGATIVE_INFINITY;

  constructor() {
    watchChildren();
  }

  /** The ms so far; undefined where there is no /proc. */
  ms(): number | undefined {
    const own = process.cpuUsage();
    const now = performance.now();
    if (childrenChanged || childrenRunning > 0 || now - this.#readAt > USAGE_SAMPLE_MS) {
      childrenChanged = false;
      try {
        this.#fd ??= openSync("/proc/self/stat", "r");
        const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
        const ticks = parseStatChildrenTicks(this.#buf.toString("latin1", 0, n));
        if (ticks === undefined) return undefined;
        this.#childrenMs = ticks * MS_PER_TICK;
        this.#readAt = now;
      } catch {
        return undefined;
      }
    }
    return (own.user + own.system) / 1000 + this.#childrenMs + containerCpuMs();
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** A process's peak resident set (VmHWM, KiB) from /proc/<pid>/status. */
export function peakResidentKb(pid: number | "self"): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How an element's memory is counted, as its worker would count it: what its
 * memory cgroup charges when the cgroup's limit is about the element's `mem`
 * (SLURM_MEM_PER_NODE, or SLURM_MEM_PER_CPU × its CPUs), else resident sets.
 */
function elementMeasure(): MemoryMeasure {
  const env = process.env;
  const mb = Number(env.SLURM_MEM_PER_NODE) || Number(env.SLURM_MEM_PER_CPU) * (Number(env.SLURM_CPUS_ON_NODE) || 1);
  return mb > 0 ? memoryMeasure(mb, false) : "resident";
}

/**
 * What one element's task uses (one per element): the runner's CPU time
 * from start to stop (a command counts once the runner reaped it), and its
 * process tree's memory sampled every USAGE_SAMPLE_MS, at least its own peak
 * resident set (exact for a function task, which runs in the runner).
 */
export class ElementMeter {
  readonly #cpu = new OwnCpu();
  readonly #startMs: number | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #scope = ownCgroupDir();
  readonly #gpus: GpuSampler | undefined;
  readonly #gpu: (() => GpuUsage | undefined) | undefined;
  #peakKb = 0;
  #samples = 0;
  /** CPU ms the samples took, in this process. */
  #samplingMs = 0;
  #stopped: { usage: UsageRecord | undefined } | undefined;

  private readonly measure: MemoryMeasure = elementMeasure();

  constructor() {
    this.#startMs = this.#cpu.ms();
    this.#timer = setInterval(() => this.#sample(), USAGE_SAMPLE_MS);
    this.#timer.unref();
    this.#gpus = GpuSampler.start(process.env.CUDA_VISIBLE_DEVICES);
    this.#gpu = this.#gpus?.track(visibleGpus(process.env.CUDA_VISIBLE_DEVICES));
  }

  #sample(): void {
    // The sample runs in the task's own process (a function task's): its CPU is slurmkit's, and is taken off the task's.
    const before = process.cpuUsage();
    // Its nvidia-smi is slurmkit's, not the task's.
    const adopted = adoptedPids();
    const tree = sampleTrees([process.pid], this.measure, this.#scope, this.#gpus?.pid, adopted.length ? new Map([[process.pid, adopted]]) : undefined).get(process.pid);
    const spent = process.cpuUsage(before);
    this.#samplingMs += (spent.user + spent.system) / 1000;
    if (!tree) return;
    this.#samples++;
    this.#peakKb = Math.max(this.#peakKb, tree.kb);
  }

  /** Stops sampling, and says what the task used; undefined where /proc cannot be read. */
  stop(): UsageRecord | undefined {
    this.#stopped ??= { usage: this.#measure() };
    return this.#stopped.usage;
  }

  #measure(): UsageRecord | undefined {
    clearInterval(this.#timer);
    const endMs = this.#cpu.ms();
    this.#cpu.close();
    const gpu = this.#gpu?.();
    this.#gpus?.close();
    if (endMs === undefined || this.#startMs === undefined) return undefined;
    const own = this.measure === "resident" ? peakResidentKb("self") : undefined;
    const memKb = Math.max(this.#peakKb, own ?? 0);
    return {
      cpuMs: Math.round(Math.max(0, endMs - this.#startMs - this.#samplingMs)),
      ...(memKb > 0 ? { memKb } : {}),
      memSamples: this.#samples + (own !== undefined ? 1 : 0),
      ...(gpu ? { gpu } : {}),
    };
  }
}
