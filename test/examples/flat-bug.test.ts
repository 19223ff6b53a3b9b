import { execa } from "execa";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { needCluster } from "../helpers/cluster.js";

const dir = fileURLToPath(new URL("../../examples/flat-bug/", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const MODELS = ["yolov8n", "yolov8s", "yolov8m", "flatbug-l"];

interface Row {
  job: string;
  model: string;
  images: string;
  score: string;
  node: string;
  input: string;
}

/** The table the example prints: a header line, then one row per model. */
function table(stdout: string): Row[] {
  const lines = stdout.trim().split("\n");
  const header = lines.findIndex((l) => l.startsWith("job\tmodel\t"));
  expect(header, stdout).toBeGreaterThan(0);
  return lines.slice(header + 1).map((l) => {
    const [job, model, images, score, node, input] = l.split("\t");
    return { job: job!, model: model!, images: images!, score: score!, node: node!, input: input! };
  });
}

async function run(args: string[]): Promise<{ stdout: string; out: string; runs: string }> {
  const out = await mkdtemp(join(tmpdir(), "slurmkit-flatbug-out-"));
  const runs = await mkdtemp(join(tmpdir(), "slurmkit-flatbug-runs-"));
  const { stdout } = await execa(tsx, ["compare-models.ts", "-o", out, "--runs", runs, ...args], { cwd: dir });
  return { stdout, out, runs };
}

describe("examples/flat-bug (the README's commands)", () => {
  beforeAll(async () => {
    await execa(tsx, ["prepare.ts"], { cwd: dir });
  }, 120_000);

  test("on the cluster: setup file, late-bound -i, an array of compare tasks, an afterok finalizer, results staged back", async (ctx) => {
    needCluster(ctx);
    const { stdout, out, runs } = await run(["-i", "$SLURM_TMPDIR/fb_yolo/images/val", "--slurm", "slurm_setup=setup.txt", "cpus_per_task=1", "mem=500M", "time=00:10:00"]);
    expect(stdout).toMatch(/^Comparing 4 models on Slurm; run folder /);
    const rows = table(stdout);
    expect(rows.map((r) => r.model)).toEqual(MODELS);
    for (const r of rows) {
      expect(r.job).toMatch(/^\d+_[0-3]$/);
      expect(r.images).toBe("12");
      // -i was bound on the node: that node's own scratch, for that job.
      expect(r.input).toMatch(new RegExp(`/\\.cluster/tmp/${r.node}/\\d+/fb_yolo/images/val$`));
      // Staged back into <out>/<job id>/results/, whole.
      const staged = JSON.parse(await readFile(join(out, r.job, "results", `${r.model}.json`), "utf8")) as { score: number; python: string; input: string };
      expect(staged.score.toFixed(4)).toBe(r.score);
      expect(staged.input).toBe(r.input);
      // The venv the setup file built in node-local scratch ran the task.
      expect(staged.python).toBe(r.input.replace(/fb_yolo\/images\/val$/, "env"));
    }
    expect(new Set(rows.map((r) => r.node))).toEqual(new Set(["n1", "n2"]));
    const summary = JSON.parse(await readFile(join(out, "summary.json"), "utf8")) as { models: number; ranking: string[] };
    const ranking = [...rows].sort((a, b) => Number(b.score) - Number(a.score)).map((r) => r.model);
    expect(summary).toEqual({ models: 4, best: ranking[0], ranking });
    expect(stdout).toContain(`summary of 4 models, best: ${ranking[0]} (${join(out, "summary.json")})`);

    // The finalizer ran afterok on the array, and both scripts pass shellcheck.
    // Submissions; `code/` holds the code snapshots they share.
    const submissions = (await readdir(runs)).filter((s) => s !== "code");
    const scripts = await Promise.all(submissions.map((s) => readFile(join(runs, s, "job.sbatch"), "utf8")));
    const array = rows[0]!.job.split("_")[0];
    expect(scripts.filter((s) => s.includes(`#SBATCH --dependency=afterok:${array}\n`))).toHaveLength(1);
    expect(scripts.filter((s) => s.includes("module load python/3.11"))).toHaveLength(1);
    for (const s of submissions) {
      await execa("shellcheck", ["--shell=bash", join(runs, s, "job.sbatch")]);
      await execa("bash", ["-n", join(runs, s, "job.sbatch")]);
    }
  });

  test("without --slurm the same script runs here, through LocalExecutor", async () => {
    const { stdout, out } = await run(["-i", "work/fb_yolo/images/val"]);
    expect(stdout).toMatch(/^Comparing 4 models on this machine; run folder /);
    const rows = table(stdout);
    expect(rows.map((r) => [r.model, r.images, r.input])).toEqual(MODELS.map((m) => [m, "12", join(dir, "work/fb_yolo/images/val")]));
    expect(rows.every((r) => /^local-/.test(r.job))).toBe(true);
    expect((await readdir(join(out, "local", "results"))).sort()).toEqual(MODELS.map((m) => `${m}.json`).sort());
  });

  test("a bad --slurm flag stops the script before anything is submitted, naming the flag", async () => {
    const runs = await mkdtemp(join(tmpdir(), "slurmkit-flatbug-runs-"));
    const r = await execa(tsx, ["compare-models.ts", "-i", "x", "--runs", runs, "--slurm", "cpus_per_tsk=2"], { cwd: dir, reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("Invalid --slurm flags: Unknown key `cpus_per_tsk` (did you mean `cpus_per_task`?)");
    expect(await readdir(runs)).toEqual([]);
  });
});
