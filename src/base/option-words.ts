// The words of option checks, without zod: modules that a task's code snapshot bundles (defineTask, command) use
// these, so that the snapshot does not carry zod (about 700 KiB, and 6 MiB of a slot's memory when imported).
import { closeMatches } from "./suggest.js";

/** A short, printable form of a value that was not accepted. */
export function showValue(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  if (value === null || typeof value !== "object") return `\`${String(value)}\``;
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return name && name !== "Object" ? `a ${name}` : "an object";
}

/** A problem line for each key of `options` not among `accepted`, with close matches and the accepted list. */
export function unknownKeyProblems(options: object, accepted: readonly string[], noun = "option"): string[] {
  const sorted = [...accepted].sort();
  return Object.keys(options)
    .filter((key) => !accepted.includes(key))
    .map((key) => {
      const near = closeMatches(key, sorted);
      return `Unknown ${noun} \`${key}\`${near.length ? ` (did you mean ${near.map((n) => `\`${n}\``).join(" or ")}?)` : ""}; accepted: ${sorted.join(", ")}`;
    });
}
