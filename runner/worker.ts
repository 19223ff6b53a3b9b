import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { createExclusive, writeFileAtomic } from "../src/protocol/atomic.js";
import { packr } from "../src/protocol/codec.js";
import type { ClaimFile, ResultFile } from "../src/protocol/records.js";
import type { RunFolder } from "../src/protocol/run-folder.js";
import { readSpecCount } from "../src/protocol/spec-file.js";
import { dependencyGate } from "./after.js";
import { HOST, jobIdOf } from "./node.js";
import { allowedCpus, shareSlots, type SlotShare } from "./resources.js";
import type { FromSlot, ToSlot } from "./slot.js";

/** How a worker element was started (from the runner's argv). */
export interface WorkerOptions {
  /** Task slots in this element; each has one task's resources. */
  readonly slots: number;
  /** One task's CPUs (the element has slots times that). */
  readonly cpusPerTask: number;
  /** One task's time limit in seconds, enforced here; undefined for none. */
  readonly taskTimeSeconds: number | undefined;
  /** This element's own time limit in seconds; no task starts that could not finish within it. */
  readonly walltimeSeconds: number | undefined;
  /** The worker's number in its submission (array offset + SLURM_ARRAY_TASK_ID), and how many there were at first. */
  readonly workerIndex: number;
  readonly workerCount: number;
}

/** How long a stopped task gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 10_000;
/** How often running tasks are checked for their time limit and cancel requests. */
const CHECK_MS = 500;
/** Between Slurm starting the element and its script recording the start: a task needs this much more walltime left. */
const START_SLACK_MS = 15_000;

interface Slot {
  readonly number: number;
  readonly share: SlotShare;
  child: ChildProcess | undefined;
  /** The task it runs, when it runs one. */
  task: { readonly index: number; startedAt: number; stopping?: "TIMEOUT" | "CANCELLED" } | undefined;
  /** Resolves when the slot finishes its task (or its process ends). */
  idle: Promise<void>;
  release: () => void;
  /** Resolves once the slot's process listens for tasks. */
  ready: Promise<void>;
  /** The SIGKILL that follows a SIGTERM that stopped a task, cleared when the process ends. */
  kill: NodeJS.Timeout | undefined;
}

/**
 * A worker element of a packed submission: it claims tasks from the run
 * folder one at a time (an exclusive create of `claims/<i>`, so no task runs
 * twice) and runs each in one of its slots, a process with one task's share of
 * the element's GPUs and CPUs. It starts a task only while its remaining
 * walltime covers the task's time limit, stops a task that outlives that limit
 * (TIMEOUT) or that the client cancels (CANCELLED), and ends when no task is
 * left to claim. Returns the exit code: 0 when every task it ran succeeded.
 */
export async function runWorker(folder: RunFolder, o: WorkerOptions): Promise<number> {
  const count = await readSpecCount(folder.spec);
  const workerId = jobIdOf(process.env);
  const startedAt = Number(process.env.SLURMKIT_ELEMENT_START) * 1000 || Date.now();
  const deadline = o.walltimeSeconds === undefined ? Infinity : startedAt + o.walltimeSeconds * 1000;
  await Promise.all([folder.stateDir, folder.resultsDir, folder.claimsDir].map((d) => mkdir(d, { recursive: true })));
  const shares = shareSlots(o.slots, o.cpusPerTask, process.env.CUDA_VISIBLE_DEVICES, allowedCpus());
  const taskset = shares.some((s) => s.cpus) && spawnSync("taskset", ["--version"]).status === 0;
  const claims = claimOrder(count, o.workerIndex, o.workerCount);
  // A requeued worker (same id, SLURM_RESTART_COUNT > 0) runs again the tasks it had taken and not finished.
  const rerun = Number(process.env.SLURM_RESTART_COUNT ?? "0") > 0 ? await unfinishedClaims(folder, workerId) : [];
  let failed = 0;
  let terminated: NodeJS.Signals | undefined;

  const slots: Slot[] = shares.map((share, number) => ({ number, share, child: undefined, task: undefined, idle: Promise.resolve(), release: () => undefined, ready: Promise.resolve(), kill: undefined }));
  const start = (slot: Slot) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SLURMKIT_WORKER_ID: workerId,
      SLURMKIT_SLOT: String(slot.number),
      // What one task gets, not what the element holds.
      SLURM_CPUS_PER_TASK: String(o.cpusPerTask),
    };
    if (slot.share.gpus) env.CUDA_VISIBLE_DEVICES = env.GPU_DEVICE_ORDINAL = slot.share.gpus.join(",");
    // This same runner program (installed, or its bundle in the executor's code/ folder).
    const argv = [...process.execArgv, process.argv[1]!, folder.dir, "--slot"];
    const [program, args] = taskset && slot.share.cpus ? ["taskset", ["-c", slot.share.cpus.join(","), process.execPath, ...argv]] : [process.execPath, argv];
    // Its own process group, so that stopping a task stops whatever the task started.
    const child = spawn(program, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], env, detached: true });
    slot.child = child;
    let listening: () => void = () => undefined;
    slot.ready = new Promise((resolve) => (listening = resolve));
    // A slot that is going away must not crash the worker: its exit settles its task.
    child.on("error", () => undefined);
    child.on("message", (m: FromSlot) => {
      if ("ready" in m) return listening();
      if (slot.task?.index !== m.done) return;
      if (!m.ok) failed++;
      // A process told to stop is never reused: its exit (ended) frees the slot, and a new process takes the next task.
      if (slot.task.stopping) return;
      slot.task = undefined;
      slot.release();
    });
    child.once("exit", (code, signal) => {
      listening();
      void ended(slot, child, code, signal);
    });
  };

  /** A slot's process ended: record what became of its task, and start a new process if work remains. */
  const ended = async (slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (slot.child !== child) return;
    slot.child = undefined;
    clearTimeout(slot.kill);
    const task = slot.task;
    slot.task = undefined;
    // Slurm signals every process of the job, the slots maybe before this worker: give its handler a moment.
    const interrupted = signal === "SIGTERM" || signal === "SIGINT" || code === 143 || code === 130;
    if (interrupted && terminated === undefined && !task?.stopping) await new Promise((r) => setTimeout(r, 500));
    const killedBySlurm = !task?.stopping && terminated !== undefined;
    // A task that wrote its result just before it was stopped keeps it.
    if (task && !killedBySlurm && !existsSync(folder.result(task.index))) {
      const state = task.stopping;
      const limit = o.taskTimeSeconds;
      const message =
        state === "TIMEOUT"
          ? `Task ${task.index} ran past its time limit of ${limit} s and was stopped`
          : state === "CANCELLED"
            ? `Task ${task.index} was cancelled while it ran`
            : `Task ${task.index}'s process ended ${signal ? `by ${signal}` : `with exit code ${code}`} before it wrote a result`;
      failed++;
      await writeResult(folder, task.index, { host: HOST, jobId: workerId, startedAt: task.startedAt }, message, state);
    }
    slot.release();
  };

  const stopTask = (slot: Slot, why: "TIMEOUT" | "CANCELLED") => {
    if (!slot.task || slot.task.stopping || !slot.child?.pid) return;
    slot.task.stopping = why;
    const pid = slot.child.pid;
    killGroup(pid, "SIGTERM");
    slot.kill = setTimeout(() => killGroup(pid, "SIGKILL"), KILL_GRACE_MS);
    slot.kill.unref();
  };

  const onSignal = (signal: NodeJS.Signals) => {
    terminated ??= signal;
    for (const slot of slots) if (slot.child?.pid) killGroup(slot.child.pid, signal);
  };
  process.on("SIGTERM", onSignal).on("SIGINT", onSignal);

  // Checks running tasks against their time limit and the client's cancel requests.
  const checker = setInterval(() => {
    for (const slot of slots) {
      const task = slot.task;
      if (!task) continue;
      if (o.taskTimeSeconds !== undefined && Date.now() - task.startedAt > o.taskTimeSeconds * 1000) stopTask(slot, "TIMEOUT");
      else if (existsSync(folder.cancel(task.index))) stopTask(slot, "CANCELLED");
    }
  }, CHECK_MS);

  const runOn = async (slot: Slot): Promise<void> => {
    for (;;) {
      if (terminated) return;
      if (o.taskTimeSeconds !== undefined && deadline - Date.now() < o.taskTimeSeconds * 1000 + START_SLACK_MS) return;
      const index = rerun.shift() ?? (await claimNext(folder, claims, { worker: workerId, slot: slot.number, host: HOST, at: Date.now() }));
      if (index === undefined || terminated) return;
      const meta = { host: HOST, jobId: workerId, startedAt: Date.now() };
      if (existsSync(folder.cancel(index))) {
        await writeResult(folder, index, meta, `Task ${index} was cancelled before it started`, "CANCELLED");
        continue;
      }
      // Tasks it runs after: checked here, before the task's own time starts.
      const blocked = await dependencyGate(folder);
      if (blocked !== undefined) {
        await writeResult(folder, index, meta, blocked, "CANCELLED");
        continue;
      }
      if (!slot.child) start(slot);
      slot.idle = new Promise((resolve) => (slot.release = resolve));
      slot.task = { index, startedAt: Date.now() };
      await slot.ready;
      // The slot's process may have ended while it started (and its task with it).
      if (slot.task?.index !== index || !slot.child?.connected) {
        await slot.idle;
        continue;
      }
      // The task's time starts when its slot can run it, not while a new slot process starts.
      slot.task.startedAt = Date.now();
      slot.child.send({ run: index } satisfies ToSlot, () => undefined);
      await slot.idle;
    }
  };
  await Promise.all(slots.map(runOn));
  clearInterval(checker);
  for (const slot of slots) slot.child?.send({ exit: true } satisfies ToSlot);
  if (terminated) {
    process.stderr.write(`slurmkit runner: worker ${workerId} terminated by ${terminated}; its running tasks have no result\n`);
    return terminated === "SIGINT" ? 130 : 143;
  }
  return failed ? 1 : 0;
}

/**
 * The order in which a worker tries tasks: from its own part of the list
 * (worker w of W starts at w·N/W) round to the start, so that workers rarely
 * try the same claim, and a worker that is done with its part takes others'.
 */
export function claimOrder(count: number, workerIndex: number, workerCount: number): { next: number; readonly count: number; tried: number } {
  const first = workerCount > 0 ? Math.floor(((workerIndex % workerCount) * count) / workerCount) : 0;
  return { next: first, count, tried: 0 };
}

/** Claims the next task not claimed yet; undefined when every task is claimed. */
export async function claimNext(folder: RunFolder, order: { next: number; count: number; tried: number }, claim: ClaimFile): Promise<number | undefined> {
  const bytes = packr.pack(claim);
  while (order.tried < order.count) {
    const index = order.next;
    order.next = (order.next + 1) % order.count;
    order.tried++;
    if (await createExclusive(folder.claim(index), bytes)) return index;
  }
  return undefined;
}

/** The result of a task that the worker, not the task, ended. */
async function writeResult(folder: RunFolder, index: number, meta: { host: string; jobId: string; startedAt: number }, message: string, state?: "TIMEOUT" | "CANCELLED"): Promise<void> {
  const result: ResultFile = {
    ok: false,
    ...(state ? { state } : {}),
    error: { name: state === "TIMEOUT" ? "TaskTimeout" : state === "CANCELLED" ? "TaskCancelled" : "TaskProcessDied", message, stack: message },
    ...meta,
    endedAt: Date.now(),
  };
  await writeFileAtomic(folder.result(index), packr.pack(result));
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Tasks this worker claimed in an earlier run that have no result. */
async function unfinishedClaims(folder: RunFolder, workerId: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir(folder.claimsDir).catch(() => [] as string[])) {
    const index = Number(name);
    if (!Number.isInteger(index) || existsSync(folder.result(index))) continue;
    const claim = await readFile(folder.claim(index)).then((b) => packr.unpack(b) as ClaimFile, () => undefined);
    if (claim?.worker === workerId) out.push(index);
  }
  return out.sort((a, b) => a - b);
}
