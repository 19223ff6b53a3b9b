import { z } from "zod";
import { ParameterError } from "../base/errors.js";
import { accepts, type OptionShape, showValue, unknownKeyProblems, valueProblems } from "../base/options.js";
import { lateOk } from "../protocol/runtime-value.js";
import { quoteShell } from "../base/shell.js";
import type { ContainerRecord } from "../protocol/container.js";

const STEP = Symbol.for("slurmkit.setupStep");

/**
 * A typed piece of the job's preamble. Steps render into the sbatch script in
 * the order given; build them with modules(), venvPerNode(), stageIn(),
 * stageOut(), condaActivate(), container(), setupFile() and lines().
 */
export interface SetupStep {
  readonly [STEP]: true;
  /** What kind of step, for messages. */
  readonly kind: string;
  /** Lines run once in the batch shell (on the job's first node). */
  readonly batch: readonly string[];
  /** Lines run in each rank's shell just before the runner (e.g. activating a node-local venv). */
  readonly rank: readonly string[];
  /** Lines run when the job ends, also when it fails, is cancelled or times out. */
  readonly exit: readonly string[];
  /** Shell words put before the runner command (a container runtime the runner runs in). */
  readonly wrap: readonly string[];
  /** The container the submission's command tasks run in (the runner stays outside). */
  readonly container?: ContainerRecord;
}

/** Whether a value is a setup step. */
export function isSetupStep(value: unknown): value is SetupStep {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STEP] === true;
}

/** A step of the given kind from its parts. */
export function step(kind: string, parts: Partial<Pick<SetupStep, "batch" | "rank" | "exit" | "wrap">> & { readonly container?: ContainerRecord | undefined }): SetupStep {
  return { [STEP]: true, kind, batch: parts.batch ?? [], rank: parts.rank ?? [], exit: parts.exit ?? [], wrap: parts.wrap ?? [], ...(parts.container ? { container: parts.container } : {}) };
}

/** Throws a ParameterError for the step if there are problems. */
export function check(kind: string, problems: string[]): void {
  if (problems.length) throw new ParameterError(`${kind} step`, problems);
}

export { lateOk };

/** A value in a step's option shape that the step checks itself (paths and runtime values, through `need`), in its own words. */
export const CHECKED: z.ZodType = z.any();
/** An array of paths or runtime values, each checked by `need`. */
export const LATES: z.ZodType = accepts.or(z.array(z.any()), "an array of paths or runtime values");

/**
 * The problems of a step's options object, unknown keys (with
 * "did you mean"), and values `shape` refuses. Paths and runtime values are
 * left to `need`, which names what they accept. Not an object at all
 * throws at once.
 */
export function optionProblems<T>(kind: string, options: T, shape: OptionShape<T>): string[] {
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new ParameterError(`${kind} step`, [`Expected an options object, got ${showValue(options)}`]);
  return [...unknownKeyProblems(options, Object.keys(shape)), ...valueProblems(options, shape as Record<string, z.ZodType>)];
}

/** Records a problem unless `value` is a usable path or runtime value. */
export function need(problems: string[], name: string, value: unknown, expected = "a non-empty path or runtime value, not starting with -"): void {
  if (!lateOk(value)) problems.push(`Expected \`${name}\` to be ${expected}, got \`${String(value)}\``);
}

/** Runs a script once on every node of the job (the scheduler's `slurmkit_on_every_node`); the job fails if it fails on one. */
export function onEveryNode(kind: string, script: readonly string[]): string[] {
  const body = ["set -euo pipefail", ...script].join("\n");
  return [`slurmkit_on_every_node ${quoteShell(body)} || slurmkit_fail ${quoteShell(`setup step ${kind} failed`)}`];
}

/**
 * Steps are the same for every scheduler. They use what the scheduler's
 * script defines before the setup (Slurm's: `SLURM_NODE_HELPERS` in
 * src/slurm/script.ts), and these helpers:
 *
 *     slurmkit_node                      this node's name, as the scheduler calls it
 *     slurmkit_on_every_node SCRIPT      runs SCRIPT (bash) once on every node of the job; fails if it fails on one
 *     slurmkit_on_every_node_at_exit SCRIPT ARGS...
 *                                        the same from the exit trap, beside what still runs; fails if it fails on one
 *
 * A script run on every node sees `slurmkit_node` and `slurmkit_node_count`
 * (the job's nodes); rank lines see `slurmkit_node`.
 */
export const STEP_HELPERS = ["# shellcheck disable=SC2317 # used by some steps only", 'slurmkit_fail() { echo "slurmkit: $1 on $slurmkit_node" >&2; exit 1; }'];
