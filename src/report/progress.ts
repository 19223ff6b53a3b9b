import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import type { Job } from "../core/job.js";
import { LiveLines } from "./live.js";
import { progressLine, summarize, type Style } from "./summary.js";
import { viewsOf } from "./views.js";

/** Options of progress(). */
export interface ProgressOptions {
  /** Where to draw. @default process.stderr */
  readonly stream?: NodeJS.WriteStream;
  /** How often to redraw, in ms. @default 1000 */
  readonly intervalMs?: number;
}

/** A progress display; it stops by itself once every job has ended. */
export interface Progress {
  /** Stops drawing now (the last lines stay on screen). */
  stop(): void;
  /**
   * Resolves when the display stopped: every job ended, or stop() was called.
   * Awaiting it waits for the jobs, and keeps the process alive until then.
   */
  readonly stopped: Promise<void>;
}

/** How a stream is drawn on: only a TTY, never under CI, colour unless NO_COLOR. */
export function styleOf(stream: NodeJS.WriteStream): Style {
  const tty = stream.isTTY === true;
  return { tty, color: tty && !process.env.NO_COLOR };
}

/**
 * Draws one line per submission on stderr, redrawn in place as the jobs
 * move: done/total, running, pending, failed, and an ETA from the completed
 * tasks' durations (as `slurmkit watch` does). It draws only when the stream
 * is a TTY and `CI` is not set, and is silent otherwise. It never writes to
 * stdout, and output the script writes meanwhile goes above the line. It does
 * not keep the process alive; waiting on the jobs does.
 *
 * @example
 * const jobs = await executor.mapArray(tasks);
 * progress(jobs);
 * const results = await Promise.all(jobs.map((j) => j.result()));
 */
export function progress(jobs: readonly Job<unknown>[], options: ProgressOptions = {}): Progress {
  checkOptions("progress options", options, {
    stream: accepts.or(
      z.custom((v) => typeof v === "object" && v !== null && typeof (v as { write?: unknown }).write === "function"),
      "a writable stream such as process.stderr",
    ),
    intervalMs: accepts.or(z.number().positive(), "a positive number of milliseconds"),
  } satisfies OptionShape<ProgressOptions>);
  const stream = options.stream ?? process.stderr;
  const style = styleOf(stream);
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  let waiting: Promise<void> | undefined;
  // Only a caller that awaits `stopped` waits on the jobs (which keeps the process alive).
  const handle = (stop: () => void): Progress => ({
    stop,
    get stopped() {
      if (!waiting) {
        const waits = new AbortController(); // released once stopped, so that they keep nothing alive after
        void ended.then(() => waits.abort());
        waiting = Promise.race([ended, Promise.allSettled(jobs.map((j) => j.wait({ signal: waits.signal }))).then(stop)]);
      }
      return waiting;
    },
  });
  if (!style.tty || process.env.CI || jobs.length === 0) return handle(finish);
  const live = new LiveLines(stream);
  const draw = () => live.draw(summarize(viewsOf(jobs)).map((s) => progressLine(s, style)));
  let done = false;
  const stop = () => {
    if (done) return;
    done = true;
    clearInterval(timer);
    process.off("exit", stop);
    process.off("SIGINT", interrupted);
    draw();
    live.stop();
    finish();
  };
  const timer = setInterval(() => (jobs.every((j) => j.done()) ? stop() : draw()), options.intervalMs ?? 1000);
  timer.unref();
  // A script that ends right after its last result still gets the final line, and its prompt on a line of its own.
  process.once("exit", stop);
  // Ctrl-C: end the line first, then die of SIGINT as the script would have (only when nothing else handles SIGINT).
  const interrupted = () => {
    stop();
    process.kill(process.pid, "SIGINT");
  };
  if (process.listenerCount("SIGINT") === 0) process.once("SIGINT", interrupted);
  draw();
  return handle(stop);
}
