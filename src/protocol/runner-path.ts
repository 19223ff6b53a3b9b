import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The compiled runner (dist/runner/runner.js), from the built package or from the sources. */
export function runnerPath(): string {
  const candidates = [new URL("../../runner/runner.js", import.meta.url), new URL("../../dist/runner/runner.js", import.meta.url)];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (path.endsWith(".js") && existsSync(path)) return path;
  }
  throw new Error(`slurmkit's runner is not built: none of ${candidates.map((u) => fileURLToPath(u)).join(", ")} exists. Run \`npm run build\`.`);
}
