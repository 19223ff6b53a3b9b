import { shellWord, showLate, type LateString } from "../protocol/runtime-value.js";
import { quoteShell } from "../base/shell.js";
import { accepts } from "../base/options.js";
import { type SetupStep, step, check, need, optionProblems, LATES } from "./step.js";

/** Options of modules(). */
export interface ModulesOptions {
  /** Run `module purge` first. @default false */
  readonly purge?: boolean;
  /** Folders to add with `module use` before loading. */
  readonly use?: readonly LateString[];
}

const MODULE_INIT = ["/etc/profile.d/lmod.sh", '"${LMOD_PKG:-/usr/share/lmod/lmod}/init/bash"', "/usr/share/lmod/lmod/init/bash", "/etc/profile.d/modules.sh"];

/**
 * Loads environment modules (Lmod or Environment Modules). Finds `module`
 * itself where batch shells lack it; where there is none, the job fails with
 * a message in its log.
 *
 * @example
 * modules(["python/3.11", "cuda/12.2"], { purge: true })
 */
export function modules(names: readonly string[], options: ModulesOptions = {}): SetupStep {
  const problems = optionProblems("modules", options, { purge: accepts.boolean, use: LATES });
  if (!Array.isArray(names) || names.length === 0) problems.push(`Expected \`names\` to be a non-empty array of module names, got \`${String(names)}\``);
  else {
    for (const [i, n] of names.entries()) {
      if (typeof n !== "string" || !/^[A-Za-z0-9_.+][A-Za-z0-9_.+/-]*$/.test(n)) problems.push(`Expected \`names[${i}]\` to be a module name such as \`python/3.11\`, got \`${String(n)}\``);
    }
  }
  if (Array.isArray(options.use)) for (const [i, u] of options.use.entries()) need(problems, `use[${i}]`, u);
  check("modules", problems);
  const has = "{ declare -F module >/dev/null || command -v module >/dev/null 2>&1; }";
  return step("modules", {
    batch: [
      `if ! ${has}; then`,
      `  for slurmkit_init in ${MODULE_INIT.join(" ")}; do`,
      '    if [ -r "$slurmkit_init" ]; then',
      "      # shellcheck source=/dev/null",
      '      . "$slurmkit_init"',
      "      break",
      "    fi",
      "  done",
      "fi",
      `${has} || slurmkit_fail ${quoteShell(`the module command is not available (looked for Lmod and Environment Modules init files); cannot load ${names.join(" ")}`)}`,
      ...(options.purge ? ["module purge"] : []),
      ...(options.use ?? []).map((u) => `module use ${shellWord(u)} || slurmkit_fail ${quoteShell(`module use ${showLate(u)} failed`)}`),
      `module load ${names.map(quoteShell).join(" ")} || slurmkit_fail ${quoteShell(`module load ${names.join(" ")} failed`)}`,
    ],
  });
}
