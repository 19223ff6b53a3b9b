// `slurmkit watch` and progress() in a real terminal (tmux): the screen while
// tasks run and after they end.
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { SlurmExecutor } from "../../src/index.js";
import { flaky } from "../fixtures/sweep.js";
import { runsFolder } from "../helpers/runs-folder.js";
import { needCluster } from "../helpers/cluster.js";
import { startTerminal } from "../helpers/terminal.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const script = fileURLToPath(new URL("../fixtures/progress-script.ts", import.meta.url));

/** Lines of the screen that are a progress line of the submission. */
const progressLines = (screen: string) => screen.split("\n").filter((l) => /^\d{8}T\d{6}Z-[0-9a-f]{6} {2}\d+\/\d+ done/.test(l));

describe("live progress in a terminal", { timeout: 240_000 }, () => {
  test("watch redraws one line in place while tasks run, then prints the status summary", async (ctx) => {
    needCluster(ctx);
    const folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2, arrayParallelism: 2 });
    await executor.mapArray(Array.from({ length: 6 }, (_, i) => flaky.with({ i, fail: i === 5, unless: "/nonexistent", sleepMs: 3000 })));
    const term = await startTerminal(["node", bin, "watch", folder, "--interval", "0.3"], { env: { SLURM_CONF: process.env.SLURM_CONF! } });
    try {
      // While tasks run: exactly one progress line, however many times it was redrawn.
      const running = await term.waitFor(/ {2}[1-5]\/6 done {2}[12] running/, 120_000);
      expect(progressLines(running)).toHaveLength(1);
      const later = await term.waitFor((s: string) => progressLines(s)[0] !== progressLines(running)[0], 60_000);
      expect(progressLines(later)).toHaveLength(1);
      expect(await term.exited(120_000)).toBe(1); // task 5 failed
      const end = await term.screen();
      const lines = progressLines(end);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/ {2}6\/6 done {2}0 running {2}0 pending {2}1 failed$/);
      // Then the summary, aligned on the TTY.
      expect(end).toMatch(/SUBMISSION {7,}TASKS {2}COMPLETED {2}FAILED\n\d{8}T\d{6}Z-[0-9a-f]{6} {2}6 {6}5 {10}1/);
    } finally {
      await term.close();
    }
  });

  test("progress() in a script: a line on stderr that stays below the script's own output, and nothing on a pipe", async (ctx) => {
    needCluster(ctx);
    const env = { SLURM_CONF: process.env.SLURM_CONF! };
    const term = await startTerminal([tsx, script, await runsFolder(), "4", "2500"], { env });
    try {
      const during = await term.waitFor(/ {2}[0-3]\/4 done/, 120_000);
      expect(progressLines(during)).toHaveLength(1);
      expect(await term.exited(120_000)).toBe(0);
      const end = await term.screen();
      const rows = end.split("\n");
      // Each result on a line of its own, none mixed into the progress line, which ends at 4/4 below them.
      for (let i = 0; i < 4; i++) expect(rows).toContain(`result ${i}: ${2 ** 40 + i}`);
      expect(progressLines(end)).toHaveLength(1);
      expect(progressLines(end)[0]).toMatch(/ {2}4\/4 done {2}0 running {2}0 pending {2}0 failed$/);
      expect(rows.indexOf(progressLines(end)[0]!)).toBeGreaterThan(Math.max(...[0, 1, 2, 3].map((i) => rows.indexOf(`result ${i}: ${2 ** 40 + i}`))));
      expect(rows.at(-1)).toBe("all done");
    } finally {
      await term.close();
    }
    // Not a TTY (and under CI): stdout has only the script's lines, stderr nothing.
    for (const ci of ["", "true"]) {
      const piped = await execa(tsx, [script, await runsFolder(), "2", "0"], { env: { ...env, CI: ci } });
      expect(piped.stdout.split("\n").sort()).toEqual(["all done", `result 0: ${2 ** 40}`, `result 1: ${2 ** 40 + 1}`]);
      expect(piped.stderr).toBe("");
    }
  });
});
