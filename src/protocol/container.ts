// A task's container as the spec file and the runner's command line carry
// it: which runtime, which image, what is bound in. The runner (outside the
// image) turns it into the runtime's command line (runner/container.ts).
import { closeMatches } from "../base/suggest.js";
import { lateOk, type LateString } from "./runtime-value.js";
import { packr } from "./codec.js";

/** The container runtimes slurmkit can start a task's command through. */
export const CONTAINER_RUNTIMES = ["apptainer", "singularity", "podman", "podman-hpc", "enroot", "pyxis"] as const;

/** One of CONTAINER_RUNTIMES. */
export type ContainerRuntime = (typeof CONTAINER_RUNTIMES)[number];

/** Whether the image is a file on the node (a .sif or .sqsh): then slurmkit checks that it exists. */
export function imageIsFile(runtime: ContainerRuntime, image: string): boolean {
  if (runtime === "apptainer" || runtime === "singularity") return !/^[a-z][a-z0-9+.-]*:\/\//.test(image) && !/^(docker|oras|library|shub|instance):/.test(image);
  if (runtime === "enroot") return image.includes("/") || /\.sqsh$/.test(image);
  if (runtime === "pyxis") return image.startsWith("/") || image.startsWith("./");
  return false;
}

/** A task's container, as stored (container() and command()'s `container` option build it). */
export interface ContainerRecord {
  readonly runtime: ContainerRuntime;
  /** A .sif or .sqsh file, or an image name the runtime knows (podman: `localhost/pytorch:2.3`). */
  readonly image: LateString;
  /** Extra binds: `src`, `src:dest` or `src:dest:ro`. The working directory, the run folder and $SLURM_TMPDIR are bound too. */
  readonly binds?: readonly LateString[];
  /** Variables passed from the node besides SLURM_*, SLURMKIT_* and the GPU variables; a name ending in `*` is a prefix. */
  readonly passEnv?: readonly string[];
  /** Keep the node's environment out (apptainer's --cleanenv; podman and pyxis start clean anyway). @default true */
  readonly cleanEnv?: boolean;
  /** Write to the image: apptainer's --writable-tmpfs, podman without --read-only, enroot's --rw. @default false */
  readonly writable?: boolean;
  /** Expose the task's GPUs: --nv, CDI devices, enroot's NVIDIA hook. @default true when the task has GPUs */
  readonly gpus?: boolean;
  /** Extra options for the runtime, put before the image as given (e.g. `["--cgroups=disabled"]`). */
  readonly options?: readonly string[];
}

const KEYS = ["runtime", "image", "binds", "passEnv", "cleanEnv", "writable", "gpus", "options", "runnerInside"];

/**
 * What is wrong with a container's options, one line each, naming the key
 * and what is accepted (empty when nothing is). `where` prefixes the keys,
 * as in `container.image`.
 */
export function containerProblems(value: unknown, where = ""): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [`Expected \`${where.replace(/\.$/, "") || "container"}\` to be an object such as { runtime: "apptainer", image: "/project/pytorch.sif" }, got \`${String(value)}\``];
  }
  const o = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(o)) {
    // The runtimes' own flag names, as users know them.
    const near = KEYS.includes(key) ? [] : key === "nv" || key === "nvccli" ? ["gpus"] : closeMatches(key, KEYS);
    if (!KEYS.includes(key)) problems.push(`Unknown \`${where}${key}\`${near.length ? ` (did you mean ${near.map((n) => `\`${n}\``).join(" or ")}?)` : ""}; accepted: ${KEYS.join(", ")}`);
  }
  if (!CONTAINER_RUNTIMES.includes(o.runtime as ContainerRuntime)) {
    problems.push(`Expected \`${where}runtime\` to be one of ${CONTAINER_RUNTIMES.map((r) => `"${r}"`).join(", ")}, got \`${String(o.runtime)}\``);
  }
  if (!lateOk(o.image)) problems.push(`Expected \`${where}image\` to be a .sif or .sqsh path, an image name or a runtime value (not starting with -), got \`${String(o.image)}\``);
  if (o.binds !== undefined) {
    if (!Array.isArray(o.binds)) problems.push(`Expected \`${where}binds\` to be an array such as ["/project", "/data:/data:ro"], got \`${String(o.binds)}\``);
    else
      for (const [i, b] of o.binds.entries()) {
        if (!lateOk(b)) problems.push(`Expected \`${where}binds[${i}]\` to be \`src\`, \`src:dest\` or \`src:dest:ro\` (a path or runtime value), got \`${String(b)}\``);
        else if (typeof b === "string" && bindProblem(b)) problems.push(`\`${where}binds[${i}]\` ${bindProblem(b)}`);
      }
  }
  if (o.passEnv !== undefined) {
    if (!Array.isArray(o.passEnv)) problems.push(`Expected \`${where}passEnv\` to be an array of variable names such as ["WANDB_API_KEY", "HF_*"], got \`${String(o.passEnv)}\``);
    else
      for (const [i, n] of o.passEnv.entries())
        if (typeof n !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(n)) problems.push(`Expected \`${where}passEnv[${i}]\` to be a variable name, or a prefix ending in *, got \`${String(n)}\``);
  }
  for (const key of ["cleanEnv", "writable", "gpus", "runnerInside"]) {
    if (o[key] !== undefined && typeof o[key] !== "boolean") problems.push(`Expected \`${where}${key}\` to be true or false, got \`${String(o[key])}\``);
  }
  if (o.options !== undefined) {
    if (!Array.isArray(o.options) || o.options.some((x) => typeof x !== "string" || x === "" || x.includes("\0"))) {
      problems.push(`Expected \`${where}options\` to be an array of non-empty strings such as ["--cgroups=disabled"], got \`${String(o.options)}\``);
    }
  }
  return problems;
}

/** What is wrong with a literal bind (`src`, `src:dest`, `src:dest:ro`/`rw`), or undefined. */
export function bindProblem(bind: string): string | undefined {
  const parts = bind.split(":");
  if (parts.length > 3) return `has more than three parts: \`${bind}\`; accepted: src, src:dest, src:dest:ro`;
  if (parts.some((p) => p === "")) return `has an empty part: \`${bind}\``;
  if (parts.length === 3 && parts[2] !== "ro" && parts[2] !== "rw") return `ends in \`:${parts[2]}\`; accepted: :ro or :rw`;
  if (parts.length >= 2 && !parts[1]!.startsWith("/")) return `has a destination that is not absolute: \`${parts[1]}\``;
  if (bind.includes(",")) return `holds a comma, which runtimes read as a separator: \`${bind}\``;
  return undefined;
}

/** The stored record from validated options (without `runnerInside`, and without keys left at their defaults). */
export function containerRecord(o: ContainerRecord): ContainerRecord {
  return {
    runtime: o.runtime,
    image: o.image,
    ...(o.binds?.length ? { binds: [...o.binds] } : {}),
    ...(o.passEnv?.length ? { passEnv: [...o.passEnv] } : {}),
    ...(o.cleanEnv === false ? { cleanEnv: false } : {}),
    ...(o.writable ? { writable: true } : {}),
    ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
    ...(o.options?.length ? { options: [...o.options] } : {}),
  };
}

/** The record as one shell-safe word for the runner's command line (base64url of its msgpack). */
export function encodeContainerArg(record: ContainerRecord): string {
  return packr.pack(record).toString("base64url");
}

/** The record from encodeContainerArg's word; an Error naming what is wrong otherwise. */
export function decodeContainerArg(word: string): ContainerRecord {
  let value: unknown;
  try {
    value = packr.unpack(Buffer.from(word, "base64url"));
  } catch (error) {
    throw new Error(`--container is not a container record: ${(error as Error).message}`);
  }
  const problems = containerProblems(value);
  if (problems.length) throw new Error(`--container is not a valid container record: ${problems[0]}`);
  return value as ContainerRecord;
}
