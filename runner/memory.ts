import { readdirSync, readFileSync, type Dirent } from "node:fs";

// What a task's processes hold in memory, read from /proc, so that a worker can
// keep each of its tasks within the task's own `mem`. Linux only: elsewhere
// nothing is measured and nothing is stopped.

/**
 * How the node counts a job's memory, and so how a task's is counted here:
 * - `resident`: the sum of its processes' resident sets, as Slurm's
 *   jobacct_gather/linux counts them (and kills a job over its `--mem` with
 *   OverMemoryKill);
 * - `proportional`: the sum of their proportional set sizes (PSS), as
 *   jobacct_gather counts them with UsePss;
 * - `charged`: their anonymous and shared-memory pages, shared pages split
 *   between the processes that share them (Pss_Anon + Pss_Shmem), which is
 *   what a memory cgroup charges for them: a page once, however many forks
 *   map it, and the program's own code not at all (it is page cache).
 */
export type MemoryMeasure = "resident" | "proportional" | "charged";

/** A process's parent, from the text of /proc/<pid>/stat. */
export function parseStatParent(text: string): number | undefined {
  // The command name is in parentheses and may hold spaces or parentheses itself.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/** A `Name:   123 kB` field of /proc/<pid>/status or smaps_rollup, in KiB. */
function kbField(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * A process's memory in KiB as `measure` counts it, from the text of
 * /proc/<pid>/smaps_rollup; undefined when the kernel does not show the
 * fields it needs (Pss_Anon came in Linux 5.9).
 */
export function parseRollupKb(text: string, measure: Exclude<MemoryMeasure, "resident">): number | undefined {
  if (measure === "proportional") return kbField(text, "Pss");
  const anon = kbField(text, "Pss_Anon");
  return anon === undefined ? undefined : anon + (kbField(text, "Pss_Shmem") ?? 0);
}

/**
 * A process's memory in KiB from the text of /proc/<pid>/status: its
 * resident set, or for `charged` its anonymous and shared-memory pages
 * (shared pages counted in full; the resident set where those fields are
 * missing). 0 for a kernel thread.
 */
export function parseStatusKb(text: string, measure: MemoryMeasure): number {
  const rss = kbField(text, "VmRSS") ?? 0;
  const anon = kbField(text, "RssAnon");
  return measure === "charged" && anon !== undefined ? anon + (kbField(text, "RssShmem") ?? 0) : rss;
}

/**
 * The memory limit (bytes) that the memory cgroup of a process and its
 * parents set, from the text of /proc/<pid>/cgroup and a reader of cgroup
 * files; undefined when none is set (or none can be read).
 */
export function cgroupLimitBytes(procCgroup: string, read: (path: string) => string | undefined): number | undefined {
  const levels = memoryCgroupLevels(procCgroup, read);
  return levels.length ? Math.min(...levels.map((l) => l.limit)) : undefined;
}

/**
 * The OOM kills counted by the memory cgroups of a process, from its own up
 * to the one that limits it (v1's `oom_kill` in memory.oom_control, v2's in
 * memory.events), so that kills in other jobs' cgroups do not count;
 * undefined when no level limits it or none shows a count.
 */
export function cgroupOomKills(procCgroup: string, read: (path: string) => string | undefined): number | undefined {
  const levels = memoryCgroupLevels(procCgroup, read);
  const counts = levels.map((l) => /^oom_kill (\d+)$/m.exec(read(`${l.dir}/${l.v1 ? "memory.oom_control" : "memory.events"}`) ?? "")?.[1]).filter((c) => c !== undefined);
  return counts.length ? counts.reduce((sum, c) => sum + Number(c), 0) : undefined;
}

/**
 * A process's memory cgroup folders, from its own up to the highest that
 * sets a limit (Slurm may limit the job's and leave the step's unlimited),
 * each with that limit (Infinity where unlimited); empty when none is limited.
 */
function memoryCgroupLevels(procCgroup: string, read: (path: string) => string | undefined): Array<{ dir: string; limit: number; v1: boolean }> {
  const v1 = cgroupPath(procCgroup, "memory");
  const v2 = cgroupPath(procCgroup, undefined);
  const [base, file, path] = v1 !== undefined ? ["/sys/fs/cgroup/memory", "memory.limit_in_bytes", v1] : v2 !== undefined ? ["/sys/fs/cgroup", "memory.max", v2] : [];
  if (base === undefined || path === undefined) return [];
  const levels: Array<{ dir: string; limit: number; v1: boolean }> = [];
  for (let dir = path.replace(/\/+$/, ""); ; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    const value = Number(read(`${base}${dir}/${file}`)?.trim());
    // "max" (v2) or a number near 2^63 (v1) means no limit.
    levels.push({ dir: `${base}${dir}`, limit: Number.isFinite(value) && value > 0 && value < 2 ** 60 ? value : Infinity, v1: v1 !== undefined });
    if (dir === "") break;
  }
  const top = levels.findLastIndex((l) => l.limit !== Infinity);
  return levels.slice(0, top + 1);
}

/** A process's cgroup path in one v1 hierarchy (`controller`), or in cgroup v2's (undefined), from the text of /proc/<pid>/cgroup. */
function cgroupPath(procCgroup: string, controller: string | undefined): string | undefined {
  const line = controller === undefined ? /^0::(.*)$/m : new RegExp(`^\\d+:(?:[^:]*,)?${controller}(?:,[^:]*)?:(.*)$`, "m");
  return line.exec(procCgroup)?.[1];
}

const readText = (path: string): string | undefined => {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
};

/**
 * How this element's memory is counted: `charged` when it is in a memory
 * cgroup whose limit is about its own request (`elementMb`, so a whole
 * machine's or container's limit does not count), else as Slurm's gatherer
 * counts it (`proportional` where the cluster sets UsePss).
 */
export function memoryMeasure(elementMb: number, usePss: boolean): MemoryMeasure {
  const limit = cgroupLimitBytes(readText("/proc/self/cgroup") ?? "", readText);
  if (limit !== undefined && limit <= elementMb * 1.25 * 2 ** 20) return "charged";
  return usePss ? "proportional" : "resident";
}

/**
 * A reader of the OOM kills that may have been a task's: this element's
 * cgroups' count when `measure` is `charged` (it runs in a limited memory
 * cgroup), else the machine's (`oom_kill` in /proc/vmstat), which counts
 * the kills in every cgroup too. Undefined where neither is shown.
 */
export function oomKillCounter(measure: MemoryMeasure | undefined): () => number | undefined {
  if (measure === "charged") {
    const procCgroup = readText("/proc/self/cgroup") ?? "";
    if (cgroupOomKills(procCgroup, readText) !== undefined) return () => cgroupOomKills(procCgroup, readText);
  }
  return () => {
    const m = /^oom_kill (\d+)$/m.exec(readText("/proc/vmstat") ?? "");
    return m ? Number(m[1]) : undefined;
  };
}

/**
 * The cgroup folder whose processes include this one and everything it
 * starts (the memory or freezer hierarchy of cgroup v1, or cgroup v2's), so
 * that a sample reads those processes rather than every one on the node;
 * undefined where there is none to read.
 */
export function ownCgroupDir(): string | undefined {
  const text = readText("/proc/self/cgroup") ?? "";
  const v2 = cgroupPath(text, undefined);
  const dirs = [
    ...["memory", "freezer"].flatMap((c) => {
      const path = cgroupPath(text, c);
      return path === undefined ? [] : [`/sys/fs/cgroup/${c}${path}`];
    }),
    ...(v2 === undefined ? [] : [`/sys/fs/cgroup${v2}`, `/sys/fs/cgroup/unified${v2}`]),
  ];
  return dirs.map((dir) => dir.replace(/\/+$/, "")).find((dir) => (readText(`${dir}/cgroup.procs`) ?? "").split("\n").includes(String(process.pid)));
}

/** The processes of a cgroup folder and of the folders below it. */
function cgroupPids(dir: string, out: number[] = []): number[] {
  for (const line of (readText(`${dir}/cgroup.procs`) ?? "").split("\n")) if (line !== "") out.push(Number(line));
  let entries: Dirent[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    // Gone, or not ours to read.
  }
  for (const entry of entries) if (entry.isDirectory()) cgroupPids(`${dir}/${entry.name}`, out);
  return out;
}

/**
 * A process's CPU time in clock ticks from the text of /proc/<pid>/stat:
 * its own user and system time, and that of the children it has reaped
 * (utime + stime + cutime + cstime).
 */
export function parseStatCpuTicks(text: string): number | undefined {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ", 15);
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/** The CPU ticks of the children a process reaped (cutime + cstime), from the text of /proc/<pid>/stat. */
export function parseStatChildrenTicks(text: string): number | undefined {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ", 15);
  const ticks = Number(fields[13]) + Number(fields[14]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux that slurmkit runs on). */
export const TICKS_PER_SECOND = 100;

/** The parents of the processes in `scope` (a cgroup folder), or of every process in /proc, and their CPU ticks (parseStatCpuTicks); empty where there is no /proc. */
function parents(scope: string | undefined): { parentOf: Map<number, number>; cpuOf: Map<number, number> } {
  const parentOf = new Map<number, number>();
  const cpuOf = new Map<number, number>();
  let pids: number[];
  try {
    pids = scope !== undefined ? cgroupPids(scope) : readdirSync("/proc").map(Number).filter(Number.isInteger);
  } catch {
    return { parentOf, cpuOf };
  }
  for (const pid of pids) {
    const text = readText(`/proc/${pid}/stat`);
    if (text === undefined) continue;
    const ppid = parseStatParent(text);
    if (ppid !== undefined) parentOf.set(pid, ppid);
    const cpu = parseStatCpuTicks(text);
    if (cpu !== undefined) cpuOf.set(pid, cpu);
  }
  return { parentOf, cpuOf };
}

/** A process and everything it started (their pids), from a map of parents; `leave` and what it started are left out. */
export function processTree(root: number, parentOf: ReadonlyMap<number, number>, leave?: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out = [root];
  // A pid reused between two reads could close a loop: each pid once.
  const seen = new Set(out);
  for (let i = 0; i < out.length; i++) {
    for (const child of children.get(out[i]!) ?? []) {
      if (!seen.has(child) && child !== leave) {
        seen.add(child);
        out.push(child);
      }
    }
  }
  return out;
}

/** A process and everything under it now, from every process in /proc. */
export function treePids(root: number): number[] {
  return processTree(root, parents(undefined).parentOf);
}

/** The processes a process started, now. */
export function childrenOf(pid: number): number[] {
  return [...parents(undefined).parentOf].filter(([, ppid]) => ppid === pid).map(([child]) => child);
}

/** The CPU ticks of a process and everything under it now (each one's own, and what each reaped); 0 when it ended. */
export function treeCpuTicks(root: number): number {
  const { parentOf, cpuOf } = parents(undefined);
  return processTree(root, parentOf).reduce((sum, pid) => sum + (cpuOf.get(pid) ?? 0), 0);
}

/** One process tree as sampleTrees reads it. */
export interface TreeSample {
  /** Its memory (KiB) as the measure counts it. */
  readonly kb: number;
  readonly pids: number[];
  /** Its CPU time in clock ticks: each process's own, and what each has reaped. */
  readonly cpuTicks: number;
}

/**
 * The memory (KiB) and CPU ticks of each root's process tree as `measure`
 * counts it, in one pass over the processes of `scope` (ownCgroupDir, or
 * every process), with the pids of each tree (less `leave`, slurmkit's own
 * nvidia-smi). `adopted` joins processes to a root's tree that are not its
 * descendants (podman's conmon and the container under it). A process that
 * ended while it was read counts nothing.
 */
export function sampleTrees(roots: readonly number[], measure: MemoryMeasure, scope?: string, leave?: number, adopted?: ReadonlyMap<number, readonly number[]>): Map<number, TreeSample> {
  // A container's processes may sit in a cgroup of their own: then every process is looked at.
  const { parentOf, cpuOf } = parents(adopted?.size ? undefined : scope);
  const out = new Map<number, TreeSample>();
  for (const root of roots) {
    const pids = processTree(root, parentOf, leave);
    for (const extra of adopted?.get(root) ?? []) if (!pids.includes(extra)) pids.push(...processTree(extra, parentOf, leave).filter((p) => !pids.includes(p)));
    const kb = pids.reduce((sum, pid) => sum + (processKb(pid, measure) ?? 0), 0);
    const cpuTicks = pids.reduce((sum, pid) => sum + (cpuOf.get(pid) ?? 0), 0);
    out.set(root, { kb, pids, cpuTicks });
  }
  return out;
}

/**
 * One process's own footprint in KiB, from its status (about 20 µs, where
 * smaps_rollup takes about 0.6 ms for a Node process): its resident set, or
 * for `charged` its anonymous and shared-memory pages. For one process that
 * shares no pages with a fork, as a slot's own, that is what processKb says,
 * or close to it.
 */
export function footprintKb(pid: number, measure: MemoryMeasure): number | undefined {
  const text = readText(`/proc/${pid}/status`);
  return text === undefined ? undefined : parseStatusKb(text, measure);
}

/** One process's memory in KiB as `measure` counts it; undefined when it cannot be read (it ended). */
function processKb(pid: number, measure: MemoryMeasure): number | undefined {
  if (measure !== "resident") {
    const kb = parseRollupKb(readText(`/proc/${pid}/smaps_rollup`) ?? "", measure);
    if (kb !== undefined) return kb;
  }
  const text = readText(`/proc/${pid}/status`);
  return text === undefined ? undefined : parseStatusKb(text, measure);
}
