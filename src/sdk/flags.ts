import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { ParameterError } from "../base/errors.js";
import type { Executor } from "../engine/executor.js";
import { FLAG_PARAMETERS, MANAGED_SBATCH, mergeParameters, parseParameters, slurmParametersSchema, type SlurmParametersInput } from "../slurm/parameters.js";
import { setupFile, type SetupStep } from "../setup/index.js";
import { SlurmExecutor } from "../slurm/executor.js";
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
}

/** Options of parseSlurmFlags. */
export interface ParseSlurmFlagsOptions {
  /** The flag that starts the pairs. @default "--slurm" */
  readonly flag?: string;
  /** Where `slurm_setup=FILE` is resolved. @default process.cwd() */
  readonly cwd?: string;
}

/** Keys that take a setup file (flat-bug spells it `slurm_setup`). */
const SETUP_KEYS = new Set(["slurmSetup", "setup"]);
const FLAG_KEYS = [...FLAG_PARAMETERS.keys()];
const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (key: string) => key.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
/** The keys as the docs and messages spell them. */
const ACCEPTED = [...FLAG_KEYS.map(snake), "slurm_setup"].sort();
const ACCEPTED_TEXT = `${ACCEPTED.join(", ")}, and sbatch.<option> for any other sbatch option`;
const SBATCH_PREFIX = "sbatch.";
/** sbatch option names that have a typed key, to the key. */
const TYPED_SBATCH = new Map(FLAG_KEYS.map((k) => [snake(k).replace(/_/g, "-"), k]));
const MANAGED = MANAGED_SBATCH;

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
  checkOptions("parseSlurmFlags options", options, {
    flag: accepts.or(z.string().regex(/^--?[A-Za-z][\w-]*$/), 'a flag such as "--slurm"'),
    cwd: accepts.string,
  } satisfies OptionShape<ParseSlurmFlagsOptions>);
  const flag = options.flag ?? "--slurm";
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
  const sbatch: Record<string, string | true> = {};
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
    if (key.startsWith(SBATCH_PREFIX)) {
      const name = key.slice(SBATCH_PREFIX.length);
      if (!/^[a-z][a-z0-9-]*$/.test(name)) {
        problems.push(`Expected an sbatch long option name after \`sbatch.\` (lower-case, without dashes in front, such as \`sbatch.mail-type=END\`), got \`${key}\``);
      } else if (TYPED_SBATCH.has(name)) {
        problems.push(`\`${key}\` cannot be set: use \`${snake(TYPED_SBATCH.get(name)!)}=\` instead, which slurmkit checks`);
      } else if (MANAGED.some((m) => m.startsWith(name))) {
        problems.push(`\`${key}\` cannot be set: slurmkit sets --${MANAGED.find((m) => m.startsWith(name))} itself`);
      } else if (value === "" || (value !== undefined && /[\n\r\0]/.test(value))) {
        problems.push(`Expected \`${key}\` to have a value on one line (or no \`=\` for a flag such as \`sbatch.exclusive\`), got \`${pair}\``);
      } else if (!repeated(`sbatch.${name}`, key)) {
        sbatch[name] = value ?? true;
      }
      continue;
    }
    if (eq <= 0) {
      const why = eq === 0 ? "the key is empty" : "put the script's own arguments before the flag";
      problems.push(`Expected key=value after ${flag}, got \`${pair}\` (${why}); accepted keys: ${ACCEPTED_TEXT}`);
      continue;
    }
    const id = camel(key);
    if (SETUP_KEYS.has(id)) {
      if (repeated("setup", key)) continue;
      try {
        setup.push(setupFile(value!, options.cwd));
      } catch (error) {
        problems.push(`\`${key}\`: ${(error as ParameterError).problems?.[0] ?? (error as Error).message}`);
      }
      continue;
    }
    if (!/^[a-z][a-zA-Z0-9_-]*$/.test(key) || !FLAG_KEYS.includes(id)) {
      const near = closeMatches(key, ACCEPTED);
      const raw = key.replace(/_/g, "-").toLowerCase();
      const pass = near.length === 0 && /^[a-z][a-z0-9-]*$/.test(raw) && !MANAGED.some((m) => m.startsWith(raw)) ? ` (or \`sbatch.${raw}=${value}\` to pass it to sbatch as it is)` : "";
      problems.push(`Unknown key \`${key}\`${near.length ? ` (did you mean ${near.map((n) => `\`${n}\``).join(" or ")}?)` : ""}; accepted: ${ACCEPTED_TEXT}${pass}`);
      continue;
    }
    if (repeated(id, key)) continue;
    const field = slurmParametersSchema.shape[id as keyof typeof slurmParametersSchema.shape];
    const checked = field.safeParse(value);
    if (checked.success) parameters[id] = FLAG_PARAMETERS.get(id) === "integer" ? Number(value) : value;
    else problems.push(`Expected \`${key}\` ${checked.error.issues[0]?.message ?? "to be valid"}`);
  }
  if (problems.length) throw new ParameterError(`${flag} flags`, problems);
  if (Object.keys(sbatch).length) parameters.sbatch = sbatch;
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
export function executorFromFlags(flags: SlurmFlags, options: ExecutorFromFlagsOptions): Executor {
  const { settings, input: defaults } = splitOptions("executorFromFlags options", options);
  const parsed = parseParameters(defaults); // bad defaults fail on their own, with or without flags over them
  // Without --slurm the tasks run here, each still within the defaults' `time`.
  if (flags.parameters === undefined) return localFallback(settings, parsed);
  const { maxParallel, ...slurmSettings } = settings;
  const setup = [...(defaults.setup ?? []), ...(flags.setup ?? [])];
  return new SlurmExecutor({ ...slurmSettings, ...mergeParameters(defaults, flags.parameters), ...(setup.length ? { setup } : {}) });
}
