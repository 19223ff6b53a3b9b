import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { ParameterError } from "../base/errors.js";
import type { Executor } from "../engine/executor.js";
import { FLAG_PARAMETERS, MANAGED_SBATCH, mergeParameters, PARAMETER_NAMES, parseParameters, slurmParametersSchema, type SlurmParametersInput } from "../slurm/parameters.js";
import { setupFile, type SetupStep } from "../setup/index.js";
import { SlurmExecutor } from "../slurm/executor.js";
import { PbsExecutor } from "../pbs/executor.js";
import { mergePbsParameters, PBS_CANNOT, PBS_KNOWN_NAMES, parsePbsParameters, pbsRawProblems, type PbsParametersInput } from "../pbs/parameters.js";
import { splitOptions, type ExecutorSettings } from "../slurm/options.js";
import { localFallback } from "./auto-executor.js";
import { closeMatches } from "../base/suggest.js";

/** What parseSlurmFlags found in argv. */
export interface SlurmFlags {
  /**
   * The Slurm parameters given after `--slurm`, with camelCase keys and the
   * values as typed (validated by the executor's schema); `undefined` when
   * argv has no `--slurm`, which means: run locally.
   */
  readonly parameters: SlurmParametersInput | undefined;
  /** The setup steps asked for: `slurm_setup=FILE` becomes setupFile(FILE). */
  readonly setup: readonly SetupStep[];
  /** argv without `--slurm` and its pairs, for the script's own parser. */
  readonly rest: string[];
  /** Which scheduler the pairs are for: "pbs" from parsePbsFlags. @default "slurm" */
  readonly scheduler?: "slurm" | "pbs";
}

/** Options of parseSlurmFlags. */
export interface ParseSlurmFlagsOptions {
  /** The flag that starts the pairs. @default "--slurm" */
  readonly flag?: string;
  /** Where `slurm_setup=FILE` is resolved. @default process.cwd() */
  readonly cwd?: string;
}

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (key: string) => key.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** What differs between `--slurm` and `--pbs` pairs: the typed keys, the raw options' prefix and their checks. */
interface FlagDialect {
  readonly flag: string;
  /** The key that takes a setup file, as the docs spell it (flat-bug spells it `slurm_setup`); `setup` works too. */
  readonly setupKey: string;
  /** Typed keys, camelCase, with how each is stored. */
  readonly keys: ReadonlyMap<string, "text" | "integer">;
  /** `sbatch.` or `pbs.` */
  readonly rawPrefix: string;
  readonly rawField: "sbatch" | "pbs";
  readonly rawWhat: string;
  /** A raw option's problem, or undefined when it may pass. */
  rawProblem(name: string, key: string, value: string | undefined): string | undefined;
  /** Keys the scheduler cannot express, with why. */
  readonly cannot: Readonly<Record<string, string>>;
  /** How a raw option would be written for an unknown key, if it could be one. */
  rawHint(key: string, value: string | undefined): string;
}

const SLURM_KEYS = [...FLAG_PARAMETERS.keys()];
/** sbatch option names that have a typed key, to the key. */
const TYPED_SBATCH = new Map(SLURM_KEYS.map((k) => [snake(k).replace(/_/g, "-"), k]));

const SLURM_FLAGS: FlagDialect = {
  flag: "--slurm",
  setupKey: "slurm_setup",
  keys: FLAG_PARAMETERS,
  rawPrefix: "sbatch.",
  rawField: "sbatch",
  rawWhat: "sbatch.<option> for any other sbatch option",
  rawProblem: (name, key, value) => {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) return `Expected an sbatch long option name after \`sbatch.\` (lower-case, without dashes in front, such as \`sbatch.mail-type=END\`), got \`${key}\``;
    if (TYPED_SBATCH.has(name)) return `\`${key}\` cannot be set: use \`${snake(TYPED_SBATCH.get(name)!)}=\` instead, which slurmkit checks`;
    if (MANAGED_SBATCH.some((m) => m.startsWith(name))) return `\`${key}\` cannot be set: slurmkit sets --${MANAGED_SBATCH.find((m) => m.startsWith(name))} itself`;
    if (value === "" || (value !== undefined && /[\n\r\0]/.test(value)))
      return `Expected \`${key}\` to have a value on one line (or no \`=\` for a flag such as \`sbatch.exclusive\`), got \`${key}=${value}\``;
    return undefined;
  },
  cannot: {},
  rawHint: (key, value) => {
    const raw = key.replace(/_/g, "-").toLowerCase();
    return /^[a-z][a-z0-9-]*$/.test(raw) && !MANAGED_SBATCH.some((m) => m.startsWith(raw)) ? ` (or \`sbatch.${raw}=${value}\` to pass it to sbatch as it is)` : "";
  },
};

const PBS_FLAGS: FlagDialect = {
  flag: "--pbs",
  setupKey: "pbs_setup",
  keys: new Map([...FLAG_PARAMETERS].filter(([k]) => !(k in PBS_CANNOT))),
  rawPrefix: "pbs.",
  rawField: "pbs",
  rawWhat: "pbs.<letter> for any other qsub option and pbs.<resource> for any other -l resource",
  rawProblem: (name, key, value) => {
    if (value === "") return `Expected \`${key}\` to have a value (or no \`=\` for an option such as \`pbs.h\`), got \`${key}=\``;
    return pbsRawProblems({ [name]: value ?? true })[0];
  },
  cannot: PBS_CANNOT,
  rawHint: (key, value) => (/^[a-z_][a-z0-9_]*$/.test(key) ? ` (or \`pbs.${key}=${value}\` to pass it to qsub as the -l resource ${key})` : ""),
};

/**
 * Reads `--slurm key=value ...` from an experiment script's argv, as in
 * `tsx sweep.ts -o out --slurm gres=gpu:t4:1 cpus_per_task=12 mem=32GB time=01:00:00 slurm_setup=setup.txt`.
 *
 * - The pairs run from `--slurm` up to the next token that starts with `-`.
 * - Keys are snake_case, kebab-case (as sbatch spells them) or camelCase.
 *   Values may contain `=`, and are checked by the same schema as the executor's.
 * - `slurm_setup=FILE` reads FILE (relative to `cwd`) as a setup step.
 * - `sbatch.NAME=VALUE` passes any other sbatch option (`sbatch.NAME` alone for a flag).
 * - A repeated key, an unknown key (with close matches) or a bad value
 *   throws a ParameterError naming every problem.
 * - Tokens after `--` are left alone.
 *
 * @example
 * const flags = parseSlurmFlags(process.argv.slice(2));
 * const executor = executorFromFlags(flags, { folder: "runs/compare" });
 * const { values } = parseArgs({ args: flags.rest, options: { input: { type: "string", short: "i" } } });
 */
export function parseSlurmFlags(argv: readonly string[], options: ParseSlurmFlagsOptions = {}): SlurmFlags {
  return parseFlags(argv, options, SLURM_FLAGS);
}

/**
 * Reads `--pbs key=value ...` from an experiment script's argv, as
 * parseSlurmFlags reads `--slurm`: the same typed keys (but those PBS cannot
 * express, which are refused saying why), `pbs_setup=FILE`, and
 * `pbs.LETTER=VALUE` for any other qsub option or `pbs.RESOURCE=VALUE` for
 * any other `-l` resource. `executorFromFlags` then makes a PbsExecutor.
 *
 * @example
 * // tsx sweep.ts --pbs time=01:00:00 partition=debug account=myproj pbs.filesystems=home:grand
 * const executor = executorFromFlags(parsePbsFlags(process.argv.slice(2)), { folder: "runs/compare" });
 */
export function parsePbsFlags(argv: readonly string[], options: ParseSlurmFlagsOptions = {}): SlurmFlags {
  return { ...parseFlags(argv, options, PBS_FLAGS), scheduler: "pbs" };
}

function parseFlags(argv: readonly string[], options: ParseSlurmFlagsOptions, dialect: FlagDialect): SlurmFlags {
  checkOptions(`${dialect === PBS_FLAGS ? "parsePbsFlags" : "parseSlurmFlags"} options`, options, {
    flag: accepts.or(z.string().regex(/^--?[A-Za-z][\w-]*$/), `a flag such as "${dialect.flag}"`),
    cwd: accepts.string,
  } satisfies OptionShape<ParseSlurmFlagsOptions>);
  const flag = options.flag ?? dialect.flag;
  const keys = [...dialect.keys.keys()];
  const accepted = [...keys.map(snake), dialect.setupKey].sort();
  const acceptedText = `${accepted.join(", ")}, and ${dialect.rawWhat}`;
  if (!Array.isArray(argv) || argv.some((a) => typeof a !== "string")) {
    throw new ParameterError("command line", [`Expected argv to be an array of strings such as process.argv.slice(2), got \`${String(argv)}\``]);
  }
  const rest: string[] = [];
  const pairs: string[] = [];
  let seen = false;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (token.startsWith(`${flag}=`)) {
      throw new ParameterError(`${flag} flags`, [`Expected \`${flag}\` followed by key=value pairs as separate arguments, got \`${token}\``]);
    }
    if (token !== flag) {
      rest.push(token);
      continue;
    }
    seen = true;
    while (i + 1 < argv.length && !argv[i + 1]!.startsWith("-")) pairs.push(argv[++i]!);
  }
  if (!seen) return { parameters: undefined, setup: [], rest };

  const problems: string[] = [];
  const parameters: Record<string, unknown> = {};
  const raw: Record<string, string | true> = {};
  const setup: SetupStep[] = [];
  const given = new Map<string, string>();
  const repeated = (id: string, key: string): boolean => {
    const before = given.get(id);
    if (before !== undefined) problems.push(`\`${key}\` is given twice (also as \`${before}\`); give each key once`);
    else given.set(id, key);
    return before !== undefined;
  };

  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? undefined : pair.slice(eq + 1);
    if (key.startsWith(dialect.rawPrefix)) {
      const name = key.slice(dialect.rawPrefix.length);
      const problem = dialect.rawProblem(name, key, value);
      if (problem !== undefined) problems.push(problem);
      else if (!repeated(`${dialect.rawPrefix}${name}`, key)) raw[name] = value ?? true;
      continue;
    }
    if (eq <= 0) {
      const why = eq === 0 ? "the key is empty" : "put the script's own arguments before the flag";
      problems.push(`Expected key=value after ${flag}, got \`${pair}\` (${why}); accepted keys: ${acceptedText}`);
      continue;
    }
    const id = camel(key);
    if (id === "setup" || id === camel(dialect.setupKey)) {
      if (repeated("setup", key)) continue;
      try {
        setup.push(setupFile(value!, options.cwd));
      } catch (error) {
        problems.push(`\`${key}\`: ${(error as ParameterError).problems?.[0] ?? (error as Error).message}`);
      }
      continue;
    }
    if (Object.hasOwn(dialect.cannot, id)) {
      problems.push(`\`${key}\` cannot be expressed on PBS: ${dialect.cannot[id]}`);
      continue;
    }
    if (!/^[a-z][a-zA-Z0-9_-]*$/.test(key) || !keys.includes(id)) {
      const near = closeMatches(key, accepted);
      const pass = near.length === 0 ? dialect.rawHint(key, value) : "";
      problems.push(`Unknown key \`${key}\`${near.length ? ` (did you mean ${near.map((n) => `\`${n}\``).join(" or ")}?)` : ""}; accepted: ${acceptedText}${pass}`);
      continue;
    }
    if (repeated(id, key)) continue;
    const field = slurmParametersSchema.shape[id as keyof typeof slurmParametersSchema.shape];
    const checked = field.safeParse(value);
    if (checked.success) parameters[id] = dialect.keys.get(id) === "integer" ? Number(value) : value;
    else problems.push(`Expected \`${key}\` ${checked.error.issues[0]?.message ?? "to be valid"}`);
  }
  if (problems.length) throw new ParameterError(`${flag} flags`, problems);
  if (Object.keys(raw).length) parameters[dialect.rawField] = raw;
  return { parameters: parameters as SlurmParametersInput, setup, rest };
}

/** Options of executorFromFlags: the defaults the flags override, the folder, and the settings of both executors. */
export interface ExecutorFromFlagsOptions extends SlurmParametersInput, ExecutorSettings {}

/**
 * The executor the flags ask for: a SlurmExecutor when argv had `--slurm`
 * (the options' parameters first and the flags over them, merged as
 * `update()` merges; the flags' setup steps after the options'), else a LocalExecutor on the same folder, as flat-bug's
 * scripts run without `--slurm`.
 *
 * @example
 * const executor = executorFromFlags(parseSlurmFlags(process.argv.slice(2)), { folder: "runs/compare", time: "00:30:00" });
 */
export function executorFromFlags(flags: SlurmFlags, options: ExecutorFromFlagsOptions | (PbsParametersInput & ExecutorSettings)): Executor {
  const pbs = flags.scheduler === "pbs";
  const { settings, input: defaults } = splitOptions("executorFromFlags options", options as ExecutorFromFlagsOptions, [], pbs ? PBS_KNOWN_NAMES : PARAMETER_NAMES);
  // Bad defaults fail on their own, with or without flags over them.
  const parsed = pbs ? parsePbsParameters(defaults as PbsParametersInput) : parseParameters(defaults);
  // Without --slurm (--pbs) the tasks run here, each still within the defaults' `time`.
  if (flags.parameters === undefined) return localFallback(settings, parsed);
  const { maxParallel, ...batchSettings } = settings;
  const setup = [...(defaults.setup ?? []), ...(flags.setup ?? [])];
  if (pbs) return new PbsExecutor({ ...batchSettings, ...mergePbsParameters(defaults as PbsParametersInput, flags.parameters as PbsParametersInput), ...(setup.length ? { setup } : {}) });
  return new SlurmExecutor({ ...batchSettings, ...mergeParameters(defaults, flags.parameters), ...(setup.length ? { setup } : {}) });
}
