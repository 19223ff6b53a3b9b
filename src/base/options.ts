import { z } from "zod";
import { ParameterError } from "./errors.js";
import { showValue, unknownKeyProblems } from "./option-words.js";

/** One schema per key of an options type, every key included; each schema's description says what it accepts. */
export type OptionShape<T> = { readonly [K in keyof T]-?: z.ZodType };

/** Schemas for the values options take, each described in the words an error prints. */
export const accepts = {
  string: z.string().min(1).describe("a non-empty string"),
  boolean: z.boolean().describe("true or false"),
  positiveInteger: z.number().int().positive().describe("a positive integer"),
  milliseconds: z.number().nonnegative().describe("a number of milliseconds, 0 or more"),
  strings: z.array(z.string()).describe("an array of strings"),
  function: z.custom<(...args: never[]) => unknown>((v) => typeof v === "function").describe("a function"),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal).describe("an AbortSignal"),
  object: z.custom<object>((v) => typeof v === "object" && v !== null && !Array.isArray(v)).describe("an object"),
  oneOf: <const V extends readonly [string, ...string[]]>(...values: V) => z.enum(values).describe(`one of ${values.map((v) => `"${v}"`).join(", ")}`),
  /** `schema`, or else these words. */
  or: (schema: z.ZodType, words: string) => schema.describe(words),
};

/** A problem line for each key whose value (other than undefined) its schema refuses. */
export function valueProblems(options: object, shape: Readonly<Record<string, z.ZodType>>, prefix = ""): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    const schema = shape[key];
    if (schema === undefined || value === undefined || schema.safeParse(value).success) continue;
    problems.push(`Expected \`${prefix}${key}\` to be ${schema.description ?? "of another type"}, got ${showValue(value)}`);
  }
  return problems;
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/**
 * Checks an options object at run time, for JavaScript callers and spread or
 * cast objects: it must be an object (or undefined, when `required` is false),
 * every key must be known, and every value must pass its schema. Throws one
 * ParameterError that names each problem, with "did you mean" for unknown
 * keys; returns the options unchanged.
 */
export function checkOptions<T extends object>(what: string, options: T | undefined, shape: OptionShape<T>, required = false): T {
  if (options === undefined && !required) return {} as T;
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new ParameterError(what, [`Expected an options object, got ${showValue(options)}`]);
  // The common case, `wait()` on a million futures: nothing to check.
  if (isEmpty(options)) return options;
  const problems = [...unknownKeyProblems(options, Object.keys(shape)), ...valueProblems(options, shape as Record<string, z.ZodType>)];
  if (problems.length) throw new ParameterError(what, problems);
  return options;
}

export { showValue, unknownKeyProblems };
