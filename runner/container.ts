import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ContainerError } from "../src/base/errors.js";
import { imageIsFile, type ContainerRecord } from "../src/protocol/container.js";
import { RUNTIME_PROGRAM, type NodeContainer } from "./container-line.js";
import { childrenOf, TICKS_PER_SECOND, treeCpuTicks, treePids } from "./memory.js";
import { bind, HOST } from "./node.js";

// The node's side of a task's container: which one applies, whether the node
// can start it, and the processes podman starts outside the runner's tree.

let submission: ContainerRecord | undefined;
let runFolder: string | undefined;

/** Sets the submission's container (the runner's --container), which command tasks without their own run in, and the run folder, which every container gets. */
export function useContainer(record: ContainerRecord | undefined, folder: string): void {
  submission = record;
  runFolder = folder;
}

/** Folders bound into every container at their own path: the run folder, and node-local scratch where there is one. */
export function containerFolders(): string[] {
  const scratch = process.env.SLURM_TMPDIR;
  return [...(runFolder ? [runFolder] : []), ...(scratch && existsSync(scratch) ? [scratch] : [])];
}

/** The submission's container, if any. */
export function submissionContainer(): ContainerRecord | undefined {
  return submission;
}

/** The container with its runtime values expanded here. */
export function onNode(record: ContainerRecord): NodeContainer {
  return { ...record, image: bind(record.image), binds: (record.binds ?? []).map(bind) };
}

const checked = new Map<string, Promise<void>>();

/**
 * Checks that this node can start `c`: its runtime is on PATH, its image
 * file exists (a .sif, a .sqsh), and each bind's source exists. A
 * ContainerError names the node and the fix. A runtime and an image are
 * checked once per process; podman's images only when it fails (podmanImageMissing).
 */
export async function checkContainer(c: NodeContainer): Promise<void> {
  const program = RUNTIME_PROGRAM[c.runtime];
  const key = `${c.runtime}\0${c.image}`;
  let once = checked.get(key);
  if (!once) {
    once = checkRuntimeAndImage(c, program);
    checked.set(key, once);
    // A failed check is made again for the next task: the image may have arrived.
    once.catch(() => checked.delete(key));
  }
  await once;
  for (const [i, text] of c.binds.entries()) {
    const src = text.split(":")[0]!;
    if (!existsSync(src)) throw new ContainerError("bind", HOST, `the source of container.binds[${i}] (${src}) does not exist`, "create it there (or stage it in), or change the bind");
  }
}

async function checkRuntimeAndImage(c: NodeContainer, program: string): Promise<void> {
  if (onPath(program) === undefined) {
    const what = c.runtime === "pyxis" ? "srun (pyxis's runtime)" : program;
    throw new ContainerError("runtime", HOST, `${what} is not installed (not in its PATH)`, `load its module in the setup (modules([...])), or choose a runtime the node has`);
  }
  if (imageIsFile(c.runtime, c.image)) {
    if (!existsSync(c.image)) throw new ContainerError("image", HOST, `the image file ${c.image} does not exist`, "copy it there (or stage it in), or change container.image");
    return;
  }
}

/**
 * Why podman could not start a container (its exit code 125), when it is a
 * missing image: asked only then, so that its client (36 MiB) never runs
 * beside a task as a check would.
 */
export async function podmanImageMissing(c: NodeContainer): Promise<ContainerError | undefined> {
  const program = RUNTIME_PROGRAM[c.runtime];
  const found = await new Promise<boolean>((resolve) => execFile(program, ["image", "exists", c.image], (error) => resolve(!error)));
  if (found) return undefined;
  return new ContainerError("image", HOST, `${program} has no image ${c.image}, and could not pull it`, `load it there (${program} load, ${program} import), or give the name of one it can pull`);
}

/** The path of an executable in PATH, or undefined. */
function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, program);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  return undefined;
}

let pidFiles = 0;

/** A fresh path for podman's --conmon-pidfile. */
export function conmonPidFile(): string {
  return join(process.env.SLURM_TMPDIR && existsSync(process.env.SLURM_TMPDIR) ? process.env.SLURM_TMPDIR : tmpdir(), `slurmkit-conmon-${process.pid}-${++pidFiles}.pid`);
}

/** Processes of running tasks that are not the runner's descendants (podman's conmon, with the container under it). */
const adopted = new Set<number>();
let onAdopt: ((pid: number, joined: boolean) => void) | undefined;

/** The adopted processes now (the element's meter counts their trees). */
export function adoptedPids(): readonly number[] {
  return [...adopted];
}

/** Calls `listener` when a process is adopted (true) or let go (false): a slot tells its worker. */
export function onAdopted(listener: (pid: number, joined: boolean) => void): void {
  onAdopt = listener;
}

/**
 * Waits for podman's conmon pid in `pidFile` (written once the container
 * started), and adopts it until `ended` settles. Gives up when the command
 * ended first.
 */
export async function adoptConmon(pidFile: string, ended: Promise<unknown>): Promise<void> {
  let done = false;
  void ended.finally(() => {
    done = true;
  });
  let pid: number | undefined;
  while (!done && pid === undefined) {
    try {
      const n = Number(readFileSync(pidFile, "utf8").trim());
      if (Number.isInteger(n) && n > 1) pid = n;
    } catch {}
    if (pid === undefined) await new Promise((r) => setTimeout(r, 25));
  }
  if (pid === undefined) return;
  adopted.add(pid);
  onAdopt?.(pid, true);
  // Its CPU time, read every half second (conmon's own counts what it reaped), and once more as the client ends.
  const read = () => {
    const before = process.cpuUsage();
    live.set(pid, Math.max(live.get(pid) ?? 0, treeCpuTicks(pid) * (1000 / TICKS_PER_SECOND)));
    // The read is slurmkit's work, in the task's runner: taken off the task's CPU.
    const spent = process.cpuUsage(before);
    readingMs += (spent.user + spent.system) / 1000;
  };
  read();
  const timer = setInterval(read, 500);
  timer.unref();
  await ended.catch(() => undefined);
  clearInterval(timer);
  read();
  endedMs += live.get(pid) ?? 0;
  live.delete(pid);
  adopted.delete(pid);
  onAdopt?.(pid, false);
}

/** CPU ms of running containers' processes (not this process's children), by conmon pid. */
const live = new Map<number, number>();
let endedMs = 0;
let readingMs = 0;

/** CPU ms of the containers this process started: their processes are conmon's children, so this process's own count misses them. */
export function containerCpuMs(): number {
  let sum = endedMs - readingMs;
  for (const ms of live.values()) sum += ms;
  return sum;
}

/**
 * Kills everything under adopted processes: what is left of a container
 * whose client was killed. Not conmon itself, which then removes the
 * container (podman's state would say it still runs).
 */
export function killAdopted(pids: readonly number[], signal: NodeJS.Signals = "SIGKILL"): void {
  for (const pid of pids.flatMap((root) => treePids(root).filter((p) => p !== root))) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}

/**
 * Sends a signal to the command inside each adopted container (conmon's
 * child, a process of the node: podman shares its PID namespace), as it
 * would reach a command started directly. False when no container is
 * adopted yet (then its client's proxy is all there is).
 */
export function signalContainers(signal: NodeJS.Signals): boolean {
  const main = [...adopted].flatMap(childrenOf);
  for (const pid of main) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
  return main.length > 0;
}
