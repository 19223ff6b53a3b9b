import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { needCluster } from "../helpers/cluster.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

describe("examples/quickstart.ts (npm run example)", () => {
  test("maps a function task and runs a command task on the test cluster, and prints the results", async (ctx) => {
    needCluster(ctx);
    const { stdout } = await execa("npm", ["run", "--silent", "example"], { cwd: root });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^Running on Slurm; run folder .*\/runs\/quickstart$/);
    expect(lines.slice(1, 5).map((l) => l.replace(/^\d+_\d: /, "").replace(/ \(on n[12]\)$/, ""))).toEqual(["1² = 1", "2² = 4", "3² = 9", "4² = 16"]);
    expect(lines[5]).toMatch(/^\d+: exit code 0, stdout: hello from a command task: \$HOME stays literal$/);
  });
});
