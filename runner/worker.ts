// A worker element. About 450 lines: runWorker is one function whose steps
// (start a slot, run a task on it, stop it, warn it, check its memory,
// requeue) close over the same slots, claims and deadlines. What needs none of
// that is beside it: claims (claims.ts), memory (memory.ts), shares of GPUs
// and CPUs (resources.ts), and the slot process (slot.ts).
import { failedResult } from "../src/protocol/results.js";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { RunFolder } from "../src/protocol/run-folder.js";
import { readSpecCount } from "../src/protocol/spec-file.js";
import { encodeRunnerArgs, type WarningArgs } from "../src/protocol/runner-args.js";
import { dependencyGate } from "./after.js";
import type { Ending } from "../src/core/node-side.js";
import { SLOT_MARGIN_MB, WORKER_NODE_FLAGS, WORKER_OVERHEAD_MB } from "../src/protocol/worker-memory.js";
import { footprintKb, memoryMeasure, oomKillCounter, ownCgroupDir, sampleTrees } from "./memory.js";
import { HOST, jobIdOf, nodeSide } from "./node.js";
import { allowedCpus, shareSlots, type SlotShare } from "./resources.js";
import type { FromSlot, ToSlot } from "./slot.js";
import type { RecordMessage } from "./task-records.js";
import { Claims, type Taken } from "./claims.js";
import { WorkerRecords } from "./task-records.js";
import { submitNextRound } from "./rounds.js";
import { taskWarningDue } from "./attempts.js";
import { GpuSampler, type GpuUsage } from "./gpu.js";
import { MS_PER_TICK, USAGE_SAMPLE_MS } from "./usage.js";
import { killAdopted, submissionContainer } from "./container.js";
import { SIGNAL_GRACE_MS } from "./execute.js";
import type { UsageRecord } from "../src/protocol/records.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How a worker element was started (from the runner's argv). */
export interface WorkerOptions {
  /** Task slots in this element; each has one task's resources. */
  readonly slots: number;
  /** One task's CPUs (the element has slots times that). */
  readonly cpusPerTask: number;
  /** One task's time limit in seconds, enforced here; undefined for none. */
  readonly taskTimeSeconds: number | undefined;
  /** One task's memory in MiB, enforced here: a task whose processes hold more is stopped (OUT_OF_MEMORY); undefined for none. */
  readonly taskMemMb?: number | undefined;
  /** Slurm's gatherer counts proportional set sizes (UsePss): so does the worker, outside a memory cgroup. */
  readonly taskMemPss?: boolean;
  /** This element's own time limit in seconds; no task starts that could not finish within it. */
  readonly walltimeSeconds: number | undefined;
  /** The worker's number in its submission (array offset + its element's index), and how many there were at first. */
  readonly workerIndex: number;
  readonly workerCount: number;
  /** Slurm's warning (`--signal`): the worker passes it on to each task `warnSeconds` before the task's own limit, and a task that checkpoints is run again. */
  readonly warning?: WarningArgs | undefined;
  /** Whether Slurm's warning came before the worker listened for it. */
  readonly warnedEarly?: () => boolean;
}

/** A preempted worker requeues itself this long before Slurm's deadline, so that the requeue beats Slurm's TERM. */
const PREEMPT_CUT_MS = 8_000;
/** How long a stopped task gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 10_000;
/** How often running tasks are checked for their time limit and cancel requests. */
const CHECK_MS = 500;
/** Between Slurm starting the element and its script recording the start: a task needs this much more walltime left. */
const START_SLACK_MS = 15_000;

/** Why the worker stopped a task. */
type Stop = "TIMEOUT" | "CANCELLED" | "PREEMPTED" | "REQUEUED" | "OUT_OF_MEMORY";

interface Slot {
  readonly number: number;
  readonly share: SlotShare;
  child: ChildProcess | undefined;
  /** The task it runs, when it runs one. */
  task:
    | {
        readonly index: number;
        /** Its claim, when it came from one: handed back if it turns out never to have started. */
        readonly taken?: Taken | undefined;
        startedAt: number;
        stopping?: Stop;
        warned?: boolean;
        sent?: boolean;
        /** The kernel's OOM kills so far when the task started (oomKills). */
        oomKills?: number | undefined;
        /** What its slot process had grown by since it started, when the task started (KiB, at most SLOT_MARGIN_MB): not the task's. */
        carriedKb?: number;
        /** What its processes held when the worker stopped it over its `mem`, in KiB. */
        usedKb?: number;
        /** Its slot's CPU ms when it started (the slot's last report), and its tree's at the last sample (ms). */
        cpuStart?: number | undefined;
        cpuSeen?: number;
        /** The most its processes held at a sample (KiB, less carriedKb), and how many samples were taken. */
        peakKb?: number;
        samples: number;
        /** Its GPUs' samples, until called. */
        gpu?: (() => GpuUsage | undefined) | undefined;
        /** Its result, as its slot sent it: appended with its usage once the slot says it is done (or its process ended). */
        held?: RecordMessage | undefined;
      }
    | undefined;
  /** Resolves when the slot finishes its task (or its process ends). */
  idle: Promise<void>;
  release: () => void;
  /** Resolves once the slot's process listens for tasks. */
  ready: Promise<void>;
  /** The SIGKILL that follows a SIGTERM that stopped a task, cleared when the process ends. */
  kill: NodeJS.Timeout | undefined;
  /** What its process held when it was ready for its first task, in KiB, as the worker counts memory. */
  readyKb?: number | undefined;
  /** Without `mem`: what its process carried at the last read, and when (performance.now()), reused for half a second. */
  carried?: { kb: number; at: number } | undefined;
  /** Its process's CPU ms at its last report (ready, or a task done). */
  cpuMs?: number | undefined;
  /** Processes of its task outside its tree: podman's conmon, with the container under it. */
  adopted: number[];
  /** podman's clients of those containers: never killed (each removes its container once the processes inside ended). */
  clients: number[];
}

/**
 * A worker element of a packed submission: it claims tasks from the run
 * folder by blocks (an exclusive create of `claims/b<b>`, so no task runs
 * twice; claims.ts) and runs each in one of its slots, a process with one task's share of
 * the element's GPUs and CPUs. It starts a task only while its remaining
 * walltime covers the task's time limit, stops a task that outlives that limit
 * (TIMEOUT), whose processes hold more than its `mem` (OUT_OF_MEMORY), or that
 * the client cancels (CANCELLED), and ends when no task is
 * left to claim. Tasks of its blocks that it never started are handed back
 * (`releases/`) when it stops. Returns the exit code: 0 when every task it
 * ran succeeded.
 */
export async function runWorker(folder: RunFolder, o: WorkerOptions): Promise<number> {
  const workerId = jobIdOf(process.env);
  await Promise.all([folder.streamsDir, folder.claimsDir, folder.releasesDir, folder.wantsDir, folder.roundsDir].map((d) => mkdir(d, { recursive: true })));
  // Its tasks' states and results: one stream for this attempt of the worker, closed (flushed) however it ends.
  const records = await WorkerRecords.open(folder, workerId);
  try {
    return await work(folder, o, workerId, records);
  } finally {
    await records.close().catch((error: unknown) => process.stderr.write(`slurmkit runner: worker ${workerId} could not close its streams: ${(error as Error).message}\n`));
  }
}

async function work(folder: RunFolder, o: WorkerOptions, workerId: string, records: WorkerRecords): Promise<number> {
  const count = await readSpecCount(folder.spec);
  const startedAt = Number(process.env.SLURMKIT_ELEMENT_START) * 1000 || Date.now();
  const deadline = o.walltimeSeconds === undefined ? Infinity : startedAt + o.walltimeSeconds * 1000;
  /** Whether a task has its result: in this worker's stream, or (cancelled by the client, say) a result file. */
  const hasResult = (index: number) => records.hasResult(index) || existsSync(folder.result(index));
  const shares = shareSlots(o.slots, o.cpusPerTask, process.env.CUDA_VISIBLE_DEVICES, allowedCpus());
  const taskset = shares.some((s) => s.cpus) && spawnSync("taskset", ["--version"]).status === 0;
  const claims = new Claims(folder, count, o.workerIndex, o.workerCount, () => ({ worker: workerId, slot: 0, host: HOST, at: Date.now() }));
  const node = nodeSide();
  // A requeued worker (same id, restarted by the scheduler) runs again the tasks it had taken and not finished.
  /** Tasks that started before and are run again (they checkpointed, or this worker restarted): before any other. */
  // A scheduler that does not count restarts: a worker looks for claims of its own every time (none, when it is new).
  const restarted = node.environment(process.env).restarts > 0 || node.restartsUnknown === true;
  const rerun = restarted ? await claims.resume(hasResult) : [];
  const requeueable = node.requeueableJob(process.env);
  let failed = 0;
  let terminated: NodeJS.Signals | undefined;
  /** Set when the worker is being preempted: it starts no more tasks. */
  let draining = false;
  /** This worker's own requeue: asked, done, or the error Slurm gave. */
  let requeued: "asked" | "done" | string | undefined;

  const slots: Slot[] = shares.map((share, number) => ({
    number,
    share,
    child: undefined,
    task: undefined,
    idle: Promise.resolve(),
    release: () => undefined,
    ready: Promise.resolve(),
    kill: undefined,
    adopted: [],
    clients: [],
  }));
  // How the node counts memory, and so each task's: its cgroup's charge, or resident sets as Slurm's jobacct_gather/linux.
  const measure = o.taskMemMb === undefined ? undefined : memoryMeasure(o.slots * (o.taskMemMb + SLOT_MARGIN_MB) + WORKER_OVERHEAD_MB, o.taskMemPss === true);
  // The kernel's OOM kills that could be a task's: this element's cgroup's, or the machine's.
  const oomKills = oomKillCounter(measure);
  if (measure !== undefined) {
    const how = { resident: "as the sum of resident sets", proportional: "as the sum of proportional set sizes (UsePss)", charged: "as a memory cgroup charges it" }[measure];
    process.stderr.write(`slurmkit runner: worker ${workerId} holds each task to its mem of ${o.taskMemMb} MiB, counted ${how}\n`);
  }
  // What a task used is measured as its `mem` is enforced, or as Slurm's gatherer counts (resident sets) without one.
  const usageMeasure = measure ?? (o.taskMemPss === true ? "proportional" : "resident");
  // The processes a sample reads: this element's cgroup where there is one, else every process on the node.
  const scope = ownCgroupDir();
  // The element's GPUs, sampled by one nvidia-smi for every slot.
  const gpus = GpuSampler.start(process.env.CUDA_VISIBLE_DEVICES);
  let ownMemoryWarned = false;
  const start = (slot: Slot) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SLURMKIT_WORKER_ID: workerId,
      SLURMKIT_SLOT: String(slot.number),
      // What one task gets, not what the element holds.
      ...node.taskShare(o.cpusPerTask, o.taskMemMb),
      // How its worker counts memory, for a slot to tell when it has grown.
      ...(measure !== undefined ? { SLURMKIT_MEMORY_MEASURE: measure } : {}),
    };
    if (slot.share.gpus) {
      // The element's list too, for a container's devices to be named as the node names them.
      if (process.env.CUDA_VISIBLE_DEVICES !== undefined) env.SLURMKIT_ELEMENT_GPUS = process.env.CUDA_VISIBLE_DEVICES;
      env.CUDA_VISIBLE_DEVICES = env.GPU_DEVICE_ORDINAL = slot.share.gpus.join(",");
    }
    // This same runner program (installed, or its bundle in the executor's code/ folder), without the worker's own Node flags.
    const argv = [
      ...process.execArgv.filter((flag) => !WORKER_NODE_FLAGS.includes(flag)),
      process.argv[1]!,
      folder.dir,
      ...encodeRunnerArgs({ mode: "slot", warning: o.warning, container: submissionContainer() }),
    ];
    const [program, args] = taskset && slot.share.cpus ? ["taskset", ["-c", slot.share.cpus.join(","), process.execPath, ...argv]] : [process.execPath, argv];
    // Its own process group, so that stopping a task stops whatever the task started.
    const child = spawn(program, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], env, detached: true });
    slot.child = child;
    slot.carried = undefined;
    let listening: () => void = () => undefined;
    slot.ready = new Promise((resolve) => (listening = resolve));
    // A slot that is going away must not crash the worker: its exit settles its task.
    child.on("error", () => undefined);
    child.on("message", (m: FromSlot) => {
      if ("ready" in m) {
        if (child.pid !== undefined) slot.readyKb = footprintKb(child.pid, usageMeasure);
        slot.cpuMs = m.cpu;
        return listening();
      }
      if ("record" in m) {
        // A task's result waits for its `done` (the next message), to go to the stream with its usage in one record.
        if (m.kind === "result" && slot.task?.index === m.index && slot.task.sent && !slot.task.held) {
          slot.task.held = m;
          return;
        }
        return records.appendMessage(m);
      }
      if ("log" in m) return records.appendLog(m);
      if ("adopt" in m) {
        slot.adopted = m.joined ? [...slot.adopted, m.adopt] : slot.adopted.filter((p) => p !== m.adopt);
        if (m.client !== undefined) slot.clients = m.joined ? [...slot.clients, m.client] : slot.clients.filter((p) => p !== m.client);
        return;
      }
      // The task checkpointed: stop its process, and run it again (ended() queues it).
      if ("requeued" in m) return slot.task?.index === m.requeued ? stopTask(slot, "REQUEUED") : undefined;
      if (slot.task?.index !== m.done) return;
      if (!m.ok) failed++;
      const usage = usageOf(slot, slot.task, m.cpu);
      const held = slot.task.held;
      slot.task.held = undefined;
      if (held) records.appendMessage(held, usage);
      else if (usage) records.appendUsage(m.done, usage);
      // The next task's starts after the slot's own check (a garbage collection is not that task's).
      slot.cpuMs = m.cpuNext ?? m.cpu;
      // A process told to stop is never reused: its exit (ended) frees the slot, and a new process takes the next task.
      if (slot.task.stopping) return;
      slot.task = undefined;
      // A slot that grew is told to leave; its exit (ended) frees the slot, and a new process takes the next task.
      if (m.retire) return child.send({ exit: true } satisfies ToSlot, () => undefined);
      free(slot);
    });
    // "close", not "exit": every message the slot sent (its records) has arrived by then.
    child.once("close", (code, signal) => {
      listening();
      // What its container left (the slot was killed, or preempted): not the next process's.
      if (slot.adopted.length) killAdopted(slot.adopted);
      slot.adopted = [];
      slot.clients = [];
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
    // A result its slot sent before its process ended: the task's, with what it used up to the last sample.
    if (task?.held) {
      records.appendMessage(task.held, usageOf(slot, task, undefined));
      task.held = undefined;
    }
    // Its GPUs' samples stop with it, whatever became of it.
    task?.gpu?.();
    // Slurm signals every process of the job, the slots maybe before this worker: give its handler a moment.
    const interrupted = signal === "SIGTERM" || signal === "SIGINT" || code === 143 || code === 130;
    if (interrupted && terminated === undefined && !task?.stopping) await new Promise((r) => setTimeout(r, SIGNAL_GRACE_MS));
    const killedBySlurm = !task?.stopping && terminated !== undefined;
    // Stopped before its start record was written: it never ran, and is released with the rest of its claim (last in line).
    if (task?.taken && killedBySlurm && records.lastState(task.index) === undefined && !hasResult(task.index)) {
      claims.giveBack(task.taken, true);
      return free(slot);
    }
    // A task whose records say it was requeued is run again, even when its process ended before it said so
    // (the worker stopped it at its limit or on preemption), unless the client cancelled it.
    if (task && !killedBySlurm && !hasResult(task.index) && (task.stopping === "REQUEUED" || records.lastState(task.index) === "REQUEUED")) {
      if (!existsSync(folder.cancel(task.index))) {
        rerun.push(task.index);
        return free(slot);
      }
      task.stopping = "CANCELLED";
    }
    // A task that wrote its result just before it was stopped keeps it.
    if (task && !killedBySlurm && !hasResult(task.index)) {
      // A process the worker did not stop, ended while the kernel's OOM killer killed something: that was the task.
      const oomKilled = !task.stopping && (signal === "SIGKILL" || code === 137) && task.oomKills !== undefined && (oomKills() ?? 0) > task.oomKills;
      const state = oomKilled ? "OUT_OF_MEMORY" : task.stopping === "REQUEUED" ? undefined : task.stopping;
      const how = signal ? `by ${signal}` : `with exit code ${code}`;
      const messages = {
        TIMEOUT: `Task ${task.index} ran past its time limit of ${o.taskTimeSeconds} s and was stopped`,
        CANCELLED: `Task ${task.index} was cancelled while it ran`,
        PREEMPTED: `Task ${task.index}'s worker was preempted, and the task has no checkpoint to resume from`,
        OUT_OF_MEMORY: oomKilled
          ? `Task ${task.index} was killed by the kernel's out-of-memory killer (its process ended ${how})`
          : `Task ${task.index} used ${Math.round((task.usedKb ?? 0) / 1024)} MiB, more than its mem of ${o.taskMemMb} MiB, and was stopped`,
      };
      const message = state ? messages[state] : `Task ${task.index}'s process ended ${how} before it wrote a result`;
      failed++;
      const exit = state ? {} : signal ? { signal } : code !== null ? { exitCode: code } : {};
      writeResult(records, task.index, { host: HOST, jobId: workerId, startedAt: task.startedAt }, message, state, usageOf(slot, task, undefined), exit);
    }
    free(slot);
  };

  /** The slot may take its next task once its last task's records are on disk. */
  const free = (slot: Slot) => {
    records.flush().then(
      () => slot.release(),
      () => slot.release(), // records.failure says why; the slot's loop stops on it
    );
  };

  const stopTask = (slot: Slot, why: Stop, signal: NodeJS.Signals = "SIGTERM", others: readonly number[] = []) => {
    if (!slot.task || slot.task.stopping || !slot.child?.pid) return;
    slot.task.stopping = why;
    const pid = slot.child.pid;
    killGroup(pid, signal);
    // Processes of the task that left its process group.
    for (const other of others) killProcess(other, signal);
    slot.kill = setTimeout(() => {
      killGroup(pid, "SIGKILL");
      // A container's processes are not in the slot's group: its client's death does not end them.
      killAdopted(slot.adopted);
    }, KILL_GRACE_MS);
    slot.kill.unref();
  };

  const onSignal = (signal: NodeJS.Signals) => {
    terminated ??= signal;
    for (const slot of slots) if (slot.child?.pid) killGroup(slot.child.pid, signal);
  };
  process.on("SIGTERM", onSignal).on("SIGINT", onSignal);

  /** Passes Slurm's warning on to a slot's task, once. */
  const warn = (slot: Slot, ending: Ending, deadline: number | undefined) => {
    // Only once the slot has the task: a warning that came before would be the last task's.
    if (!slot.task?.sent || slot.task.warned || !slot.child?.connected) return;
    slot.task.warned = true;
    slot.child.send({ warn: ending, deadline } satisfies ToSlot, () => undefined);
  };

  /**
   * Slurm's warning to the worker itself. On preemption it starts no more
   * tasks and passes the warning on to its running tasks, which may finish or
   * checkpoint until shortly before Slurm's deadline. Then those that did
   * neither end PREEMPTED (they cannot resume). If some checkpointed, the
   * worker requeues itself, to run them again when it restarts; if none did,
   * it submits the next round for the tasks left, as a worker out of time
   * does. A warning that came during setup is judged before the first task,
   * so a worker preempted then starts none. A warning of its own time limit
   * needs nothing: each task has its own limit and warning, and no task
   * starts that could not finish.
   */
  const onWarning = async () => {
    const jobId = requeueable;
    if (draining || !jobId) return;
    const { ending, deadline } = await node.ending(jobId, (line) => process.stderr.write(line));
    if (ending !== "PREEMPTED" || draining) return;
    draining = true;
    await drain(jobId, ending, deadline);
  };
  /** Every warning heard, until it is judged (and, when preempted, drained): the end of the run waits for them. */
  const hearings: Promise<void>[] = [];
  const hear = () => {
    const hearing = onWarning().catch((error: Error) => void process.stderr.write(`slurmkit runner: worker ${workerId} could not judge Slurm's warning: ${error.message}\n`));
    hearings.push(hearing);
    return hearing;
  };
  const drain = async (jobId: string, ending: "PREEMPTED", deadline: number | undefined) => {
    for (const slot of slots) warn(slot, ending, deadline);
    // Until every running task has asked for a requeue, or until the requeue must go out to beat Slurm's deadline.
    const cut = deadline !== undefined ? deadline - PREEMPT_CUT_MS : Date.now() + 20_000;
    while (Date.now() < cut && slots.some((s) => s.task && s.task.stopping !== "REQUEUED")) await sleep(250);
    const running = slots.filter((s) => s.task && s.task.stopping !== "REQUEUED");
    const resumes = slots.some((s) => s.task?.stopping === "REQUEUED") || running.some((s) => records.lastState(s.task!.index) === "REQUEUED");
    // The tasks that did not checkpoint cannot resume: they end PREEMPTED now, before Slurm ends the worker, so
    // that it can requeue itself for those that did, or submit the next round for the tasks left.
    for (const slot of running) if (slot.task && !slot.task.stopping) stopTask(slot, "PREEMPTED", "SIGKILL");
    for (let i = 0; i < 50 && slots.some((s) => s.task); i++) await sleep(100);
    if (!resumes && rerun.length === 0) return;
    await requeueSelf(jobId);
  };

  /** Hands back the tasks it claimed and never started, once; a failure is said, and the client hands them back when the worker has ended. */
  let releasing: Promise<void> | undefined;
  const releaseClaims = () =>
    (releasing ??= claims.release().then(
      (n) => void (n > 0 && process.stderr.write(`slurmkit runner: worker ${workerId} handed back ${n} task(s) it never started\n`)),
      (error: Error) => void process.stderr.write(`slurmkit runner: worker ${workerId} could not hand back the tasks it never started: ${error.message}\n`),
    ));

  /** Requeues this worker (once): when it restarts it runs its unfinished claims first. */
  const requeueSelf = async (jobId: string) => {
    if (requeued !== undefined) return;
    requeued = "asked";
    const problem = await node.requeue(jobId);
    requeued = problem === undefined ? "done" : problem;
    if (problem === undefined) process.stderr.write(`slurmkit runner: worker ${workerId} requeued itself to run task(s) ${[...rerun].join(", ")} again\n`);
    else process.stderr.write(`slurmkit runner: worker ${workerId} could not requeue itself for task(s) ${[...rerun].join(", ")}: ${problem}\n`);
  };
  /** A warning that came before the worker listened (during setup): heard before the first task, so that a preempted worker starts none. */
  let heardEarly: Promise<void> | undefined;
  if (o.warning) {
    process.on(o.warning.signal, () => void hear());
    if (o.warnedEarly?.()) heardEarly = hear();
  }

  /**
   * Samples each running task's processes: what they hold and their CPU
   * time, for the task's usage. Stops each task whose processes hold more
   * than its `mem` (SIGKILL, as the kernel would): it ends OUT_OF_MEMORY.
   * What its slot process carried from earlier tasks is not counted. A task
   * already being stopped (in its grace after SIGTERM) is killed at once if
   * it goes over.
   */
  const sampleTasks = () => {
    const running = slots.filter((s) => s.task?.sent && s.task.stopping !== "OUT_OF_MEMORY" && s.child?.pid !== undefined);
    if (running.length === 0) return;
    const trees = sampleTrees(
      running.map((s) => s.child!.pid!),
      usageMeasure,
      scope,
      undefined,
      new Map(running.filter((s) => s.adopted.length > 0).map((s) => [s.child!.pid!, s.adopted])),
    );
    for (const slot of running) {
      const tree = trees.get(slot.child!.pid!);
      const task = slot.task!;
      if (!tree) continue;
      const used = Math.max(0, tree.kb - (task.carriedKb ?? 0));
      task.peakKb = Math.max(task.peakKb ?? 0, used);
      task.samples++;
      task.cpuSeen = tree.cpuTicks * MS_PER_TICK;
      if (measure === undefined || o.taskMemMb === undefined || used <= o.taskMemMb * 1024) continue;
      // Never conmon or podman's client: they remove the container once the processes inside ended.
      const pids = slot.adopted.length ? tree.pids.filter((p) => !slot.adopted.includes(p) && !slot.clients.includes(p)) : tree.pids;
      if (task.stopping) {
        killGroup(slot.child!.pid!, "SIGKILL");
        for (const pid of pids) killProcess(pid, "SIGKILL");
        continue;
      }
      task.usedKb = used;
      stopTask(slot, "OUT_OF_MEMORY", "SIGKILL", pids);
    }
    // The worker's own process is what WORKER_OVERHEAD_MB covers: say so once if it grows past that.
    const own = process.memoryUsage.rss() / 2 ** 20;
    if (measure !== undefined && !ownMemoryWarned && own > WORKER_OVERHEAD_MB - 4) {
      ownMemoryWarned = true;
      process.stderr.write(`slurmkit runner: worker ${workerId} holds ${Math.round(own)} MiB itself, more than the ${WORKER_OVERHEAD_MB} MiB it asked for besides its tasks\n`);
    }
  };

  // Checks running tasks against their memory and time limits and the client's cancel requests.
  /** Why claiming failed, if it did: the worker took no more tasks. */
  let claimsFailed: Error | undefined;
  /** Its walltime cannot fit another task: tasks left go to the next round of workers. */
  let outOfTime = false;
  let ticks = 0;
  let sharing: Promise<unknown> | undefined;
  const checker = setInterval(() => {
    sampleTasks();
    // A cancel made after the last claim: seen within a few checks, before a task of the claim starts.
    if (++ticks % 4 === 0) claims.refreshCancels().catch(() => undefined);
    // Every slot busy and tasks waiting behind them: give some to a worker that has none.
    if (!sharing && claims.unstarted > 0 && slots.every((s) => s.task)) {
      sharing = claims
        .share()
        .catch((error: Error) => void process.stderr.write(`slurmkit runner: worker ${workerId} could not give tasks to an idle worker: ${error.message}\n`))
        .finally(() => (sharing = undefined));
    }
    for (const slot of slots) {
      const task = slot.task;
      if (!task) continue;
      const limit = o.taskTimeSeconds;
      // Each task gets Slurm's warning before its own time limit, as it would in its own element.
      if (o.warning && limit !== undefined && !task.warned && !task.stopping && taskWarningDue(o.warning.warnSeconds, limit, task.startedAt, Date.now())) {
        warn(slot, "TIMEOUT", task.startedAt + limit * 1000);
      }
      if (limit !== undefined && Date.now() - task.startedAt > limit * 1000) stopTask(slot, "TIMEOUT");
      else if (existsSync(folder.cancel(task.index))) stopTask(slot, "CANCELLED");
    }
  }, CHECK_MS);

  const runOn = async (slot: Slot): Promise<void> => {
    for (;;) {
      if (terminated || draining || records.failure) return;
      if (o.taskTimeSeconds !== undefined && deadline - Date.now() < o.taskTimeSeconds * 1000 + START_SLACK_MS) {
        outOfTime = true;
        return;
      }
      const again = rerun.shift();
      let taken: Taken | undefined;
      try {
        taken = again === undefined ? await claims.next() : undefined;
      } catch (error) {
        // The run folder could not be read or written: take no more tasks; what this worker holds is released as it stops.
        claimsFailed ??= error as Error;
        return;
      }
      const index = again ?? taken?.index;
      if (index === undefined) return;
      /** The task did not start: run it later, or hand it back when the worker stops. */
      const putBack = () => (taken ? claims.giveBack(taken) : rerun.unshift(index));
      if (terminated || draining || records.failure) {
        putBack();
        return;
      }
      const meta = { host: HOST, jobId: workerId, startedAt: Date.now() };
      if (claims.cancelled(index)) {
        writeResult(records, index, meta, `Task ${index} was cancelled before it started`, "CANCELLED");
        continue;
      }
      // Tasks it runs after: checked here, before the task's own time starts.
      const blocked = await dependencyGate(folder);
      if (blocked !== undefined) {
        writeResult(records, index, meta, blocked, "CANCELLED");
        continue;
      }
      if (!slot.child) start(slot);
      slot.idle = new Promise((resolve) => (slot.release = resolve));
      slot.task = { index, startedAt: Date.now(), taken, samples: 0 };
      await slot.ready;
      // The slot's process may have ended while it started (and its task with it).
      if (slot.task?.index !== index || !slot.child?.connected) {
        await slot.idle;
        continue;
      }
      if (draining || terminated) {
        // The worker began to stop while the slot started: the task never ran.
        slot.task = undefined;
        putBack();
        slot.release();
        return;
      }
      // The task's time starts when its slot can run it, not while a new slot process starts.
      slot.task.startedAt = Date.now();
      slot.task.oomKills = oomKills();
      if (measure !== undefined && slot.readyKb !== undefined && slot.child.pid !== undefined) {
        const grown = (footprintKb(slot.child.pid, measure) ?? slot.readyKb) - slot.readyKb;
        slot.task.carriedKb = Math.min(Math.max(0, grown), SLOT_MARGIN_MB * 1024);
      } else if (slot.readyKb !== undefined && slot.child.pid !== undefined) {
        // Without `mem` only usage needs it: read at most every half second, as the samples are, so that a run of
        // short tasks does not pay 20 µs each for it. Capped as with `mem`: what a slot grew by past that is mostly
        // heap its last task freed, which the next one fills again (not charging it would under-count that task).
        const now = performance.now();
        if (!slot.carried || now - slot.carried.at >= USAGE_SAMPLE_MS) {
          const grown = (footprintKb(slot.child.pid, usageMeasure) ?? slot.readyKb) - slot.readyKb;
          slot.carried = { kb: Math.min(Math.max(0, grown), SLOT_MARGIN_MB * 1024), at: now };
        }
        slot.task.carriedKb = slot.carried.kb;
      }
      slot.task.cpuStart = slot.cpuMs;
      if (gpus && slot.share.gpus) slot.task.gpu = gpus.track(slot.share.gpus);
      // A task of a block this worker claimed itself, in its first attempt, never ran before: its slot need not look for earlier attempts.
      const fresh = !restarted && again === undefined && taken !== undefined && /^b\d+$/.test(taken.claim.name);
      slot.child.send({ run: index, ...(fresh ? { fresh } : {}) } satisfies ToSlot, () => undefined);
      slot.task.sent = true;
      await slot.idle;
    }
  };
  await heardEarly;
  await Promise.all(slots.map(runOn));
  // A task requeued after its slots' loops ended: run it while the walltime allows.
  while (rerun.length && !terminated && !draining && (o.taskTimeSeconds === undefined || deadline - Date.now() >= o.taskTimeSeconds * 1000 + START_SLACK_MS)) {
    await Promise.all(slots.map(runOn));
  }
  clearInterval(checker);
  gpus?.close();
  await sharing;
  // The tasks of its blocks it never started: for other workers (and, after a requeue, never for its own next attempt).
  await releaseClaims();
  // Every warning judged; a preempted worker has ended the tasks that cannot resume, and requeued itself if some can (drain()).
  await Promise.all(hearings);
  /** Walk-away: tasks left and no worker here for them; the next round is submitted by one worker (or the client). */
  const walkAway = async () => {
    if (terminated || records.failure) return;
    const said = await claims
      .left()
      .then((left) => submitNextRound(folder, node, workerId, left))
      .catch((error: Error) => `worker ${workerId} could not submit the next round of workers: ${error.message}`);
    if (said) process.stderr.write(`slurmkit runner: ${said}\n`);
  };
  // Out of walltime: the round goes out first, before a requeue (for tasks to run again) brings Slurm's TERM.
  if (outOfTime) await walkAway();
  while (requeued === "asked") await sleep(100);
  if (rerun.length && !terminated && requeued === undefined) {
    // Tasks to run again and no walltime left for them: requeue this worker, which runs them first when it restarts.
    if (requeueable) await requeueSelf(requeueable);
    else requeued = `${node.scheduler} cannot requeue it`;
  }
  // Preempted, and not coming back: the round for the tasks left.
  if (draining && !outOfTime && requeued !== "done") await walkAway();
  if (requeued === "done") {
    // Slurm ends this attempt (TERM) at once; leave by then.
    for (let i = 0; i < 1500 && !terminated; i++) await sleep(200);
    return 143;
  }
  if (rerun.length && requeued !== undefined) {
    const problem = requeued;
    for (const index of rerun) {
      failed++;
      const why = `Task ${index} started, but its worker could not be requeued to run it again: ${problem}`;
      writeResult(records, index, { host: HOST, jobId: workerId, startedAt: Date.now() }, why, draining ? "PREEMPTED" : "TIMEOUT");
    }
  }
  for (const slot of slots) slot.child?.send({ exit: true } satisfies ToSlot);
  if (terminated) {
    process.stderr.write(`slurmkit runner: worker ${workerId} terminated by ${terminated}; its running tasks have no result\n`);
    return terminated === "SIGINT" ? 130 : 143;
  }
  if (records.failure) {
    process.stderr.write(`slurmkit runner: worker ${workerId} stopped taking tasks: its streams (${records.path} and its logs) could not be written: ${records.failure.message}\n`);
    return 2;
  }
  if (claimsFailed) {
    process.stderr.write(`slurmkit runner: worker ${workerId} stopped taking tasks: it could not claim more (${claimsFailed.message}); it handed back what it held\n`);
    return 2;
  }
  return failed ? 1 : 0;
}

/**
 * What a task used: its slot's CPU ms from its start to its end (`cpuEnd`,
 * the slot's report when it finished; else the last sample of its
 * processes), the most its processes held at a sample, and its GPUs.
 */
function usageOf(slot: Slot, task: NonNullable<Slot["task"]>, cpuEnd: number | undefined): UsageRecord | undefined {
  const end = cpuEnd ?? task.cpuSeen;
  // Killed before its first sample, or its slot could not say: nothing known, nothing recorded.
  if (end === undefined || task.cpuStart === undefined) return undefined;
  const cpuMs = Math.round(Math.max(0, end - task.cpuStart));
  const gpu = task.gpu?.();
  return {
    cpuMs,
    ...(task.peakKb !== undefined ? { memKb: task.peakKb } : {}),
    memSamples: task.samples,
    slot: slot.number,
    ...(gpu ? { gpu } : {}),
  };
}

/** The result of a task that the worker, not the task, ended, appended to the worker's stream. */
function writeResult(
  records: WorkerRecords,
  index: number,
  meta: { host: string; jobId: string; startedAt: number },
  message: string,
  ended?: "TIMEOUT" | "CANCELLED" | "PREEMPTED" | "OUT_OF_MEMORY",
  usage?: UsageRecord | undefined,
  exit: { readonly exitCode?: number; readonly signal?: string } = {},
): void {
  const names = { TIMEOUT: "TaskTimeout", CANCELLED: "TaskCancelled", PREEMPTED: "TaskPreempted", OUT_OF_MEMORY: "TaskOutOfMemory" } as const;
  records.appendResult(index, failedResult({ name: ended ? names[ended] : "TaskProcessDied", message, ...exit }, meta, ended), usage);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  killProcess(-pid, signal);
}

function killProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
