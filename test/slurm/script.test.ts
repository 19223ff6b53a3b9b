import { execa } from "execa";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parseParameters, toSbatchOptions } from "../../src/slurm/parameters.js";
import { renderScript } from "../../src/slurm/script.js";
import { quotePosix, quoteSbatch, quoteShell } from "../../src/base/shell.js";

const NASTY = `it's "quoted" $HOME \`id\` $(touch /tmp/pwned) ; rm -rf / & a\\b`;

const hasShellcheck = await execa("shellcheck", ["--version"]).then(
  () => true,
  () => false,
);

async function lint(script: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-script-"));
  const path = join(dir, "job.sbatch");
  await writeFile(path, script);
  await execa("bash", ["-n", path]);
  await execa("shellcheck", ["--shell=bash", path]);
}

describe("the sbatch script", () => {
  test("renders the header, setup lines and the runner launch", () => {
    const params = parseParameters({ jobName: "sweep", time: 90, mem: "4G", setup: ["module load python/3.11"] });
    expect(
      renderScript({
        options: [["array", "0-9%2"], ["output", "/runs/a b/logs/%a.out"], ...toSbatchOptions(params)],
        setup: params.setup ?? [],
        runner: ["/usr/bin/node", "/pkg/dist/runner/runner.js", "/runs/a b"],
        ranks: 1,
      }),
    ).toMatchInlineSnapshot(`
      "#!/bin/bash
      # shellcheck disable=SC2016,SC1003
      # Written by slurmkit.
      #SBATCH --array=0-9%2
      #SBATCH --output='/runs/a b/logs/%a.out'
      #SBATCH --job-name=sweep
      #SBATCH --time=01:30:00
      #SBATCH --mem=4G

      # setup
      module load python/3.11
      set +euo pipefail

      # run the task
      exec /usr/bin/node /pkg/dist/runner/runner.js '/runs/a b'
      "
    `);
  });

  test("several ranks start through srun", () => {
    const script = renderScript({ options: [], setup: [], runner: ["node", "r.js", "/d"], ranks: 4 });
    expect(script).toContain("exec srun --ntasks=4 --kill-on-bad-exit=1 node r.js /d\n");
  });

  test("parameters with quotes, spaces, $ and backticks pass shellcheck and bash -n", async (ctx) => {
    if (!hasShellcheck && process.env.CI !== "true") ctx.skip("shellcheck is not installed (npm run cluster:up installs it)");
    const params = parseParameters({ jobName: NASTY, account: "a b", sbatch: { comment: NASTY, exclusive: true } });
    const script = renderScript({ options: toSbatchOptions(params), setup: ["echo hello"], runner: ["/opt/my node/bin/node", NASTY, "/tmp/dir with 'quote'"], ranks: 2 });
    await lint(script);
    expect(script).toContain(`#SBATCH --job-name='it'\\''s "quoted" $HOME \`id\` $(touch /tmp/pwned) ; rm -rf / & a\\\\b'`);
  });

  test("sbatch header values double backslashes, which sbatch reads as escapes even in single quotes", () => {
    expect(quoteSbatch("plain")).toBe("plain");
    expect(quoteSbatch("a\\b")).toBe("'a\\\\b'");
    expect(quoteSbatch("it's")).toBe("'it'\\''s'");
  });

  test("quoteShell keeps every string one literal word", async () => {
    for (const s of [NASTY, "", "plain", "new\nline", "*.txt", "~", "héllo ✓", "$((1+1))", "!!"]) {
      const { stdout } = await execa("bash", ["-c", `printf '%s' ${quoteShell(s)}`]);
      expect(stdout).toBe(s);
    }
  });

  test("quotePosix keeps every string one literal word in dash, sh and bash alike (remote login shells)", async () => {
    const words = [NASTY, "", "plain", "new\nline", "tab\there", "cr\rhere", "*.txt", "~", "héllo ✓", "$((1+1))", "!!", "'", "''\\''"];
    for (const shell of ["dash", "sh", "bash"]) {
      const { stdout } = await execa(shell, ["-c", `printf '%s\\0' ${words.map(quotePosix).join(" ")}`], { stripFinalNewline: false });
      expect(stdout.split("\0").slice(0, -1)).toEqual(words);
    }
    expect(() => quotePosix("a\0b")).toThrow("Cannot put a NUL byte into a shell word");
  });
});
