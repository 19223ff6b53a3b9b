import { ParameterError } from "../errors.js";

/** Checks the executors' `bundle` and `external` options; returns whether to bundle. */
export function checkBundleOptions(bundle: unknown, external: unknown): boolean {
  const problems: string[] = [];
  if (bundle !== undefined && typeof bundle !== "boolean") problems.push(`Expected \`bundle\` to be true or false, got \`${String(bundle)}\``);
  if (external !== undefined && (!Array.isArray(external) || external.some((e) => typeof e !== "string" || e === ""))) {
    problems.push(`Expected \`external\` to be an array of package names such as ["sharp"], got \`${String(external)}\``);
  }
  if (problems.length) throw new ParameterError("executor options", problems);
  return bundle !== false;
}
