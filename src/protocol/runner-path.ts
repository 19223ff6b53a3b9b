import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The compiled runner entry of a scheduler (`dist/src/<scheduler>/runner.js`,
 * which runs the runner with that scheduler's node side), from the built
 * package or from the sources.
 */
export function runnerPath(scheduler: "slurm" | "local" | (string & {})): string {
  const candidates = [new URL(`../${scheduler}/runner.js`, import.meta.url), new URL(`../../dist/src/${scheduler}/runner.js`, import.meta.url)];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (path.endsWith(".js") && existsSync(path)) return path;
  }
  throw new Error(`slurmkit's runner is not built: none of ${candidates.map((u) => fileURLToPath(u)).join(", ")} exists. Run \`npm run build\`.`);
}
