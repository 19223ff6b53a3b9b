import { ParameterError } from "../base/errors.js";

/** How function tasks' code reaches the nodes: every executor's options. */
export interface CodeOptions {
  /**
   * Snapshot each function task's module at submit time: bundle it with
   * esbuild into `code/<hash>.mjs` in `folder`, which the nodes import with
   * plain Node. Queued and requeued tasks then run the code that was
   * submitted, and modules that exist only on this machine run on the
   * cluster. `false` imports the module by its path on the nodes instead
   * (through `pathMap`), for code that must be imported live.
   * @default true
   */
  readonly bundle?: boolean;
  /**
   * Packages left out of bundles, for the nodes to resolve from a
   * `node_modules` folder in or above `folder`. Packages with native addons
   * (`.node` files) are always left out. @default []
   */
  readonly external?: readonly string[];
}

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
