// slurmkit as a user installs it: `npm pack`, then the tarball installed into fresh projects outside this
// repository (so nothing resolves from our own node_modules). Each project type-checks strictly, without
// skipLibCheck, and runs one task on local processes.
import { execa } from "execa";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
let scratch = "";
let tarball = "";

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "slurmkit-installed-"));
  // dist/ is built by `npm test` before vitest; --ignore-scripts keeps pack from building it again.
  const packed = await execa("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", scratch], { cwd: root });
  const info = (JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  tarball = join(scratch, info.filename);
  const files = info.files.map((f) => f.path);
  expect(files).toContain("LICENSE");
  expect(files).toContain("dist/src/index.d.ts");
}, 120_000);

afterAll(() => rm(scratch, { recursive: true, force: true }));

/** A fresh project with `package.json` fields, these files, and slurmkit's tarball plus `extra` packages installed. */
async function project(name: string, pkg: object, files: Record<string, string>, extra: string[]): Promise<string> {
  const dir = join(scratch, name);
  await execa("mkdir", ["-p", dir]);
  await writeFile(join(dir, "package.json"), JSON.stringify({ name, version: "1.0.0", private: true, ...pkg }));
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  await execa("npm", ["install", "--no-audit", "--no-fund", tarball, ...extra], { cwd: dir });
  return dir;
}

const strict = (module: string, extra: object = {}) => JSON.stringify({ compilerOptions: { strict: true, module, target: "es2022", outDir: "out", ...extra }, include: ["*.ts", "*.js"] });

const version = async () => (JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string }).version;

test("ESM and TypeScript 7, strict: the types compile as installed, and a function task runs", { timeout: 300_000 }, async () => {
  const dir = await project(
    "esm-ts7",
    { type: "module" },
    {
      "tsconfig.json": strict("nodenext"),
      "tasks.ts": 'import { defineTask } from "slurmkit";\nexport const square = defineTask(import.meta.url, "square", (x: number) => ({ x, square: x * x }));\n',
      "main.ts":
        'import { LocalExecutor, VERSION } from "slurmkit";\nimport { square } from "./tasks.js";\n' +
        'const jobs = await new LocalExecutor({ folder: "runs" }).mapArray([3].map((x) => square.with(x)));\n' +
        "const r: { x: number; square: number } = await jobs[0].result();\nconsole.log(VERSION, JSON.stringify(r));\n",
    },
    ["typescript@7"],
  );
  const tsc = await execa("npx", ["tsc", "-p", "."], { cwd: dir, reject: false });
  expect(tsc.stdout + tsc.stderr).toBe("");
  expect((await execa("npx", ["tsc", "--version"], { cwd: dir })).stdout).toMatch(/^Version 7\./);
  const run = await execa("node", ["out/main.js"], { cwd: dir, reject: false });
  expect(run.stderr).toBe("");
  expect(run.stdout).toBe(`${await version()} {"x":3,"square":9}`);
});

test("CommonJS and TypeScript 5, strict: the types compile as installed, and a command task runs", { timeout: 300_000 }, async () => {
  const dir = await project(
    "cjs-ts5",
    {},
    {
      "tsconfig.json": strict("nodenext"),
      "main.ts":
        'import { LocalExecutor, command, VERSION } from "slurmkit";\n' +
        'new LocalExecutor({ folder: "runs" }).submit(command("sh", ["-c", "echo out"])).then(async (job) => {\n' +
        "  const r: { exitCode: number } = await job.result();\n  console.log(VERSION, r.exitCode, (await job.stdout()).trim());\n});\n",
    },
    ["typescript@5"],
  );
  const tsc = await execa("npx", ["tsc", "-p", "."], { cwd: dir, reject: false });
  expect(tsc.stdout + tsc.stderr).toBe("");
  expect((await execa("npx", ["tsc", "--version"], { cwd: dir })).stdout).toMatch(/^Version 5\./);
  const run = await execa("node", ["out/main.js"], { cwd: dir, reject: false });
  expect(run.stderr).toBe("");
  expect(run.stdout).toBe(`${await version()} 0 out`);
});

test("plain JavaScript (npm's default CommonJS), checked by TypeScript's checkJs: a function task runs", { timeout: 300_000 }, async () => {
  const dir = await project(
    "plain-js",
    {},
    {
      "tsconfig.json": strict("nodenext", { allowJs: true, checkJs: true, noEmit: true }),
      "tasks.js": 'const { defineTask } = require("slurmkit");\nexports.twice = defineTask(__filename, "twice", (/** @type {number} */ x) => 2 * x);\n',
      "main.js":
        'const { LocalExecutor, VERSION } = require("slurmkit");\nconst { twice } = require("./tasks.js");\n' +
        'new LocalExecutor({ folder: "runs" }).submit(twice.with(21)).then((job) => job.result()).then((r) => console.log(VERSION, r));\n',
    },
    ["typescript@7"],
  );
  const tsc = await execa("npx", ["tsc", "-p", "."], { cwd: dir, reject: false });
  expect(tsc.stdout + tsc.stderr).toBe("");
  const run = await execa("node", ["main.js"], { cwd: dir, reject: false });
  expect(run.stderr).toBe("");
  expect(run.stdout).toBe(`${await version()} 42`);
});
