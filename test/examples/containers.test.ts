import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { needCluster } from "../helpers/cluster.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

describe('examples/containers.ts (npm run example:containers, README "Containers")', () => {
  test("command tasks and a function task's exec run in the busybox image through podman, the runner outside", { timeout: 120_000 }, async (ctx) => {
    needCluster(ctx);
    const { stdout } = await execa("npm", ["run", "--silent", "example:containers"], { cwd: root });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^task 0 \(\d+_0\): in NAME="slurmkit test image", node: none, job \d+$/);
    expect(lines[1]).toMatch(/^task 1 \(\d+_0\): NAME="slurmkit test image"$/);
    expect(lines[2]).toMatch(
      /^function task \(\d+(_0)?\): hello ada from NAME="slurmkit test image"; \{"node":"n[12]","runtime":"podman","image":"localhost\/slurmkit-test:busybox-1","nodeOutside":"v\d+\.\d+\.\d+"\}$/,
    );
  });
});
