import { execa } from "execa";
import fc from "fast-check";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { atRuntime, command, concatRuntime, ParameterError, SlurmExecutor, stageIn, stageOut, type RuntimeValue } from "../../src/index.js";
import { expandRuntime } from "../../src/protocol/runtime-value.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

const SEED = 20261121;
const CANARY = "slurmkit-canary";
const dump = fileURLToPath(new URL("../fixtures/dump.cjs", import.meta.url));

// Everything a shell would act on, plus unicode: any injected command creates ./slurmkit-canary.
const FRAGMENTS = [
  "'",
  '"',
  `$(touch ${CANARY})`,
  `\`touch ${CANARY}\``,
  `;touch ${CANARY};`,
  `|touch ${CANARY}`,
  `&& touch ${CANARY}`,
  "\n",
  "\r",
  "\t",
  " ",
  ";",
  "*",
  "?",
  "[ab]",
  "~",
  "$HOME",
  "${HOME}",
  "$",
  "${",
  "}",
  "$((1+1))",
  "\\",
  "!",
  "#",
  "%",
  "-",
  "--",
  "=",
  ">",
  "<",
  "é",
  "✓",
  "😀",
  "日本",
  "\u200b",
];
const piece = fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ unit: "grapheme", maxLength: 6 }));
const adversarial = fc.array(piece, { maxLength: 6 }).map((p) => p.join("").replaceAll("\0", ""));

function sample(arbitrary: fc.Arbitrary<string>, n: number, seed: number): string[] {
  return fc.sample(arbitrary, { numRuns: n, seed });
}

describe("adversarial strings reach the task byte for byte, and never run", () => {
  test(`thousands of strings through command args, env, runtime values and setup paths (seed ${SEED})`, async (ctx) => {
    needCluster(ctx);
    const work = await mkdtemp(join(tmpdir(), "slurmkit-adversarial-"));
    const args = sample(adversarial, 2000, SEED);
    const envValues = sample(adversarial, 500, SEED + 1);
    // File names: no "/", not empty, "." or "..", and unique.
    const names = sample(adversarial, 300, SEED + 2).map((s, i) =>
      Array.from(`${i}-${s.replaceAll("/", "_")}`)
        .slice(0, 60)
        .join(""),
    );

    // Runtime values: templates that atRuntime refuses are errors at construction; the rest expand as the model says.
    process.env.SKP_VAR = `value with $(touch ${CANARY}) and 'quotes' \`x\``;
    const env = { HOME: process.env.HOME, SKP_VAR: process.env.SKP_VAR };
    const templates = sample(adversarial, 1000, SEED + 3).map((s, i) => (i % 2 ? `$SKP_VAR/${s}` : `${s}\${SKP_VAR}`));
    const late: RuntimeValue[] = [];
    let refused = 0;
    for (const t of templates) {
      try {
        const v = atRuntime(t);
        if (v.parts.every((p) => "text" in p || p.variable === "SKP_VAR" || p.variable === "HOME")) late.push(v);
      } catch (error) {
        expect(error).toBeInstanceOf(ParameterError);
        refused++;
      }
    }
    expect(late.length).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(100);

    const source = join(work, "payload.txt");
    await writeFile(source, "payload\n");
    // Oddly named source files too: stageIn `from` paths.
    const sources = names.slice(0, 100).map((n) => `src ${n}`);
    await mkdir(join(work, "sources"));
    for (const s of sources) await writeFile(join(work, "sources", s), s);
    const out = join(work, "dump.json");
    const staged = join(work, `staged ${FRAGMENTS.slice(0, 8).join("").replaceAll("/", "_").replaceAll("\n", "_")}`);
    const executor = new SlurmExecutor({
      folder: await runsFolder(),
      time: 10,
      sbatch: { chdir: work },
      setup: [
        ...names.map((name) => stageIn({ from: source, to: concatRuntime(atRuntime("$SLURM_TMPDIR/in/"), name) })),
        ...sources.map((s) => stageIn({ from: join(work, "sources", s), to: atRuntime("$SLURM_TMPDIR/in/sources") })),
        stageOut({ from: atRuntime("$SLURM_TMPDIR/in"), to: staged }),
      ],
    });
    const job = await executor.submit(
      command(process.execPath, [dump, out, ...args, ...late], {
        env: Object.fromEntries(envValues.map((v, i) => [`SKP_${i}`, v])),
        cwd: work,
      }),
    );
    expect(await job.result()).toEqual({ exitCode: 0 });

    const got = JSON.parse(await readFile(out, "utf8")) as { args: string[]; env: Record<string, string>; names: string[] };
    const want = [...args, ...late.map((v) => expandRuntime(v, env))];
    expect(got.args.length).toBe(want.length);
    for (const [i, w] of want.entries()) expect(Buffer.from(got.args[i]!).equals(Buffer.from(w)), `arg ${i}: ${JSON.stringify(w)}`).toBe(true);
    for (const [i, v] of envValues.entries()) expect(got.env[`SKP_${i}`], `SKP_${i}`).toBe(v);
    expect(got.names.sort()).toEqual([...names, "sources"].sort());
    // Stage-out copied every oddly named folder back, into this job's own folder.
    expect((await readdir(join(staged, job.id, "in"))).sort()).toEqual([...names, "sources"].sort());
    const copied = join(staged, job.id, "in", "sources");
    expect((await readdir(copied)).sort()).toEqual([...sources].sort());
    for (const s of sources) expect(await readFile(join(copied, s), "utf8")).toBe(s);
    for (const name of names) expect(existsSync(join(staged, job.id, "in", name, "payload.txt")), name).toBe(true);

    for (const dir of [work, dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
      expect(existsSync(join(dir, CANARY)), `canary in ${dir}`).toBe(false);
    }
    const script = join(dirname(dirname(job.paths.result)), "job.sbatch");
    await execa("bash", ["-n", script]);
    await execa("shellcheck", ["--shell=bash", script]);
  });
});
