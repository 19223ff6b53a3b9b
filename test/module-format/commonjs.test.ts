// slurmkit from a CommonJS project (npm's default "type"), as a user installs it: plain require, and tsx.
import { execa } from "execa";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type TestContext } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** A fresh project of npm's default type, with slurmkit installed as a dependency (its own folder: exports point at dist/). */
async function commonjsProject(ctx: TestContext): Promise<string> {
  await mkdir(join(root, "test/.tmp"), { recursive: true });
  const project = await mkdtemp(join(root, "test/.tmp/commonjs-"));
  ctx.onTestFinished(() => rm(project, { recursive: true, force: true }));
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "sweep", version: "1.0.0", type: "commonjs" }));
  await mkdir(join(project, "node_modules"));
  await symlink(root, join(project, "node_modules/slurmkit"));
  return project;
}

test("a CommonJS project requires slurmkit, and imports it from TypeScript run by tsx", { timeout: 60_000 }, async (ctx) => {
  const project = await commonjsProject(ctx);
  await writeFile(join(project, "plain.js"), 'const { SlurmExecutor, VERSION } = require("slurmkit");\nconsole.log(VERSION, typeof SlurmExecutor);\n');
  await writeFile(
    join(project, "typed.ts"),
    'import { LocalExecutor, command, VERSION } from "slurmkit";\nconst e = new LocalExecutor({ folder: "runs" });\ne.submit(command("true")).then((j) => j.result()).then((r) => console.log(VERSION, r.exitCode));\n',
  );
  const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
  const plain = await execa("node", ["plain.js"], { cwd: project, reject: false });
  expect(plain.stderr).toBe("");
  expect(plain.stdout).toBe(`${version} function`);
  const typed = await execa(join(root, "node_modules/.bin/tsx"), ["typed.ts"], { cwd: project, reject: false });
  expect(typed.stderr).toBe("");
  expect(typed.stdout).toBe(`${version} 0`);
});

test("a function task module written in CommonJS runs from its snapshot", { timeout: 60_000 }, async (ctx) => {
  const project = await commonjsProject(ctx);
  // require("slurmkit") from CommonJS bundles all of it, CommonJS packages (ssh2) included.
  await writeFile(join(project, "tasks.js"), 'const { defineTask } = require("slurmkit");\nexports.square = defineTask(__filename, "square", (x) => ({ x, square: x * x, dir: typeof __dirname }));\n');
  await writeFile(
    join(project, "sweep.js"),
    'const { LocalExecutor } = require("slurmkit");\nconst { square } = require("./tasks.js");\n' +
      'new LocalExecutor({ folder: "runs" }).mapArray([2, 3].map((x) => square.with(x))).then((jobs) => Promise.all(jobs.map((j) => j.result()))).then((r) => console.log(JSON.stringify(r)), (e) => console.log(e.message));\n',
  );
  const run = await execa("node", ["sweep.js"], { cwd: project, reject: false });
  expect(run.stderr).toBe("");
  expect(JSON.parse(run.stdout)).toEqual([
    { x: 2, square: 4, dir: "string" },
    { x: 3, square: 9, dir: "string" },
  ]);
});
