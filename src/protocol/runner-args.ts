// The runner's command line after `runner.js <run folder>`: the plan writes
// it, a worker writes its slots', and the runner reads it. Every default is here.
import { constants } from "node:os";
import { DEFAULT_MAX_REQUEUES } from "./task-record.js";
import { decodeContainerArg, encodeContainerArg, type ContainerRecord } from "./container.js";

/** What the runner assumes for an option its command line leaves out. */
export const RUNNER_DEFAULTS = {
  workers: 1,
  slots: 1,
  cpusPerTask: 1,
  /** Seconds before a task's own limit that a worker passes Slurm's warning on (Slurm's own default for `--signal`). */
  warnSeconds: 60,
  maxRequeues: DEFAULT_MAX_REQUEUES,
} as const;

/** Slurm's warning, as the runner handles it: the signal, when a worker passes it on, and how often a task may requeue. */
export interface WarningArgs {
  /** The signal's name, such as "SIGUSR2". */
  readonly signal: NodeJS.Signals;
  readonly warnSeconds: number;
  readonly maxRequeues: number;
  /** Every command gets the signal (the user asked for one), not only commands with `requeue`. */
  readonly forwardAll: boolean;
}

/** A worker element's shape. */
export interface WorkerArgs {
  /** The first worker number of its array (the element's own is this + its array index). */
  readonly firstWorker: number;
  readonly workers: number;
  readonly slots: number;
  readonly cpusPerTask: number;
  /** Each task's time limit. */
  readonly taskTimeSeconds?: number | undefined;
  /** The element's own walltime. */
  readonly walltimeSeconds?: number | undefined;
  /** Each task's memory. */
  readonly taskMemMb?: number | undefined;
  /** The node counts memory as proportional set sizes. */
  readonly taskMemPss: boolean;
}

/** What the runner is told to do; `container`: the submission's, which its command tasks run in. */
export type RunnerArgs = (
  | { readonly mode: "task"; readonly elementOffset?: number | undefined; readonly warning?: WarningArgs | undefined }
  | { readonly mode: "worker"; readonly worker: WorkerArgs; readonly warning?: WarningArgs | undefined }
  | { readonly mode: "slot"; readonly warning?: WarningArgs | undefined }
) & { readonly container?: ContainerRecord | undefined };

/** The runner's usage line, for its error messages. */
export const RUNNER_USAGE =
  "runner.js <run folder> [--element-offset O | --worker W --workers N --slots K --cpus-per-task C [--task-time T] [--walltime S] [--task-mem M [--task-mem-pss]] | --slot] [--warning SIG [--warn-seconds S] [--max-requeues N] [--forward-warning]] [--container RECORD]";

/** The command line for `args`: every value given, in a fixed order (the warning's lead time only for a worker and its slots, which use it). */
export function encodeRunnerArgs(args: RunnerArgs): string[] {
  const out: string[] = [];
  const num = (name: string, value: number | undefined) => {
    if (value !== undefined) out.push(name, String(value));
  };
  if (args.mode === "slot") out.push("--slot");
  if (args.mode === "task") num("--element-offset", args.elementOffset);
  if (args.mode === "worker") {
    const w = args.worker;
    num("--worker", w.firstWorker);
    num("--workers", w.workers);
    num("--slots", w.slots);
    num("--cpus-per-task", w.cpusPerTask);
    num("--task-time", w.taskTimeSeconds);
    num("--walltime", w.walltimeSeconds);
    num("--task-mem", w.taskMemMb);
    if (w.taskMemPss) out.push("--task-mem-pss");
  }
  if (args.warning) {
    out.push("--warning", args.warning.signal.replace(/^SIG/, ""));
    if (args.mode !== "task") num("--warn-seconds", args.warning.warnSeconds);
    num("--max-requeues", args.warning.maxRequeues);
    if (args.warning.forwardAll) out.push("--forward-warning");
  }
  if (args.container) out.push("--container", encodeContainerArg(args.container));
  return out;
}

/** Options that describe a worker element, and nothing else. */
const WORKER_ONLY = new Set(["--workers", "--slots", "--cpus-per-task", "--task-time", "--walltime", "--task-mem", "--task-mem-pss"]);

/** Reads the runner's options (the arguments after the run folder); throws an Error naming what is wrong. */
export function decodeRunnerArgs(argv: readonly string[]): RunnerArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const valued = new Set([
    "--element-offset",
    "--worker",
    "--workers",
    "--slots",
    "--cpus-per-task",
    "--task-time",
    "--walltime",
    "--task-mem",
    "--warning",
    "--warn-seconds",
    "--max-requeues",
    "--container",
  ]);
  const bare = new Set(["--slot", "--task-mem-pss", "--forward-warning"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (valued.has(a)) {
      if (i + 1 >= argv.length) throw new Error(`Bad runner option ${a}: expected a value after it. Usage: ${RUNNER_USAGE}`);
      values.set(a, argv[++i]!);
    } else if (bare.has(a)) flags.add(a);
    else throw new Error(`Unknown runner option '${a}'. Usage: ${RUNNER_USAGE}`);
  }
  const int = (name: string): number | undefined => {
    const text = values.get(name);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new Error(`Bad ${name} '${text}': expected a non-negative integer`);
    return value;
  };
  for (const name of values.keys()) if (name !== "--warning" && name !== "--container") int(name);
  const word = values.get("--container");
  const container = word === undefined ? undefined : decodeContainerArg(word);
  const warning = warningArgs(values.get("--warning"), int("--warn-seconds"), int("--max-requeues"), flags.has("--forward-warning"));
  const firstWorker = int("--worker");
  const workerOnly = [...values.keys(), ...flags].filter((name) => WORKER_ONLY.has(name));
  if (firstWorker === undefined && workerOnly.length) throw new Error(`Bad runner options: ${workerOnly.join(", ")} only go with --worker. Usage: ${RUNNER_USAGE}`);
  if (flags.has("--slot")) return { mode: "slot", warning, container };
  if (firstWorker === undefined) return { mode: "task", elementOffset: int("--element-offset"), warning, container };
  return {
    mode: "worker",
    worker: {
      firstWorker,
      workers: int("--workers") ?? RUNNER_DEFAULTS.workers,
      slots: int("--slots") ?? RUNNER_DEFAULTS.slots,
      cpusPerTask: int("--cpus-per-task") ?? RUNNER_DEFAULTS.cpusPerTask,
      taskTimeSeconds: int("--task-time"),
      walltimeSeconds: int("--walltime"),
      taskMemMb: int("--task-mem"),
      taskMemPss: flags.has("--task-mem-pss"),
    },
    warning,
    container,
  };
}

function warningArgs(name: string | undefined, warnSeconds: number | undefined, maxRequeues: number | undefined, forwardAll: boolean): WarningArgs | undefined {
  if (name === undefined) return undefined;
  if (!/^[A-Z0-9]+$/.test(name) || !(`SIG${name}` in constants.signals)) throw new Error(`Bad --warning '${name}': expected a signal name such as USR2`);
  return {
    signal: `SIG${name}` as NodeJS.Signals,
    warnSeconds: warnSeconds ?? RUNNER_DEFAULTS.warnSeconds,
    maxRequeues: maxRequeues ?? RUNNER_DEFAULTS.maxRequeues,
    forwardAll,
  };
}
