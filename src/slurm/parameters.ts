import { constants } from "node:os";
import { z } from "zod";
import { ParameterError } from "../base/errors.js";
import { isSetupStep, type SetupStep } from "../setup/index.js";
import { closeMatches } from "../base/suggest.js";
import { formatSlurmTime, formatMemory, parseDurationSeconds, parseMemoryMegabytes } from "./units.js";

const show = (v: unknown): string => (typeof v === "string" ? v : (JSON.stringify(v) ?? String(v)));

/**
 * A zod field that users write as `In` and that checks and converts with
 * `convert`, which returns undefined for bad input (any value reaches it, so
 * JavaScript callers get the same messages).
 */
function field<In, Out>(expected: string, convert: (value: unknown) => Out | undefined) {
  return z.custom<In>().transform((value, ctx): Out => {
    const out = convert(value);
    if (out === undefined) {
      ctx.addIssue({ code: "custom", message: `to be ${expected}, got \`${show(value)}\`` });
      return z.NEVER;
    }
    return out;
  });
}

const positiveInteger = () =>
  field<number, number>("a positive integer", (v) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : typeof v === "string" && /^[1-9]\d*$/.test(v) ? Number(v) : undefined));

const nonNegativeInteger = () =>
  field<number, number>("a non-negative integer", (v) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : undefined));

const text = (pattern = /^[^\n\r\0]+$/, expected = "a non-empty string on one line") => field<string, string>(expected, (v) => (typeof v === "string" && pattern.test(v) ? v : undefined));

const duration = () =>
  field<number | string, number>("minutes or a Slurm duration such as `90`, `01:30:00` or `1-00:00:00`", (v) => (typeof v === "number" || typeof v === "string" ? parseDurationSeconds(v) : undefined));

const memory = () =>
  field<number | string, number>("megabytes or a size with a unit such as `500M`, `32G` or `32GB`", (v) => (typeof v === "number" || typeof v === "string" ? parseMemoryMegabytes(v) : undefined));

/** `mem`: a size, or 0 (Slurm's "all of each node's memory"). */
const memoryOrWhole = () =>
  field<number | string, number>("megabytes or a size with a unit such as `500M`, `32G` or `32GB`, or 0 for all of each node's memory", (v) =>
    v === 0 || (typeof v === "string" && /^0+\s*([KMGT]i?B?)?$/i.test(v.trim())) ? 0 : typeof v === "number" || typeof v === "string" ? parseMemoryMegabytes(v) : undefined,
  );

const SIGNAL = /^(?:(B|R):)?(?:SIG)?([A-Z0-9]+)(?:@(\d+))?$/;

/** The signal Slurm sends before the time limit. */
export interface SignalSpec {
  /** Signal name without SIG, e.g. "USR1". */
  readonly name: string;
  /** Seconds before the time limit. @default 60 (Slurm's) */
  readonly secondsBefore?: number;
}

/** Signals that would end or pause the job (or a worker's slots) rather than warn it. */
const NOT_WARNINGS = new Set(["KILL", "STOP", "TERM", "INT", "CONT", "TSTP", "TTIN", "TTOU"]);
/** A signal name Node knows and that only warns. */
const isWarningName = (name: string) => `SIG${name}` in constants.signals && !NOT_WARNINGS.has(name);

function convertSignal(v: unknown): string | undefined {
  if (typeof v === "string") {
    const m = SIGNAL.exec(v.trim());
    return m && isWarningName(m[2]!) ? `${m[1] ? `${m[1]}:` : ""}${m[2]}${m[3] ? `@${m[3]}` : ""}` : undefined;
  }
  if (v && typeof v === "object") {
    const s = v as Partial<SignalSpec>;
    // Nothing else is read: `batchOnly` (deprecated at 0.1.0, ignored since the signal always goes to the batch shell) is gone, and says so.
    if (Object.keys(s).some((key) => key !== "name" && key !== "secondsBefore")) return undefined;
    if (typeof s.name !== "string" || !/^(?:SIG)?[A-Z0-9]+$/.test(s.name) || !isWarningName(s.name.replace(/^SIG/, ""))) return undefined;
    if (s.secondsBefore !== undefined && !(Number.isInteger(s.secondsBefore) && s.secondsBefore >= 0)) return undefined;
    return `${s.name.replace(/^SIG/, "")}${s.secondsBefore !== undefined ? `@${s.secondsBefore}` : ""}`;
  }
  return undefined;
}

/** sbatch options that slurmkit sets itself; the raw map may not set them, nor an abbreviation sbatch would accept. */
export const MANAGED_SBATCH: readonly string[] = ["array", "output", "error", "parsable", "wrap", "signal"];
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

/** How one parameter reaches sbatch and the command line. */
interface ParameterDef {
  readonly schema: z.ZodType;
  /** The sbatch long option it becomes, if it becomes one by itself. */
  readonly sbatch?: string;
  /** How its validated value is written on that option. @default String */
  readonly render?: (value: never) => string;
  /** How `--slurm key=value` stores it: as typed text, as an integer, or not at all (it has its own syntax). */
  readonly flag: "text" | "integer" | false;
}

const def = <S extends z.ZodType>(schema: S, rest: Omit<ParameterDef, "schema">) => ({ schema, ...rest });

/**
 * Every parameter, once: its schema, the sbatch option it becomes and how
 * flags store it. Problems are listed in this order.
 */
const PARAMETERS = {
  /** Job name (`--job-name`). */
  jobName: def(text(), { sbatch: "job-name", flag: "text" }),
  partition: def(text(), { sbatch: "partition", flag: "text" }),
  /** Number of nodes, or a range such as "2-4". */
  nodes: def(
    field<number | string, string>("a positive integer or a range such as `2-4`", (v) =>
      typeof v === "number" && Number.isInteger(v) && v > 0 ? String(v) : typeof v === "string" && /^[1-9]\d*(-[1-9]\d*)?$/.test(v) ? v : undefined,
    ),
    { sbatch: "nodes", flag: "text" },
  ),
  ntasksPerNode: def(positiveInteger(), { sbatch: "ntasks-per-node", flag: "integer" }),
  /** CPUs per task. */
  cpusPerTask: def(positiveInteger(), { sbatch: "cpus-per-task", flag: "integer" }),
  /** GPUs per node: a count, or "type:count". */
  gpusPerNode: def(
    field<number | string, string>("a positive integer or `type:count` such as `a100:2`", (v) =>
      typeof v === "number" && Number.isInteger(v) && v > 0 ? String(v) : typeof v === "string" && /^([A-Za-z0-9_.-]+:)?[1-9]\d*$/.test(v) ? v : undefined,
    ),
    { sbatch: "gpus-per-node", flag: "text" },
  ),
  gres: def(text(/^[A-Za-z0-9_.:,=-]+$/, "a gres string such as `gpu:t4:1`"), { sbatch: "gres", flag: "text" }),
  /** Time limit: minutes, or "HH:MM:SS", "D-HH:MM:SS" and Slurm's other forms. Stored as seconds. */
  time: def(duration(), { sbatch: "time", render: formatSlurmTime, flag: "text" }),
  /** Memory per node: megabytes, or "32G", "32GB", "500M"; 0 is Slurm's "all of each node's memory". Stored as megabytes. */
  mem: def(memoryOrWhole(), { sbatch: "mem", render: formatMemory, flag: "text" }),
  /** Memory per CPU, like `mem`. */
  memPerCpu: def(memory(), { sbatch: "mem-per-cpu", render: formatMemory, flag: "text" }),
  account: def(text(), { sbatch: "account", flag: "text" }),
  qos: def(text(), { sbatch: "qos", flag: "text" }),
  constraint: def(text(), { sbatch: "constraint", flag: "text" }),
  exclude: def(text(), { sbatch: "exclude", flag: "text" }),
  nodelist: def(text(), { sbatch: "nodelist", flag: "text" }),
  /** A Slurm dependency such as "afterok:123". */
  dependency: def(text(), { sbatch: "dependency", flag: "text" }),
  /** At most this many array elements run at once (`--array=...%P`). */
  arrayParallelism: def(positiveInteger(), { flag: "integer" }),
  /**
   * The signal Slurm sends before the time limit, and on preemption where the
   * cluster allows it: "USR1@90" or a SignalSpec. @default "USR2@90" (less
   * when the job's time limit, a worker's walltime, is under 3 minutes, none
   * under 91 s, so that it never comes in a job's first 30 s; it goes to the
   * batch shell, which passes it on to every rank; a task's checkpoint or
   * `requeue` answers it).
   */
  signal: def(
    field<string | SignalSpec, string>('a signal name such as `USR2@90` or `{ name: "USR2", secondsBefore: 90 }` (not KILL, STOP, TERM, INT or CONT, which end or pause the job)', convertSignal),
    { sbatch: "signal", flag: "text" },
  ),
  /** After a timeout a task that checkpoints is requeued at most this many times; preemptions do not count. @default 3 */
  maxRequeues: def(nonNegativeInteger(), { flag: "integer" }),
  /** Any other sbatch option, by its long name without dashes: `{ "mail-type": "END", exclusive: true }`. */
  sbatch: def(
    field<Readonly<Record<string, string | number | true>>, Record<string, string | true>>(
      "an object of sbatch long options (lower-case, without dashes) to string, number or true; not array, output, error, wrap or signal (use the signal parameter)",
      convertRaw,
    ),
    { flag: false },
  ),
  /** Setup steps and raw lines, run before the task, in order. */
  setup: def(
    field<readonly (string | SetupStep)[], (string | SetupStep)[]>("an array of setup steps (modules(), venvPerNode(), ...) and strings", (v) =>
      Array.isArray(v) && v.every((l) => typeof l === "string" || isSetupStep(l)) ? (v as (string | SetupStep)[]) : undefined,
    ),
    { flag: false },
  ),
} satisfies Record<string, ParameterDef>;

type ParameterName = keyof typeof PARAMETERS;

/** The one schema for job resources and scheduling options, made from the parameter table. */
export const slurmParametersSchema = z.strictObject(
  Object.fromEntries(Object.entries(PARAMETERS).map(([k, p]) => [k, p.schema.optional()])) as {
    [K in ParameterName]: z.ZodOptional<(typeof PARAMETERS)[K]["schema"]>;
  },
);

/** Slurm parameters as users write them (inferred from the schema). */
export type SlurmParametersInput = Readonly<z.input<typeof slurmParametersSchema>>;

/** Parameters that `--slurm key=value` takes, with how each is stored ("text" as typed, or "integer"). */
export const FLAG_PARAMETERS: ReadonlyMap<string, "text" | "integer"> = new Map(Object.entries(PARAMETERS).flatMap(([k, p]: [string, ParameterDef]) => (p.flag ? [[k, p.flag] as const] : [])));

/** Slurm parameters after validation: time in seconds, memory in megabytes. */
export type SlurmParameters = z.output<typeof slurmParametersSchema>;

/** The accepted parameter names. */
export const PARAMETER_NAMES: readonly string[] = Object.keys(slurmParametersSchema.shape).sort();

/**
 * Validates Slurm parameters. Throws a ParameterError naming every bad key and
 * what it accepts; unknown keys get close matches and the list of accepted ones.
 */
export function parseParameters(input: unknown): SlurmParameters {
  const { problems: twice, rest } = setTwiceProblems(input);
  const result = slurmParametersSchema.safeParse(rest);
  if (result.success) {
    const problems = [...twice, ...conflictProblems(result.data)];
    if (problems.length) throw new ParameterError("Slurm parameters", problems);
    return result.data;
  }
  const problems: string[] = [...twice];
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

/** The parameter that becomes each sbatch option. */
const PARAMETER_OF_OPTION: ReadonlyMap<string, string> = new Map(Object.entries(PARAMETERS).flatMap(([k, p]: [string, ParameterDef]) => (p.sbatch ? [[p.sbatch, k] as const] : [])));

/** An option name as sbatch spells it: `jobName` and `job_name` are `job-name`. */
const kebab = (key: string) =>
  key
    .replace(/_/g, "-")
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .toLowerCase();

/**
 * Raw `sbatch` keys that set what a parameter sets (in any spelling: camel,
 * snake or kebab; the parameter is the one way, as for `--slurm` flags, and
 * sbatch would take the last of two `--mem` lines without a word), and keys
 * not in sbatch's spelling.
 */
function setTwiceProblems(input: unknown): { problems: string[]; rest: unknown } {
  const raw = (input as { sbatch?: unknown } | null)?.sbatch;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { problems: [], rest: input };
  const problems: string[] = [];
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const option = kebab(key);
    const parameter = PARAMETER_OF_OPTION.get(option);
    if (parameter !== undefined && (input as Record<string, unknown>)[parameter] !== undefined)
      problems.push(`\`sbatch.${key}\` sets --${option}, which the parameter \`${parameter}\` sets too: use \`${parameter}\` alone`);
    else if (parameter !== undefined) problems.push(`\`sbatch.${key}\` sets --${option}: use the parameter \`${parameter}\` instead, which slurmkit checks (as \`--slurm\` flags do)`);
    else if (option !== key && !MANAGED_SBATCH.includes(option)) problems.push(`Expected \`sbatch\` keys to be sbatch's long option names, got \`${key}\`: write \`${option}\``);
    else kept[key] = value;
  }
  // The input without the keys named here, so that the schema still checks the rest of `sbatch`.
  return { problems, rest: problems.length ? { ...(input as object), sbatch: kept } : input };
}

/**
 * Raw `sbatch` options that a parameter covers, moved into that parameter
 * (replacing it, as sbatch took the later line): how a request stored before such options were refused
 * (a folder from an older slurmkit) is read, so that it can still be rerun.
 */
export function liftCoveredOptions(input: SlurmParametersInput): SlurmParametersInput {
  if (!input.sbatch) return input;
  const lifted: Record<string, unknown> = { ...input };
  const raw: Record<string, string | number | true> = {};
  for (const [key, value] of Object.entries(input.sbatch)) {
    const parameter = PARAMETER_OF_OPTION.get(key);
    // sbatch took the raw line, written after the parameters' own: it wins here too.
    if (parameter !== undefined && value !== true) lifted[parameter] = parameter === "dependency" ? String(value) : value;
    else raw[key] = value;
  }
  lifted.sbatch = raw;
  return lifted as SlurmParametersInput;
}

/** Parameters that are each fine but cannot go together, as sbatch would find out only after the folder was written. */
function conflictProblems(p: SlurmParameters): string[] {
  const problems: string[] = [];
  const memory = [p.mem !== undefined && "`mem`", p.memPerCpu !== undefined && "`memPerCpu`", ...RAW_MEMORY_OPTIONS.filter((o) => p.sbatch?.[o] !== undefined).map((o) => `\`sbatch["${o}"]\``)].filter(
    (x): x is string => typeof x === "string",
  );
  if (memory.length > 1) problems.push(`Expected one way to ask for memory (\`mem\`, \`memPerCpu\` or \`sbatch["mem-per-gpu"]\`), got ${memory.join(" and ")}: Slurm refuses them together`);
  const range = p.nodes !== undefined ? /^(\d+)-(\d+)$/.exec(p.nodes) : null;
  if (range && Number(range[1]) > Number(range[2])) problems.push(`Expected \`nodes\` to be a range from low to high such as \`2-4\`, got \`${p.nodes}\``);
  return problems;
}

/** Raw sbatch options that set memory. */
const RAW_MEMORY_OPTIONS = ["mem", "mem-per-cpu", "mem-per-gpu"] as const;

/**
 * The sbatch long options the parameters ask for, as [name, value] pairs; only
 * what was set. Plain options come in the table's order, then those with
 * units (time, memory), then the raw `sbatch` map. `walltimeSeconds` is a
 * worker element's own limit: its `--time` in place of the task's `time`.
 */
export function toSbatchOptions(p: SlurmParameters, walltimeSeconds?: number): Array<[string, string | true]> {
  const out: Array<[string, string | true]> = [];
  const entries = Object.entries(PARAMETERS) as Array<[ParameterName, ParameterDef]>;
  for (const [key, def] of [...entries.filter(([, d]) => !d.render), ...entries.filter(([, d]) => d.render)]) {
    const value = key === "time" && walltimeSeconds !== undefined ? walltimeSeconds : p[key];
    if (value === undefined || def.sbatch === undefined) continue;
    out.push([def.sbatch, def.render ? def.render(value as never) : String(value)]);
  }
  for (const [key, value] of Object.entries(p.sbatch ?? {})) out.push([key, value]);
  return out;
}

/**
 * Parameters merged as `update()` and `executorFromFlags` do: each key of
 * `over` replaces the one in `base`, except `sbatch`, whose options merge key
 * by key (an option in `over` wins).
 */
export function mergeParameters(base: SlurmParametersInput, over: SlurmParametersInput): SlurmParametersInput {
  const merged = { ...base, ...over };
  if (base.sbatch !== undefined && over.sbatch !== undefined) return { ...merged, sbatch: { ...base.sbatch, ...over.sbatch } };
  return merged;
}

/** Tasks per array element: nodes × ntasksPerNode when both are known, else 1. */
export function ranksPerJob(p: SlurmParameters): number {
  const nodes = p.nodes && /^\d+$/.test(p.nodes) ? Number(p.nodes) : 1;
  return nodes * (p.ntasksPerNode ?? 1);
}

/** GPUs one task asks for, from `gres` (gpu entries) or `gpusPerNode`; 0 when none. */
export function gpusPerTask(p: Pick<SlurmParameters, "gres" | "gpusPerNode">): number {
  let gpus = 0;
  for (const entry of p.gres?.split(",") ?? []) {
    const parts = entry.split(":");
    if (parts[0] === "gpu") gpus += parts.length > 1 && /^\d+$/.test(parts.at(-1)!) ? Number(parts.at(-1)) : 1;
  }
  if (p.gpusPerNode !== undefined) gpus += Number(p.gpusPerNode.split(":").at(-1));
  return gpus;
}

/** A gres entry (`name[:type][:count]`, a count may carry a unit such as `10G`) or a `type:count` with its count multiplied. */
function scaleCount(text: string, by: number): string {
  const parts = text.split(":");
  const count = /^(\d+)([KMGT]?)$/i.exec(parts.at(-1)!);
  if (count && (parts.length > 1 || /^\d+$/.test(text))) return [...parts.slice(0, -1), `${Number(count[1]) * by}${count[2]}`].join(":");
  return [...parts, String(by)].join(":");
}

/**
 * The parameters of one worker element with `slots` task slots: `slots` times
 * one task's CPUs, memory per node and GPUs (each gres count scaled), so
 * that every slot gets exactly one task's share. Memory per CPU scales with
 * the CPUs by itself.
 */
export function scaleForSlots(p: SlurmParameters, slots: number): SlurmParameters {
  if (slots === 1) return p;
  return {
    ...p,
    cpusPerTask: (p.cpusPerTask ?? 1) * slots,
    ...(p.mem !== undefined ? { mem: p.mem * slots } : {}),
    ...(p.gres !== undefined
      ? {
          gres: p.gres
            .split(",")
            .map((e) => scaleCount(e, slots))
            .join(","),
        }
      : {}),
    ...(p.gpusPerNode !== undefined ? { gpusPerNode: scaleCount(p.gpusPerNode, slots) } : {}),
  };
}
