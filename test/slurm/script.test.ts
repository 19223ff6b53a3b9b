import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parseParameters, toSbatchOptions } from "../../src/slurm/parameters.js";
import { renderScript } from "../../src/slurm/script.js";
import { container } from "../../src/setup/container.js";
import { atRuntime, stageOut } from "../../src/index.js";
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

  test("Slurm's warning to the batch shell is kept from the top, handed to the runner before it starts (exec, or in the background for stage-out); a bad name is refused", async (ctx) => {
    if (!hasShellcheck && process.env.CI !== "true") ctx.skip("shellcheck is not installed (npm run cluster:up installs it)");
    const base = { options: [["signal", "B:USR2@30"]] as const, runner: ["/usr/bin/node", "/r.mjs", "/f"], ranks: 1, warningSignal: "USR2" };
    const plain = renderScript({ ...base, setup: ["echo setup"] });
    const staged = renderScript({ ...base, setup: [stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: "/o" })], exitMarkerDir: "/f/results", exitMarkerOffset: 0 });
    for (const script of [plain, staged]) {
      await lint(script);
      // The trap comes before any setup line.
      expect(script.indexOf("trap 'slurmkit_warned=1")).toBeLessThan(script.indexOf("setup"));
    }
    expect(plain).toMatch(/trap '' USR2\nif \[ -n "\$slurmkit_warned" \]; then export SLURMKIT_WARNED=1; fi\nexec \/usr\/bin\/node/);
    expect(staged).toContain("trap 'slurmkit_warned=1; slurmkit_forward USR2' USR2");
    expect(staged).toContain(`(trap '' USR2; if [ -n "$slurmkit_warned" ]; then export SLURMKIT_WARNED=1; fi; exec /usr/bin/node /r.mjs /f) &`);
    // Without a warning to the batch shell, no trap.
    expect(renderScript({ options: [], runner: base.runner, ranks: 1, setup: [] })).not.toContain("slurmkit_warned");
    expect(() => renderScript({ ...base, warningSignal: "USR2; id", setup: [] })).toThrow(/Expected a signal name such as USR2, got 'USR2; id'/);
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

  test("the node check: after setup and before the runner, it passes shellcheck, and tells a missing, an old and a good Node.js apart", async (ctx) => {
    if (!hasShellcheck && process.env.CI !== "true") ctx.skip("shellcheck is not installed (npm run cluster:up installs it)");
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-nodecheck-"));
    const render = (node: string) =>
      renderScript({ options: [], setup: ["export SETUP_RAN=1"], runner: [node, `${dir}/runner.mjs`, `${dir}/it's`], ranks: 1, nodeCheck: { marker: join(dir, "node-unusable") } });
    const script = render("node");
    await lint(script);
    expect(script.indexOf("# check the node's Node.js")).toBeGreaterThan(script.indexOf("export SETUP_RAN=1"));
    expect(script.indexOf("# check the node's Node.js")).toBeLessThan(script.indexOf("# run the task"));
    // The check alone (the runner's line cut off), with stand-in programs that print a version as node --version does.
    const check = async (node: string) => {
      const text = render(node).split("# run the task")[0]!;
      return execa("bash", ["-c", text], { reject: false, env: { SLURMD_NODENAME: "nX" } });
    };
    const fake = async (name: string, version: string) => {
      const path = join(dir, name);
      await writeFile(path, `#!/bin/sh\nprintf 'v%s\\n' '${version}'\n`, { mode: 0o755 });
      return path;
    };
    const missing = await check(join(dir, "no-such-node"));
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(`slurmkit: no usable Node.js on node nX: '${dir}/no-such-node' does not exist or does not run`);
    const bare = await check("no-such-node-on-path");
    expect(bare.exitCode).toBe(1);
    expect(bare.stderr).toMatch(/^slurmkit: no usable Node\.js on node nX: 'no-such-node-on-path' was not found on PATH=\S+$/);
    for (const [version, ok] of [
      ["9.11.2", false],
      ["16.20.2", false],
      ["17.9.1", false],
      ["18.0.0", true],
      ["20.11.1", true],
      ["100.0.0", true],
    ] as const) {
      const r = await check(await fake(`node-${version}`, version));
      expect(r.exitCode, version).toBe(ok ? 0 : 1);
      if (!ok) expect(r.stderr).toBe(`slurmkit: no usable Node.js on node nX: '${dir}/node-${version}' is v${version}; the runner needs v18 or newer`);
    }
    // A node that is there but fails to run (out of memory, say) fails this element alone: no marker, nothing cancelled.
    const failing = join(dir, "node-fails");
    await writeFile(failing, "#!/bin/sh\necho 'out of memory' >&2\nexit 3\n", { mode: 0o755 });
    const alone = await mkdtemp(join(tmpdir(), "slurmkit-nodecheck-"));
    const text = renderScript({ options: [], setup: [], runner: [failing, "r.mjs", "/d"], ranks: 1, nodeCheck: { marker: join(alone, "node-unusable") } }).split("# run the task")[0]!;
    const crashed = await execa("bash", ["-c", text], { reject: false, env: { SLURMD_NODENAME: "nX", SLURM_ARRAY_JOB_ID: "no-such-job" } });
    expect(crashed.exitCode).toBe(1);
    expect(crashed.stderr).toBe(`slurmkit: no usable Node.js on node nX: '${failing}' failed to run (exit 3): out of memory`);
    expect(existsSync(join(alone, "node-unusable"))).toBe(false);
    // The first failure's line is the marker; a later one does not replace it.
    expect(await readFile(join(dir, "node-unusable"), "utf8")).toMatch(/no-such-node' does not exist or does not run/);
    // Inside a container the check is the container's business.
    const boxed = renderScript({
      options: [],
      setup: [container({ runtime: "apptainer", image: "/images/node20.sif", runnerInside: true })],
      runner: ["node", "r.mjs", "/d"],
      ranks: 1,
      nodeCheck: { marker: "/d/node-unusable" },
    });
    expect(boxed).not.toContain("# check the node's Node.js");
    expect(boxed).toContain("node r.mjs /d");
  });
});
