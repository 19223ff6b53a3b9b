import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { mkdtemp } from "node:fs/promises";
import { ContainerError } from "../src/base/errors.js";
import { bindProblem, imageIsFile, type ContainerRecord } from "../src/protocol/container.js";
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
  const scratch = [process.env.SLURM_TMPDIR, process.env.TMPDIR].filter((d): d is string => d?.startsWith("/") === true && existsSync(d));
  return [...(runFolder ? [runFolder] : []), ...scratch];
}

/** The submission's container, if any. */
export function submissionContainer(): ContainerRecord | undefined {
  return submission;
}

/**
 * The container with its runtime values expanded here, relative bind
 * sources resolved against the working directory, and each checked again
 * (an expanded value could read as an option or hold a separator).
 */
export function onNode(record: ContainerRecord, cwd: string): NodeContainer {
  const image = bind(record.image);
  if (image === "" || image.startsWith("-")) throw new ContainerError("image", HOST, `container.image expands to \`${image}\``, "give a path or an image name that does not start with -");
  const binds = (record.binds ?? []).map((b, i) => {
    const text = bind(b);
    const problem = bindProblem(text) ?? (text.startsWith("-") ? "starts with -" : undefined);
    if (problem) throw new ContainerError("bind", HOST, `container.binds[${i}] (\`${text}\`) ${problem}`, "give `src`, `src:dest` or `src:dest:ro`");
    const [src, ...rest] = text.split(":");
    return [resolve(cwd, src!), ...rest].join(":");
  });
  return { ...record, image, binds };
}

/** One task's memory in MiB as the node gives it (SLURM_MEM_PER_NODE, or per CPU × CPUs), or undefined. */
export function taskMemMb(env: NodeJS.ProcessEnv): number | undefined {
  const node = Number(env.SLURM_MEM_PER_NODE);
  if (Number.isInteger(node) && node > 0) return node;
  const perCpu = Number(env.SLURM_MEM_PER_CPU);
  const cpus = Number(env.SLURM_CPUS_PER_TASK ?? "1");
  return Number.isInteger(perCpu) && perCpu > 0 && Number.isInteger(cpus) && cpus > 0 ? perCpu * cpus : undefined;
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

/** A fresh path for podman's --conmon-pidfile, in a folder of its own: no file another runner left is ever read. */
export async function conmonPidFile(): Promise<string> {
  pidDir ??= await mkdtemp(join(process.env.SLURM_TMPDIR && existsSync(process.env.SLURM_TMPDIR) ? process.env.SLURM_TMPDIR : tmpdir(), "slurmkit-conmon-"));
  return join(pidDir, `${++pidFiles}.pid`);
}

let pidDir: string | undefined;

/** Processes of running tasks that are not the runner's descendants (podman's conmon, with the container under it). */
const adopted = new Set<number>();
let onAdopt: ((pid: number, joined: boolean, client: number | undefined) => void) | undefined;

/** The adopted processes now (the element's meter counts their trees). */
export function adoptedPids(): readonly number[] {
  return [...adopted];
}

/** Calls `listener` when a process is adopted (true) or let go (false): a slot tells its worker. */
export function onAdopted(listener: (pid: number, joined: boolean, client: number | undefined) => void): void {
  onAdopt = listener;
}

/**
 * Waits for podman's conmon pid in `pidFile` (written once the container
 * started), and adopts it until `ended` settles. Gives up when the command
 * ended first.
 */
export async function adoptConmon(pidFile: string, ended: Promise<unknown>, into: { pid?: number }, client: number | undefined): Promise<void> {
  let done = false;
  void ended.finally(() => {
    done = true;
  });
  let pid: number | undefined;
  while (!done && pid === undefined) {
    try {
      const n = Number(readFileSync(pidFile, "utf8").trim());
      // Only conmon itself: never a process that happens to have a stale pid.
      if (Number.isInteger(n) && n > 1 && readFileSync(`/proc/${n}/comm`, "utf8").trim() === "conmon") pid = n;
    } catch {}
    if (pid === undefined) await new Promise((r) => setTimeout(r, 25));
  }
  if (pid === undefined) return;
  into.pid = pid;
  adopted.add(pid);
  onAdopt?.(pid, true, client);
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
  onAdopt?.(pid, false, client);
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
 * Sends a signal to the command inside a container (conmon's child, a
 * process of the node: podman shares its PID namespace), as it would reach a
 * command started directly. False when its conmon is not known yet (then its
 * client's proxy is all there is).
 */
export function signalContainer(conmon: number | undefined, signal: NodeJS.Signals): boolean {
  if (conmon === undefined) return false;
  const main = childrenOf(conmon);
  for (const pid of main) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
  return main.length > 0;
}
