import { shellWord, showLate, type LateString } from "../protocol/runtime-value.js";
import { quoteShell } from "../base/shell.js";
import { type SetupStep, step, check, need } from "./step.js";

/**
 * Activates a conda environment in the batch shell (and so for the tasks).
 *
 * @example
 * condaActivate("myenv")
 */
export function condaActivate(env: LateString): SetupStep {
  const problems: string[] = [];
  need(problems, "env", env, "an environment name or path");
  check("condaActivate", problems);
  return step("condaActivate", {
    batch: [
      `command -v conda >/dev/null 2>&1 || slurmkit_fail ${quoteShell(`conda is not available; cannot activate ${showLate(env)}`)}`,
      'eval "$(conda shell.bash hook)"',
      `conda activate ${shellWord(env)} || slurmkit_fail ${quoteShell(`conda activate ${showLate(env)} failed`)}`,
    ],
  });
}
