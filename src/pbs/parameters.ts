// PBS's parameters: slurmkit's parameters as PBS can express them, and raw
// qsub options as `pbs: { ... }`, in place of `sbatch: { ... }`.
import { ParameterError } from "../base/errors.js";
import { showValue, unknownKeyProblems } from "../base/option-words.js";
import { mergeParameters, PARAMETER_NAMES, parseParameters, type SlurmParameters, type SlurmParametersInput } from "../slurm/parameters.js";

/** Parameters that PBS cannot express, and what to do instead. */
export const PBS_CANNOT: Readonly<Record<string, string>> = {
  sbatch: "PBS takes raw qsub options as `pbs: { ... }`",
  qos: "PBS has no QOS; a queue (`partition`) may be what you want",
  constraint: "PBS selects node features through your site's custom resources: `pbs: { <resource>: <value> }`",
  exclude: "PBS's select cannot leave out named nodes",
  nodelist: "PBS picks hosts through `select`; `pbs: { host: ... }` is not taken either, since slurmkit writes the select statement",
  dependency: "use the `after` option of submit() and mapArray(), which PBS's `-W depend` expresses",
};
const NOT_ON_PBS = PBS_CANNOT as Readonly<Record<"sbatch" | "qos" | "constraint" | "exclude" | "nodelist" | "dependency", string>>;

/** The raw options slurmkit writes itself. */
const MANAGED_OPTIONS = new Set(["J", "o", "e", "N", "q", "A", "l", "k", "j", "r", "v", "V", "I", "X", "C", "S", "z"]);
const MANAGED_RESOURCES = new Set(["select", "walltime", "ncpus", "mem", "ngpus", "nodes", "mpiprocs", "ompthreads", "nodect", "place", "host", "vnode"]);
/** Per-job limits that packing would share between tasks (or add up over a worker's tasks): a task would not get what it asked for. */
const JOB_LIMITS = new Set(["vmem", "pmem", "pvmem", "cput", "pcput"]);

/** Where raw PBS options travel inside the parameters (the `sbatch` map, under this prefix), to the script's header. */
export const PBS_RAW_PREFIX = "pbs:";

/** A value that qsub reads from a `#PBS` line as one word. */
const DIRECTIVE_WORD = /^[^\s"'\\]+$/;

/** PBS parameters as users write them: slurmkit's parameters but those PBS cannot express, and raw qsub options. */
export type PbsParametersInput = Omit<SlurmParametersInput, keyof typeof NOT_ON_PBS> & {
  /**
   * Any other qsub option: a single letter is an option (`{ m: "abe", M: "me@uni.edu", P: "project" }`),
   * a longer name a resource for `-l` (`{ filesystems: "home:grand" }`); `true` for an option that takes no value.
   */
  readonly pbs?: Readonly<Record<string, string | number | true>>;
};

/** The names PBS parameters accept. */
export const PBS_PARAMETER_NAMES: readonly string[] = [...PARAMETER_NAMES.filter((n) => !(n in NOT_ON_PBS)), "pbs"].sort();

/** The parameters an executor's options may name: PBS's, and Slurm's that PBS cannot express, which parsePbsParameters refuses saying why. */
export const PBS_KNOWN_NAMES: readonly string[] = [...PBS_PARAMETER_NAMES, ...Object.keys(NOT_ON_PBS)];

/** The problems of raw qsub options (`pbs: { ... }`), each naming its key. */
export function pbsRawProblems(raw: unknown): string[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return [`Expected \`pbs\` to be an object of qsub options, got ${showValue(raw)}`];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const option = /^[A-Za-z]$/.test(key);
    if (!option && !/^[a-z_][a-z0-9_]*$/.test(key)) {
      problems.push(`Expected \`pbs\` keys to be a qsub option's letter (\`m\`) or a resource for -l (\`filesystems\`), got \`${key}\``);
    } else if (option && MANAGED_OPTIONS.has(key)) {
      problems.push(
        `\`pbs.${key}\` is an option slurmkit writes itself (-J, -o, -e, -N, -q, -A, -l, -k, -j, -r, -v, ...): use the parameters (jobName, partition, account, time, cpusPerTask, mem, ...)`,
      );
    } else if (!option && MANAGED_RESOURCES.has(key)) {
      problems.push(`\`pbs.${key}\` is a resource slurmkit writes itself (select, walltime, ncpus, mem, ngpus, place, host): use time, nodes, ntasksPerNode, cpusPerTask, mem, gpusPerNode`);
    } else if (!option && JOB_LIMITS.has(key)) {
      problems.push(`\`pbs.${key}\` is a limit of the whole job, which tasks packed in a worker would share: use mem and time, which slurmkit enforces per task`);
    } else if (value === true ? !option : !((typeof value === "string" && DIRECTIVE_WORD.test(value)) || (typeof value === "number" && Number.isFinite(value)))) {
      problems.push(`Expected \`pbs.${key}\` to be ${option ? "true or " : ""}a number or a string without spaces, quotes or backslashes, got ${showValue(value)}`);
    } else if (
      key === "W" &&
      String(value)
        .split(",")
        .some((item) => /^(depend|max_run_subjobs|block)=/.test(item))
    ) {
      problems.push("`pbs.W` may not set depend, max_run_subjobs or block: use the `after` option and `arrayParallelism`; slurmkit waits for jobs itself");
    }
  }
  return problems;
}

/**
 * Validates PBS parameters: slurmkit's checks, then what PBS cannot express
 * (each a ParameterError that says so): raw Slurm options, QOS,
 * constraints, node lists, a range of nodes, `mem: 0`, typed GPUs and any
 * gres but GPUs, and text that a `#PBS` line cannot hold. The raw `pbs`
 * options ride in the `sbatch` map under PBS_RAW_PREFIX.
 */
export function parsePbsParameters(input: PbsParametersInput): SlurmParameters {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new ParameterError("PBS parameters", [`Expected PBS parameters to be an object, got ${showValue(input)}`]);
  const problems: string[] = [];
  for (const [key, why] of Object.entries(NOT_ON_PBS)) if (key in input) problems.push(`\`${key}\` cannot be expressed on PBS: ${why}`);
  const { pbs: raw, ...rest } = input as PbsParametersInput & Record<string, unknown>;
  const expressible = Object.fromEntries(Object.entries(rest).filter(([key]) => !(key in NOT_ON_PBS)));
  problems.push(...unknownKeyProblems(expressible, PBS_PARAMETER_NAMES, "parameter"));
  if (raw !== undefined) problems.push(...pbsRawProblems(raw));
  const slurmOnly = Object.fromEntries(Object.entries(expressible).filter(([key]) => PARAMETER_NAMES.includes(key)));
  let parsed: SlurmParameters | undefined;
  try {
    parsed = parseParameters(slurmOnly);
  } catch (error) {
    if (!(error instanceof ParameterError)) throw error;
    problems.push(...error.problems);
  }
  if (parsed) problems.push(...pbsProblems(parsed));
  if (problems.length) throw new ParameterError("PBS parameters", problems);
  const prefixed: Record<string, string | true> = Object.fromEntries(Object.entries(raw ?? {}).map(([key, value]) => [`${PBS_RAW_PREFIX}${key}`, value === true ? true : String(value)]));
  return Object.keys(prefixed).length ? { ...parsed!, sbatch: prefixed } : parsed!;
}

/** What slurmkit's parameters may say that PBS cannot. */
function pbsProblems(p: SlurmParameters): string[] {
  const problems: string[] = [];
  if (p.signal?.startsWith("R:")) problems.push(`\`signal\` cannot go to the ranks alone on PBS (got \`${p.signal}\`): the batch script sends it, and passes it on`);
  if (p.nodes?.includes("-")) problems.push(`\`nodes\` cannot be a range on PBS (got \`${p.nodes}\`): PBS's select asks for an exact number of chunks`);
  if (p.mem === 0) problems.push("`mem: 0` (all of each node's memory) cannot be expressed on PBS: ask for the memory the task needs");
  if (p.gpusPerNode?.includes(":")) problems.push(`\`gpusPerNode\` cannot name a GPU type on PBS (got \`${p.gpusPerNode}\`): give a count, and the type through your site's resource in \`pbs\``);
  if (p.gres !== undefined && !/^gpu:\d+$/.test(p.gres))
    problems.push(`\`gres\` on PBS takes only \`gpu:<count>\` (got \`${p.gres}\`): PBS has no generic resources; use gpusPerNode, or \`pbs\` for your site's resources`);
  if (p.jobName !== undefined && !/^[A-Za-z0-9._+-]{1,236}$/.test(p.jobName)) {
    problems.push(`Expected \`jobName\` to be at most 236 letters, digits, ., _, + or - on PBS (qsub refuses others), got \`${p.jobName}\``);
  }
  if (p.partition !== undefined && !/^[A-Za-z0-9._-]+$/.test(p.partition)) {
    problems.push(`Expected \`partition\` to be a queue of the default server on PBS (letters, digits, ., _ or -; no @server), got \`${p.partition}\``);
  }
  if (p.account !== undefined && !DIRECTIVE_WORD.test(p.account)) problems.push(`Expected \`account\` to be one word without spaces, quotes or backslashes on PBS, got \`${p.account}\``);
  if (p.signal !== undefined && p.time === undefined) {
    problems.push(`\`signal\` needs \`time\` on PBS (got \`${p.signal}\` without it): PBS sends no warning, and the job's script sends it before the walltime it knows`);
  }
  return problems;
}

/** Merges PBS parameters as update() does: each key replaces the current one, but `pbs`, whose options merge key by key. */
export function mergePbsParameters(base: PbsParametersInput, over: PbsParametersInput): PbsParametersInput {
  const merged = mergeParameters(base as SlurmParametersInput, over as SlurmParametersInput) as PbsParametersInput;
  return base.pbs && over.pbs ? { ...merged, pbs: { ...base.pbs, ...over.pbs } } : merged;
}
