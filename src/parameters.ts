import { z } from "zod";
import { ParameterError } from "./errors.js";
import { isSetupStep, type SetupStep } from "./setup-steps.js";
import { closeMatches } from "./suggest.js";
import { formatDuration, formatMemory, parseDurationSeconds, parseMemoryMegabytes } from "./units.js";

const show = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v) ?? String(v));

/** A zod field that checks and converts with `convert`, which returns undefined for bad input. */
function field<T>(expected: string, convert: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx): T => {
    const out = convert(value);
    if (out === undefined) {
      ctx.addIssue({ code: "custom", message: `to be ${expected}, got \`${show(value)}\`` });
      return z.NEVER;
    }
    return out;
  });
}

const positiveInteger = () =>
  field("a positive integer", (v) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : typeof v === "string" && /^[1-9]\d*$/.test(v) ? Number(v) : undefined));

const text = (pattern = /^[^\n\r\0]+$/, expected = "a non-empty string on one line") =>
  field(expected, (v) => (typeof v === "string" && pattern.test(v) ? v : undefined));

const duration = () =>
  field("minutes or a Slurm duration such as `90`, `01:30:00` or `1-00:00:00`", (v) =>
    typeof v === "number" || typeof v === "string" ? parseDurationSeconds(v) : undefined,
  );

const memory = () =>
  field("megabytes or a size with a unit such as `500M`, `32G` or `32GB`", (v) =>
    typeof v === "number" || typeof v === "string" ? parseMemoryMegabytes(v) : undefined,
  );

const SIGNAL = /^(?:(B|R):)?(?:SIG)?([A-Z0-9]+)(?:@(\d+))?$/;

/** The signal Slurm sends before the time limit. */
export interface SignalSpec {
  /** Signal name without SIG, e.g. "USR1". */
  readonly name: string;
  /** Seconds before the time limit. @default 60 (Slurm's) */
  readonly secondsBefore?: number;
  /** Send it to the batch shell only (`B:`), not to the job steps. */
  readonly batchOnly?: boolean;
}

function convertSignal(v: unknown): string | undefined {
  if (typeof v === "string") {
    const m = SIGNAL.exec(v.trim());
    return m ? `${m[1] ? `${m[1]}:` : ""}${m[2]}${m[3] ? `@${m[3]}` : ""}` : undefined;
  }
  if (v && typeof v === "object") {
    const s = v as Partial<SignalSpec>;
    if (typeof s.name !== "string" || !/^(?:SIG)?[A-Z0-9]+$/.test(s.name)) return undefined;
    if (s.secondsBefore !== undefined && !(Number.isInteger(s.secondsBefore) && s.secondsBefore >= 0)) return undefined;
    return `${s.batchOnly ? "B:" : ""}${s.name.replace(/^SIG/, "")}${s.secondsBefore !== undefined ? `@${s.secondsBefore}` : ""}`;
  }
  return undefined;
}

/** sbatch options that slurmkit sets itself; the raw map may not set them, nor an abbreviation sbatch would accept. */
const MANAGED_SBATCH = ["array", "output", "error", "parsable", "wrap"];
const isManaged = (key: string) => MANAGED_SBATCH.some((m) => m.startsWith(key));

function convertRaw(v: unknown): Record<string, string | true> | undefined {
  if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
  const out: Record<string, string | true> = {};
  for (const [key, value] of Object.entries(v)) {
    if (!/^[a-z][a-z0-9-]*$/.test(key) || isManaged(key)) return undefined;
    if (value === true) out[key] = true;
    else if ((typeof value === "string" && !/[\n\r\0]/.test(value)) || typeof value === "number") out[key] = String(value);
    else return undefined;
  }
  return out;
}

/** The one schema for job resources and scheduling options. */
export const slurmParametersSchema = z.strictObject({
  /** Job name (`--job-name`). */
  jobName: text().optional(),
  partition: text().optional(),
  /** Number of nodes, or a range such as "2-4". */
  nodes: field("a positive integer or a range such as `2-4`", (v) =>
    typeof v === "number" && Number.isInteger(v) && v > 0 ? String(v) : typeof v === "string" && /^[1-9]\d*(-[1-9]\d*)?$/.test(v) ? v : undefined,
  ).optional(),
  ntasksPerNode: positiveInteger().optional(),
  cpusPerTask: positiveInteger().optional(),
  /** GPUs per node: a count, or "type:count". */
  gpusPerNode: field("a positive integer or `type:count` such as `a100:2`", (v) =>
    typeof v === "number" && Number.isInteger(v) && v > 0 ? String(v) : typeof v === "string" && /^([A-Za-z0-9_.-]+:)?[1-9]\d*$/.test(v) ? v : undefined,
  ).optional(),
  gres: text(/^[A-Za-z0-9_.:,=-]+$/, "a gres string such as `gpu:t4:1`").optional(),
  /** Time limit: minutes, or "HH:MM:SS", "D-HH:MM:SS" and Slurm's other forms. Stored as seconds. */
  time: duration().optional(),
  /** Memory per node: megabytes, or "32G", "32GB", "500M". Stored as megabytes. */
  mem: memory().optional(),
  /** Memory per CPU, like `mem`. */
  memPerCpu: memory().optional(),
  account: text().optional(),
  qos: text().optional(),
  constraint: text().optional(),
  exclude: text().optional(),
  nodelist: text().optional(),
  /** A Slurm dependency such as "afterok:123". */
  dependency: text().optional(),
  /** At most this many array elements run at once (`--array=...%P`). */
  arrayParallelism: positiveInteger().optional(),
  /** The signal Slurm sends before the time limit: "USR1@90", "B:USR1@90" or a SignalSpec. */
  signal: field("a signal such as `USR1@90` or `{ name: \"USR1\", secondsBefore: 90 }`", convertSignal).optional(),
  /** Any other sbatch option, by its long name without dashes: `{ "mail-type": "END", exclusive: true }`. */
  sbatch: field("an object of sbatch long options (lower-case, without dashes) to string, number or true; not array, output, error or wrap", convertRaw).optional(),
  /** Setup steps and raw lines, run before the task, in order. */
  setup: field("an array of setup steps (modules(), venvPerNode(), ...) and strings", (v) =>
    Array.isArray(v) && v.every((l) => typeof l === "string" || isSetupStep(l)) ? (v as (string | SetupStep)[]) : undefined,
  ).optional(),
});

/** Slurm parameters as users write them. */
export type SlurmParametersInput = {
  readonly jobName?: string;
  readonly partition?: string;
  readonly nodes?: number | string;
  readonly ntasksPerNode?: number;
  readonly cpusPerTask?: number;
  readonly gpusPerNode?: number | string;
  readonly gres?: string;
  readonly time?: number | string;
  readonly mem?: number | string;
  readonly memPerCpu?: number | string;
  readonly account?: string;
  readonly qos?: string;
  readonly constraint?: string;
  readonly exclude?: string;
  readonly nodelist?: string;
  readonly dependency?: string;
  readonly arrayParallelism?: number;
  readonly signal?: string | SignalSpec;
  readonly sbatch?: Readonly<Record<string, string | number | true>>;
  readonly setup?: readonly (string | SetupStep)[];
};

/** Slurm parameters after validation: time in seconds, memory in megabytes. */
export type SlurmParameters = z.output<typeof slurmParametersSchema>;

/** The accepted parameter names. */
export const PARAMETER_NAMES: readonly string[] = Object.keys(slurmParametersSchema.shape).sort();

/**
 * Validates Slurm parameters. Throws a ParameterError naming every bad key and
 * what it accepts; unknown keys get close matches and the list of accepted ones.
 */
export function parseParameters(input: unknown): SlurmParameters {
  const result = slurmParametersSchema.safeParse(input);
  if (result.success) return result.data;
  const problems: string[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const near = closeMatches(key, PARAMETER_NAMES);
        problems.push(`Unknown parameter \`${key}\`${near.length ? ` (did you mean ${near.map((n) => `\`${n}\``).join(" or ")}?)` : ""}; accepted: ${PARAMETER_NAMES.join(", ")}`);
      }
    } else if (issue.code === "invalid_type" && issue.path.length === 0) {
      problems.push(`Expected Slurm parameters to be an object, got \`${show(input)}\``);
    } else {
      problems.push(`Expected \`${issue.path.join(".")}\` ${issue.message}`);
    }
  }
  throw new ParameterError("Slurm parameters", problems);
}

const FLAG_NAMES: Record<string, string> = {
  jobName: "job-name",
  partition: "partition",
  nodes: "nodes",
  ntasksPerNode: "ntasks-per-node",
  cpusPerTask: "cpus-per-task",
  gpusPerNode: "gpus-per-node",
  gres: "gres",
  account: "account",
  qos: "qos",
  constraint: "constraint",
  exclude: "exclude",
  nodelist: "nodelist",
  dependency: "dependency",
  signal: "signal",
};

/** The sbatch long options the parameters ask for, as [name, value] pairs; only what was set. */
export function toSbatchOptions(p: SlurmParameters): Array<[string, string | true]> {
  const out: Array<[string, string | true]> = [];
  for (const [key, flag] of Object.entries(FLAG_NAMES)) {
    const value = p[key as keyof SlurmParameters];
    if (value !== undefined) out.push([flag, String(value)]);
  }
  if (p.time !== undefined) out.push(["time", formatDuration(p.time)]);
  if (p.mem !== undefined) out.push(["mem", formatMemory(p.mem)]);
  if (p.memPerCpu !== undefined) out.push(["mem-per-cpu", formatMemory(p.memPerCpu)]);
  for (const [key, value] of Object.entries(p.sbatch ?? {})) out.push([key, value]);
  return out;
}

/** Tasks per array element: nodes × ntasksPerNode when both are known, else 1. */
export function ranksPerJob(p: SlurmParameters): number {
  const nodes = p.nodes && /^\d+$/.test(p.nodes) ? Number(p.nodes) : 1;
  return nodes * (p.ntasksPerNode ?? 1);
}
