// Bundling alone, without a cluster: what goes into a snapshot and when it is made again.
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, test } from "vitest";
import { bundleModule } from "../../src/code/bundle.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

async function scratch(): Promise<string> {
  await mkdir(join(root, "test/.tmp"), { recursive: true });
  return mkdtemp(join(root, "test/.tmp/bundle-"));
}

describe("bundleModule", () => {
  test("the module and its local imports go in; packages with native addons stay out; the map names the original files", async () => {
    const dir = await scratch();
    await mkdir(join(dir, "node_modules/fake-native"), { recursive: true });
    await writeFile(join(dir, "node_modules/fake-native/package.json"), JSON.stringify({ name: "fake-native", main: "index.js", gypfile: true }));
    await writeFile(join(dir, "node_modules/fake-native/index.js"), "module.exports = require('./build/Release/addon.node');\n");
    await writeFile(join(dir, "helper.ts"), "export const twice = (x: number): number => 2 * x;\n");
    await writeFile(join(dir, "task.ts"), 'import native from "fake-native";\nimport { twice } from "./helper.ts";\nexport const run = (x: number) => [twice(x), native];\n');
    const bundle = await bundleModule(pathToFileURL(join(dir, "task.ts")).href);
    const code = Buffer.from(bundle.code).toString();
    expect(code).toContain('from "fake-native"');
    expect(code).toContain("2 * x");
    expect(code).not.toContain("addon.node");
    expect(code.trimEnd().endsWith(`//# sourceMappingURL=${bundle.name}.map`)).toBe(true);
    expect(bundle.name).toMatch(/^[0-9a-f]{16}\.mjs$/);
    const map = JSON.parse(Buffer.from(bundle.map).toString()) as { sources: string[] };
    expect(map.sources).toEqual(expect.arrayContaining([pathToFileURL(join(dir, "task.ts")).href, pathToFileURL(join(dir, "helper.ts")).href]));
  });

  test("a task module that uses defineTask and command carries a few KiB of slurmkit, not zod: the snapshot is part of what a task's process holds", async () => {
    const bundle = await bundleModule(new URL("../fixtures/memory.ts", import.meta.url).href);
    const map = JSON.parse(Buffer.from(bundle.map).toString()) as { sources: string[] };
    expect(map.sources.filter((s) => s.includes("node_modules/"))).toEqual([]);
    expect(bundle.code.length).toBeLessThan(32 * 1024);
  });

  test("once per module while its files do not change; an edited import makes a new snapshot", async () => {
    const dir = await scratch();
    await writeFile(join(dir, "helper.ts"), 'export const word = "one";\n');
    await writeFile(join(dir, "task.ts"), 'import { word } from "./helper.ts";\nexport const say = () => word;\n');
    const url = pathToFileURL(join(dir, "task.ts")).href;
    const first = await bundleModule(url);
    expect(await bundleModule(url)).toBe(first);
    await new Promise((r) => setTimeout(r, 20)); // a newer modification time than the first write
    await writeFile(join(dir, "helper.ts"), 'export const word = "two";\n');
    const second = await bundleModule(url);
    expect(second.name).not.toBe(first.name);
    expect(Buffer.from(second.code).toString()).toContain('"two"');
  });
});
