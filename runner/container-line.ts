import { isAbsolute, normalize } from "node:path";
import type { ContainerRecord, ContainerRuntime } from "../src/protocol/container.js";

// The command line that starts a task's command in its container, for each
// runtime: pure, so that each runtime's line is checked without the runtime.

/** A container with its runtime values expanded on the node. */
export interface NodeContainer extends Omit<ContainerRecord, "image" | "binds"> {
  readonly image: string;
  readonly binds: readonly string[];
}

/** The command to start inside, and where. */
export interface ContainerCall {
  readonly program: string;
  readonly args: readonly string[];
  /** The task's own variables (its `env`, PyTorch's), set inside. */
  readonly env: Readonly<Record<string, string>>;
  /** The working directory, absolute; bound in unless a bind covers it. */
  readonly cwd: string;
}

/** What the node gives: its environment, the task's GPUs, the folders to bind. */
export interface ContainerNode {
  /** The runner's environment, as the task would get it without a container (its slot's GPUs included). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The task's GPUs as the node names them (indices or UUIDs), for CDI devices and enroot's hook; empty for none. */
  readonly gpus: readonly string[];
  /** Folders always bound at the same path: the run folder and node-local scratch. */
  readonly folders: readonly string[];
  /** This node's name (pyxis's srun runs on it). */
  readonly host: string;
  /** Whether the runner runs as root (podman's --userns=keep-id is for other users). */
  readonly root: boolean;
  /** Where podman writes conmon's pid (the container's processes are conmon's children, not the runner's). */
  readonly pidFile?: string;
  /** The CPUs the task may use (the runner's own): podman's container is outside the job's and the slot's cpuset. */
  readonly cpus?: readonly number[];
  /** The task's memory in MiB, for podman's --memory where it can set one (its container is outside the job's cgroup). */
  readonly memMb?: number;
}

/** The runtime's program, arguments and environment. */
export interface ContainerLine {
  readonly program: string;
  readonly args: string[];
  /** The environment the runtime itself starts with. */
  readonly env: Record<string, string>;
  /** Names of the variables passed in (for the log line). */
  readonly passed: string[];
}

/** The program each runtime is started with. */
export const RUNTIME_PROGRAM: Readonly<Record<ContainerRuntime, string>> = {
  apptainer: "apptainer",
  singularity: "singularity",
  podman: "podman",
  "podman-hpc": "podman-hpc",
  enroot: "enroot",
  pyxis: "srun",
};

/** Variables every container gets from the node: Slurm's and PBS's, slurmkit's, and which GPUs and threads the task has. */
const ALWAYS = [/^SLURM_/, /^PBS_/, /^SLURMKIT_/, /^(CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ROCR_VISIBLE_DEVICES|OMP_NUM_THREADS|NCPUS|TMPDIR)$/];

/** One bind: where from, where to, read-only. */
interface Bind {
  readonly src: string;
  readonly dst: string;
  readonly ro: boolean;
}

/** The binds, each once: the user's, then the working directory and the node's folders unless a bind already holds them at the same path. */
export function containerBinds(c: NodeContainer, call: ContainerCall, node: ContainerNode): Bind[] {
  const out: Bind[] = [];
  const add = (b: Bind) => {
    if (!out.some((o) => o.dst === b.dst)) out.push(b);
  };
  for (const text of c.binds) {
    const [src, dst, mode] = text.split(":");
    add({ src: normalize(src!), dst: normalize(dst ?? src!), ro: mode === "ro" });
  }
  for (const folder of [call.cwd, ...node.folders].map((f) => normalize(f))) {
    if (!isAbsolute(folder)) continue;
    const covered = out.some((b) => b.src === b.dst && (folder === b.dst || folder.startsWith(b.dst.endsWith("/") ? b.dst : `${b.dst}/`)));
    if (!covered) add({ src: folder, dst: folder, ro: false });
  }
  return out;
}

/** The variables passed in: the task's own, then the node's that every container gets or `passEnv` names. */
export function containerEnv(c: NodeContainer, call: ContainerCall, node: ContainerNode): Record<string, string> {
  const names = c.passEnv ?? [];
  const wanted = (name: string) => c.cleanEnv === false || ALWAYS.some((re) => re.test(name)) || names.some((n) => (n.endsWith("*") ? name.startsWith(n.slice(0, -1)) : name === n));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.env)) if (v !== undefined && wanted(k)) out[k] = v;
  return { ...out, ...call.env };
}

/**
 * The runtime's command line for `call` in `c`. Values go through the
 * environment where the runtime can take a name alone (podman, enroot,
 * pyxis) or a prefix (apptainer, singularity), never into a shell.
 */
export function containerLine(c: NodeContainer, call: ContainerCall, node: ContainerNode): ContainerLine {
  const binds = containerBinds(c, call, node);
  const inside = containerEnv(c, call, node);
  const passed = Object.keys(inside).sort();
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.env)) if (v !== undefined) base[k] = v;
  const gpus = c.gpus ?? node.gpus.length > 0;
  const command = [call.program, ...call.args];
  switch (c.runtime) {
    case "apptainer":
    case "singularity": {
      // A prefixed variable reaches the container even with --cleanenv; its value never passes through argv.
      const prefix = c.runtime === "apptainer" ? "APPTAINERENV_" : "SINGULARITYENV_";
      const env = { ...base };
      for (const name of passed) env[prefix + name] = inside[name]!;
      const args = [
        "exec",
        ...(c.cleanEnv === false ? [] : ["--cleanenv"]),
        ...(gpus ? ["--nv"] : []),
        ...(c.writable ? ["--writable-tmpfs"] : []),
        ...binds.flatMap((b) => ["--bind", `${b.src}:${b.dst}${b.ro ? ":ro" : ""}`]),
        "--pwd",
        call.cwd,
        ...(c.options ?? []),
        c.image,
        ...command,
      ];
      return { program: RUNTIME_PROGRAM[c.runtime], args, env, passed };
    }
    case "podman":
    case "podman-hpc": {
      // Host PID, network and IPC namespaces, as apptainer's: the command is no PID 1 (which ignores signals it does not handle), and ranks meet as on the node.
      const args = [
        "run",
        "--rm",
        "--pid=host",
        "--network=host",
        "--ipc=host",
        "--security-opt=label=disable",
        ...(node.pidFile ? ["--conmon-pidfile", node.pidFile] : []),
        ...(node.root ? [] : ["--userns=keep-id"]),
        ...(node.cpus?.length ? [`--cpuset-cpus=${node.cpus.join(",")}`] : []),
        ...(node.memMb ? [`--memory=${node.memMb}m`] : []),
        ...(c.writable ? [] : ["--read-only"]),
        ...(gpus && c.runtime === "podman-hpc" ? ["--gpu"] : []),
        ...(gpus && c.runtime === "podman" ? (node.gpus.length ? node.gpus : ["all"]).flatMap((g) => ["--device", `nvidia.com/gpu=${g}`]) : []),
        ...binds.flatMap((b) => ["--volume", `${b.src}:${b.dst}${b.ro ? ":ro" : ""}`]),
        ...passed.flatMap((name) => ["--env", name]),
        "--workdir",
        call.cwd,
        ...(c.options ?? []),
        c.image,
        ...command,
      ];
      // CDI devices are numbered from 0 inside: the task's CUDA_VISIBLE_DEVICES follows.
      const env = { ...base, ...inside };
      if (gpus && c.runtime === "podman" && node.gpus.length && inside.CUDA_VISIBLE_DEVICES !== undefined) env.CUDA_VISIBLE_DEVICES = node.gpus.map((_, i) => String(i)).join(",");
      return { program: RUNTIME_PROGRAM[c.runtime], args, env, passed };
    }
    case "enroot": {
      // enroot starts with a clean environment (--env NAME copies the node's value), has no working-directory option, and exposes GPUs through its NVIDIA hook.
      const env = { ...base, ...inside };
      env.NVIDIA_VISIBLE_DEVICES = gpus ? (node.gpus.length ? node.gpus.join(",") : "all") : "void";
      if (gpus) env.NVIDIA_DRIVER_CAPABILITIES = node.env.NVIDIA_DRIVER_CAPABILITIES ?? "compute,utility";
      const args = [
        "start",
        ...(c.writable ? ["--rw"] : []),
        ...binds.flatMap((b) => ["--mount", `${b.src}:${b.dst}${b.ro ? ":x-create=auto,rbind,ro" : ""}`]),
        ...passed.flatMap((name) => ["--env", name]),
        ...(c.options ?? []),
        c.image,
        "sh",
        "-c",
        'cd -- "$0" && exec "$@"',
        call.cwd,
        ...command,
      ];
      return { program: "enroot", args, env, passed };
    }
    case "pyxis": {
      // One step on this node, beside the runner's; pyxis exports the node's environment, and --container-env makes the task's win over the image's.
      const env = { ...base, ...inside };
      const forced = [...new Set([...Object.keys(call.env), ...["CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"].filter((k) => k in inside)])].sort();
      // srun exports only these (and Slurm's own) to the step; its command runs in a step of its own, outside the runner's count of memory and CPU.
      const args = [
        "--overlap",
        `--export=${c.cleanEnv === false ? "ALL" : passed.join(",")}`,
        "--nodes=1",
        "--ntasks=1",
        `--nodelist=${node.host}`,
        `--container-image=${c.image}`,
        ...(binds.length ? [`--container-mounts=${binds.map((b) => `${b.src}:${b.dst}${b.ro ? ":ro" : ""}`).join(",")}`] : []),
        `--container-workdir=${call.cwd}`,
        ...(forced.length ? [`--container-env=${forced.join(",")}`] : []),
        c.writable ? "--container-writable" : "--container-readonly",
        ...(c.options ?? []),
        ...command,
      ];
      return { program: "srun", args, env, passed };
    }
  }
}

/**
 * The task's GPUs as the node names them, for CDI devices and enroot's hook:
 * CUDA_VISIBLE_DEVICES, which Slurm numbers from 0 where it confines devices,
 * mapped by position to SLURM_STEP_GPUS or SLURM_JOB_GPUS (the node's own
 * indices) through the element's list (SLURMKIT_ELEMENT_GPUS, which a worker
 * gives its slots). Undefined when those lists do not match: no guess.
 */
export function physicalGpus(env: Readonly<Record<string, string | undefined>>): string[] | undefined {
  const list = (text: string | undefined) =>
    (text ?? "")
      .split(",")
      .map((g) => g.trim())
      .filter((g) => g !== "" && g !== "NoDevFiles");
  const own = list(env.CUDA_VISIBLE_DEVICES);
  const element = env.SLURMKIT_ELEMENT_GPUS === undefined ? own : list(env.SLURMKIT_ELEMENT_GPUS);
  // A step's own (srun's ranks), else the job's: the node's indices of what Slurm gave.
  const job = list(env.SLURM_STEP_GPUS ?? env.SLURM_JOB_GPUS);
  if (job.length === 0) return own;
  // Never a guess: another job's GPU could be the one named.
  if (job.length !== element.length) return undefined;
  return own.map((g) => {
    const at = element.indexOf(g);
    return at < 0 ? g : job[at]!;
  });
}
