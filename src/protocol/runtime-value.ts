import { ParameterError, UnsetVariableError } from "../base/errors.js";
import { quoteShell } from "../base/shell.js";

/** One piece of a runtime value: literal text, or a variable of the node's environment. */
export type RuntimePart = { readonly text: string } | { readonly variable: string };

/** Marks a runtime value in spec files (msgpack) and in memory. */
export const RUNTIME_MARK = "__slurmkit_runtime__";

/**
 * A string bound late, on the compute node: literal text and `$VAR` references
 * expanded from the node's environment at run time, and nothing else.
 */
export interface RuntimeValue {
  readonly [RUNTIME_MARK]: 1;
  /** The template as written. */
  readonly template: string;
  readonly parts: readonly RuntimePart[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Makes a runtime value from a template with `$VAR` and `${VAR}` references; a
 * leading `~` or `~/` means the node's `$HOME`. The runner expands it on the
 * node and passes it as one argv element; in generated shell it renders as
 * double-quoted `${VAR}` pieces with every literal part single-quoted.
 *
 * Nothing else expands: `$(...)` and `${VAR:-...}` (and every other `${...}`
 * form) are errors here; backticks, globs, `;` and a `$` not followed by a
 * name are literal text.
 *
 * @example
 * command("python3", ["train.py", "--data", atRuntime("$SLURM_TMPDIR/data")])
 */
export function atRuntime(template: string): RuntimeValue {
  if (typeof template !== "string" || template === "" || template.includes("\0")) {
    throw new ParameterError("runtime value", [`Expected a non-empty template string without NUL such as \`$SLURM_TMPDIR/data\`, got \`${String(template)}\``]);
  }
  const parts: RuntimePart[] = [];
  let text = "";
  const flush = () => {
    if (text) parts.push({ text });
    text = "";
  };
  let i = 0;
  if (template === "~" || template.startsWith("~/")) {
    parts.push({ variable: "HOME" });
    i = 1;
  }
  while (i < template.length) {
    const c = template[i]!;
    if (c !== "$") {
      text += c;
      i++;
      continue;
    }
    const rest = template.slice(i + 1);
    if (rest.startsWith("(")) {
      throw new ParameterError("runtime value", [`\`${template}\` has a command substitution \`$(\` at offset ${i}; runtime values expand only $VAR and \${VAR}, never commands`]);
    }
    if (rest.startsWith("{")) {
      const close = rest.indexOf("}");
      const inner = close < 0 ? rest.slice(1) : rest.slice(1, close);
      if (close < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner)) {
        throw new ParameterError("runtime value", [
          `\`${template}\` has \`\${${inner}${close < 0 ? "" : "}"}\` at offset ${i}; only \${NAME} is accepted (no defaults, substrings or other expansions)`,
        ]);
      }
      flush();
      parts.push({ variable: inner });
      i += close + 2;
      continue;
    }
    const name = NAME.exec(rest)?.[0];
    if (name) {
      flush();
      parts.push({ variable: name });
      i += 1 + name.length;
    } else {
      text += "$";
      i++;
    }
  }
  flush();
  return { [RUNTIME_MARK]: 1, template, parts };
}

/**
 * Joins strings and runtime values into one runtime value. Strings are
 * literal text, even if they hold `$` (so a user-given name never expands).
 *
 * @example
 * concatRuntime(atRuntime("$SLURM_TMPDIR/in/"), userGivenName)
 */
export function concatRuntime(...pieces: readonly LateString[]): RuntimeValue {
  const parts: RuntimePart[] = [];
  let template = "";
  for (const piece of pieces) {
    if (typeof piece === "string") {
      if (piece.includes("\0")) throw new ParameterError("runtime value", ["Expected strings without NUL bytes to join"]);
      if (piece) parts.push({ text: piece });
      template += piece;
    } else if (isRuntimeValue(piece)) {
      parts.push(...piece.parts);
      template += piece.template;
    } else {
      throw new ParameterError("runtime value", [`Expected strings and runtime values to join, got \`${String(piece)}\``]);
    }
  }
  if (parts.length === 0) throw new ParameterError("runtime value", ["Expected something to join, got only empty strings"]);
  return { [RUNTIME_MARK]: 1, template, parts };
}

const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function validPart(p: unknown): boolean {
  if (typeof p !== "object" || p === null) return false;
  const part = p as Record<string, unknown>;
  if ("variable" in part) return typeof part.variable === "string" && VARIABLE.test(part.variable);
  return typeof part.text === "string" && !part.text.includes("\0");
}

/**
 * Whether a value is a well-formed runtime value (also after a msgpack round
 * trip). A forged one, with a variable that is not a plain name, is not.
 */
export function isRuntimeValue(value: unknown): value is RuntimeValue {
  if (typeof value !== "object" || value === null || (value as Record<string, unknown>)[RUNTIME_MARK] !== 1) return false;
  const parts = (value as RuntimeValue).parts;
  return Array.isArray(parts) && parts.length > 0 && parts.every(validPart);
}

/** A string, or a runtime value standing for one. */
export type LateString = string | RuntimeValue;

/** A non-empty path or runtime value that cannot read as an option. */
export function lateOk(v: unknown): v is LateString {
  // A leading "-" would read as an option to cp, mkdir, unzip, apptainer or podman.
  return isRuntimeValue(v) || (typeof v === "string" && v !== "" && !v.startsWith("-") && !v.includes("\0"));
}

/** `T` with every string allowed to be a runtime value, deeply. */
export type Late<T> = T extends string ? T | RuntimeValue : T extends readonly (infer U)[] ? readonly Late<U>[] : T extends object ? { [K in keyof T]: Late<T[K]> } : T;

/** Expands a runtime value with an environment; an unset variable throws UnsetVariableError. */
export function expandRuntime(value: RuntimeValue, env: NodeJS.ProcessEnv, host = "this node"): string {
  return value.parts
    .map((p) => {
      if ("text" in p) return p.text;
      const v = env[p.variable];
      if (v === undefined) throw new UnsetVariableError(p.variable, value.template, host);
      return v;
    })
    .join("");
}

/** Expands every runtime value inside a value (arrays and plain objects, deeply). */
export function expandDeep<T>(value: T, env: NodeJS.ProcessEnv, host?: string): T {
  if (isRuntimeValue(value)) return expandRuntime(value, env, host) as T;
  if (Array.isArray(value)) return value.map((v) => expandDeep(v, env, host)) as T;
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandDeep(v, env, host)])) as T;
  }
  return value;
}

/**
 * Renders a string or runtime value as one shell word: literal parts
 * single-quoted, variables as `"${VAR?...}"`, so an unset variable stops the
 * script with a message naming it (an empty one is accepted, as the runner
 * does). A malformed runtime value is refused.
 */
export function shellWord(value: LateString): string {
  if (typeof value === "string") return quoteShell(value);
  if (!isRuntimeValue(value)) throw new ParameterError("runtime value", [`Expected a runtime value made by atRuntime(), got \`${JSON.stringify(value)}\``]);
  return value.parts.map((p) => ("text" in p ? quoteShell(p.text) : `"\${${p.variable}?is not set (needed by a slurmkit runtime value)}"`)).join("");
}

/** A short, readable form for messages and logs. */
export function showLate(value: LateString): string {
  return typeof value === "string" ? value : value.template;
}
