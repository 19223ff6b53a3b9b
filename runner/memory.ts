import { readdirSync, readFileSync, type Dirent } from "node:fs";

// What a task's processes hold in memory, read from /proc, so that a worker can
// keep each of its tasks within the task's own `mem`. Linux only: elsewhere
// nothing is measured and nothing is stopped.

/**
 * How the node counts a job's memory, and so how a task's is counted here:
 * `resident`, the sum of its processes' resident sets (Slurm's
 * jobacct_gather/linux, which kills a job over its `--mem`); or `charged`,
 * their anonymous and shared-memory pages, which is what a memory cgroup
 * charges for them (the program's own code is page cache, shared by every
 * process that runs it).
 */
export type MemoryMeasure = "resident" | "charged";

/** A process's parent, from the text of /proc/<pid>/stat. */
export function parseStatParent(text: string): number | undefined {
  // The command name is in parentheses and may hold spaces or parentheses itself.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/** A process's memory in KiB as `measure` counts it, from the text of /proc/<pid>/status. */
export function parseStatusKb(text: string, measure: MemoryMeasure): number {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return measure === "resident" ? field("VmRSS") : field("RssAnon") + field("RssShmem");
}

/**
 * The memory limit (bytes) that the memory cgroup of a process and its
 * parents set, from the text of /proc/<pid>/cgroup and a reader of cgroup
 * files; undefined when none is set (or none can be read).
 */
export function cgroupLimitBytes(procCgroup: string, read: (path: string) => string | undefined): number | undefined {
  const v1 = cgroupPath(procCgroup, "memory");
  const v2 = cgroupPath(procCgroup, undefined);
  const [base, file, path] = v1 !== undefined ? ["/sys/fs/cgroup/memory", "memory.limit_in_bytes", v1] : v2 !== undefined ? ["/sys/fs/cgroup", "memory.max", v2] : [];
  if (base === undefined || path === undefined) return undefined;
  let least: number | undefined;
  // Slurm may set the job's limit on the job's cgroup and leave the step's unset: each level counts.
  for (let dir = path.replace(/\/+$/, ""); ; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    const limit = Number(read(`${base}${dir}/${file}`)?.trim());
    // "max" (v2) or a number near 2^63 (v1) means no limit.
    if (Number.isFinite(limit) && limit > 0 && limit < 2 ** 60) least = Math.min(least ?? Infinity, limit);
    if (dir === "") break;
  }
  return least;
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
 * machine's or container's limit does not count), else `resident`.
 */
export function memoryMeasure(elementMb: number): MemoryMeasure {
  const limit = cgroupLimitBytes(readText("/proc/self/cgroup") ?? "", readText);
  return limit !== undefined && limit <= elementMb * 1.25 * 2 ** 20 ? "charged" : "resident";
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

/** The parents of the processes in `scope` (a cgroup folder), or of every process in /proc; empty where there is no /proc. */
function parents(scope: string | undefined): Map<number, number> {
  const out = new Map<number, number>();
  let pids: number[];
  try {
    pids = scope !== undefined ? cgroupPids(scope) : readdirSync("/proc").map(Number).filter(Number.isInteger);
  } catch {
    return out;
  }
  for (const pid of pids) {
    const text = readText(`/proc/${pid}/stat`);
    const ppid = text === undefined ? undefined : parseStatParent(text);
    if (ppid !== undefined) out.set(pid, ppid);
  }
  return out;
}

/** A process and everything it started (their pids), from a map of parents. */
export function processTree(root: number, parentOf: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

/**
 * The memory (KiB) of each root's process tree as `measure` counts it, in one
 * pass over the processes of `scope` (ownCgroupDir, or every process), with
 * the pids of each tree. A process that ended while it was read counts nothing.
 */
export function sampleTrees(roots: readonly number[], measure: MemoryMeasure, scope?: string): Map<number, { kb: number; pids: number[] }> {
  const parentOf = parents(scope);
  const out = new Map<number, { kb: number; pids: number[] }>();
  for (const root of roots) {
    const pids = processTree(root, parentOf);
    let kb = 0;
    for (const pid of pids) {
      const text = readText(`/proc/${pid}/status`);
      if (text !== undefined) kb += parseStatusKb(text, measure);
    }
    out.set(root, { kb, pids });
  }
  return out;
}

/** One process's memory in KiB as `measure` counts it; undefined when it cannot be read. */
export function processKb(pid: number, measure: MemoryMeasure): number | undefined {
  const text = readText(`/proc/${pid}/status`);
  return text === undefined ? undefined : parseStatusKb(text, measure);
}

/**
 * How many processes the kernel's OOM killer has killed on this machine
 * (`oom_kill` in /proc/vmstat), or undefined where that is not shown. It
 * counts the kills of every memory cgroup too, so a rise while a task ran
 * tells that a process killed by SIGKILL was the OOM killer's.
 */
export function oomKills(): number | undefined {
  const m = /^oom_kill (\d+)$/m.exec(readText("/proc/vmstat") ?? "");
  return m ? Number(m[1]) : undefined;
}
