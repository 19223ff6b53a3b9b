// Every TypeScript example in README.md compiles against the public API, as a user's module would.
import { execa } from "execa";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** The ```ts blocks of a Markdown text, in order. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** What the examples take as given: the names they use without defining them. */
const GIVEN = `export {};
declare global {
  const configs: { lr: number }[];
  const userGivenName: string;
}
`;

test("the README's TypeScript examples compile against slurmkit's public API", { timeout: 120_000 }, async () => {
  const blocks = tsBlocks(await readFile(join(root, "README.md"), "utf8"));
  expect(blocks.length).toBeGreaterThanOrEqual(7);
  const dir = join(root, "test/.tmp/readme-examples");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await writeFile(join(dir, "given.d.ts"), GIVEN);
  const files: string[] = [];
  for (const [i, block] of blocks.entries()) {
    // A block headed `// <name>.ts` is that module, which the others import as ./<name>.js.
    const name = /^\/\/ ([\w-]+\.ts)\b/.exec(block)?.[1] ?? `example-${i}.ts`;
    expect(files, `two README blocks are headed ${name}`).not.toContain(name);
    files.push(name);
    await writeFile(join(dir, name), `${block}\nexport {};\n`);
  }
  expect(files).toContain("tasks.ts");
  await writeFile(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2023"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        types: ["node"],
        typeRoots: [join(root, "node_modules/@types")],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        paths: { slurmkit: [join(root, "src/index.ts")] },
      },
      files: ["given.d.ts", ...files],
    }),
  );
  const tsc = await execa(join(root, "node_modules/.bin/tsc"), ["-p", join(dir, "tsconfig.json")], { reject: false });
  expect(tsc.stdout + tsc.stderr).toBe("");
  expect(tsc.exitCode).toBe(0);
});
