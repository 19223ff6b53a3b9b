import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ParameterError } from "../base/errors.js";
import { type SetupStep, step } from "./step.js";

/**
 * Inserts a user's setup file verbatim (as flat-bug's `slurm_setup=FILE`).
 * The file is read now, relative to `cwd`; a missing file is a ParameterError.
 *
 * @example
 * setupFile("setup.txt") // module load ...; python -m venv "$SLURM_TMPDIR/env"; ...
 */
export function setupFile(path: string, cwd: string = process.cwd()): SetupStep {
  if (typeof path !== "string" || path === "") throw new ParameterError("setupFile step", [`Expected \`path\` to be a file path, got \`${String(path)}\``]);
  const full = resolve(cwd, path);
  let text: string;
  try {
    text = readFileSync(full, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new ParameterError("setupFile step", [`Cannot read setup file \`${path}\`${full === path ? "" : ` (${full})`}: ${why}`]);
  }
  // sbatch refuses scripts with DOS line breaks.
  return step("setupFile", { batch: [`# from ${JSON.stringify(full)}`, ...text.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n")] });
}

/** Raw lines, inserted as they are. */
export function lines(...raw: string[]): SetupStep {
  const bad = raw.findIndex((l) => typeof l !== "string");
  if (bad >= 0) throw new ParameterError("lines step", [`Expected line ${bad} to be a string, got \`${String(raw[bad])}\``]);
  return step("lines", { batch: raw.flatMap((l) => l.split("\n")) });
}
